#include "catalog/skeleton.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "base/name_suggestion.h"
#include "base/text_check.h"
#include "plan/jobs_file.h"

namespace pgxform {

std::string default_target_schema(const std::string& schema) {
  return schema + "_new";
}

namespace {

// PostgreSQL cuts a longer name to its first 63 bytes: the files would name another schema.
constexpr std::size_t k_longest_name = 63;

std::vector<std::string> schema_problems(const SourceSchema& schema, const std::string& target) {
  const std::string shown = "'" + printable(schema.name) + "'";
  if (!schema.schemas.count(schema.name)) {
    const std::vector<std::string> known(schema.schemas.begin(), schema.schemas.end());
    const auto meant = suggest_name(schema.name, known);
    return {"schema " + shown + " does not exist" +
            (meant ? "; did you mean '" + printable(*meant) + "'?" : "")};
  }
  // Its name goes into jobs.yaml and the scripts, where a line break would end a comment or
  // a YAML scalar early: refused as the names of tables and columns are.
  if (const auto flaw = name_flaw(schema.name))
    return {"the name of schema " + shown + " holds " + flaw->what +
            ", which jobs.yaml and the scripts cannot hold: rename the schema"};
  if (schema.tables.empty())
    return {"schema " + shown +
            " holds no tables (pgxform init copies tables; views, sequences and foreign tables "
            "are not)"};
  const std::string named = "the target schema '" + printable(target) + "'";
  const std::string choose = ": name another with --target-schema";
  std::vector<std::string> problems;
  if (schema.name == k_function_schema)
    problems.push_back("schema " + shown + " is where pgxform init puts the transform functions" +
                       ": copy the legacy tables into another schema first");
  if (target.empty())
    problems.push_back("--target-schema may not be empty");
  else if (name_flaw(target))
    problems.push_back(named + " holds " + name_flaw(target)->what + choose);
  else if (target.size() > k_longest_name)
    problems.push_back(named + " is longer than PostgreSQL's " + std::to_string(k_longest_name) +
                       " bytes for a name" + choose);
  else if (target == schema.name)
    problems.push_back(named + " is the legacy schema itself" + choose);
  else if (target == k_function_schema)
    problems.push_back(named + " is where the transform functions go" + choose);
  else if (target.rfind("pg_", 0) == 0 || target == "information_schema")
    problems.push_back(named + " is a name PostgreSQL reserves for itself" + choose);
  else if (schema.schemas.count(target))
    problems.push_back(named + " exists already, and the V1 script would fail to create it" +
                       choose);
  return problems;
}

// Why a table cannot go into jobs.yaml at all; none when it can.
std::optional<std::string> unwritable(const SourceTable& table) {
  if (const auto flaw = name_flaw(table.name)) return "its name holds " + flaw->what;
  for (const auto& c : table.columns)
    if (const auto flaw = name_flaw(c.name))
      return "the name of its column " + printable(c.name) + " holds " + flaw->what;
  return std::nullopt;
}

std::optional<JobKey> choose_key(const SourceTable& table) {
  std::optional<JobKey> best;
  std::tuple<bool, bool, bool, std::size_t> best_rank;
  for (const auto& index : table.indexes) {
    if (!index.btree || index.partial || !index.valid || index.columns.empty()) continue;
    const SourceColumn* column = table.find_column(index.columns.front());
    if (!column) continue;  // an expression
    const bool unique = (index.primary || index.unique) && index.columns.size() == 1;
    // Smaller is better; see the header.
    const auto rank = std::make_tuple(!column->not_null, !unique, !index.primary,
                                      std::size_t(column - table.columns.data()));
    if (best && !(rank < best_rank)) continue;
    best_rank = rank;
    best = JobKey{column->name,
                  column->type,
                  column->base_type,
                  !unique         ? KeyKind::leading_column
                  : index.primary ? KeyKind::primary_key
                                  : KeyKind::unique_index,
                  printable(index.name),
                  column->not_null};
  }
  return best;
}

std::string no_key_reason(const SourceTable& table) {
  if (table.columns.empty()) return "it has no columns";
  std::string unusable;
  for (const auto& index : table.indexes) {
    const std::string name = "index " + printable(index.name);
    const std::string why = !index.btree    ? " is not a btree index"
                            : index.partial ? " is partial"
                            : !index.valid  ? " is invalid"
                                            : " starts with an expression";
    unusable += (unusable.empty() ? "" : "; ") + name + why;
  }
  return "no primary key, unique index or btree index to page it by" +
         (unusable.empty() ? "" : " (" + unusable + ")");
}

std::string suggested_key(const SourceTable& table) {
  const auto not_null = std::find_if(table.columns.begin(), table.columns.end(),
                                     [](const SourceColumn& c) { return c.not_null; });
  if (not_null != table.columns.end()) return not_null->name;
  return table.columns.empty() ? "" : table.columns.front().name;
}

// A foreign key of a job's table to the table of job `to`, which the job waits for.
struct Reference {
  std::size_t to;
  std::string foreign_key;  // printable
};

// The strongly connected components of the references (Tarjan's algorithm, with a stack of its
// own rather than recursion, so that a chain of any length is walked): component[i] of each job.
std::vector<int> components(const std::vector<std::vector<Reference>>& refs) {
  const std::size_t n = refs.size();
  std::vector<int> component(n, -1), index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<std::size_t> stack;
  int next_index = 0, next_component = 0;
  struct Frame {
    std::size_t job;
    std::size_t next;  // the reference to look at next
  };
  for (std::size_t start = 0; start < n; ++start) {
    if (index[start] != -1) continue;
    std::vector<Frame> path{{start, 0}};
    index[start] = low[start] = next_index++;
    stack.push_back(start);
    on_stack[start] = true;
    while (!path.empty()) {
      const std::size_t v = path.back().job;
      if (path.back().next < refs[v].size()) {
        const std::size_t w = refs[v][path.back().next++].to;
        if (index[w] == -1) {
          index[w] = low[w] = next_index++;
          stack.push_back(w);
          on_stack[w] = true;
          path.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        std::size_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = next_component;
        } while (w != v);
        ++next_component;
      }
      path.pop_back();
      if (!path.empty()) low[path.back().job] = std::min(low[path.back().job], low[v]);
    }
  }
  return component;
}

// The jobs in list order (see the header). Jobs are numbered in name order, so that the
// smallest number is the first name.
std::vector<std::size_t> list_order(const std::vector<std::vector<Reference>>& refs) {
  std::vector<std::size_t> component;
  for (const int c : components(refs)) component.push_back(static_cast<std::size_t>(c));
  const std::size_t count =
      component.empty() ? 0 : *std::max_element(component.begin(), component.end()) + 1;
  std::vector<std::vector<std::size_t>> members(count);
  std::vector<std::set<std::size_t>> waits_for(count), waited_by(count);
  for (std::size_t i = 0; i < refs.size(); ++i) {
    members[component[i]].push_back(i);
    for (const auto& r : refs[i])
      if (component[r.to] != component[i]) {
        waits_for[component[i]].insert(component[r.to]);
        waited_by[component[r.to]].insert(component[i]);
      }
  }
  std::set<std::pair<std::size_t, std::size_t>> ready;  // (its first job, component)
  for (std::size_t c = 0; c < count; ++c)
    if (waits_for[c].empty()) ready.insert({members[c].front(), c});
  std::vector<bool> placed(refs.size(), false);
  std::vector<std::size_t> order;
  while (!ready.empty()) {
    const std::size_t c = ready.begin()->second;
    ready.erase(ready.begin());
    // Inside a cycle: the first job whose references are all placed, else the first by name.
    std::vector<std::size_t> left = members[c];
    while (!left.empty()) {
      auto next = std::find_if(left.begin(), left.end(), [&](std::size_t job) {
        return std::all_of(refs[job].begin(), refs[job].end(),
                           [&](const Reference& r) { return placed[r.to]; });
      });
      if (next == left.end()) next = left.begin();
      placed[*next] = true;
      order.push_back(*next);
      left.erase(next);
    }
    for (const std::size_t d : waited_by[c]) {
      waits_for[d].erase(c);
      if (waits_for[d].empty()) ready.insert({members[d].front(), d});
    }
  }
  return order;
}

// The references of each job to the other jobs; what cannot order goes into its notes.
std::vector<std::vector<Reference>> references(const SourceSchema& schema,
                                               std::vector<SkeletonJob>& jobs) {
  std::map<std::string, std::size_t> job_of;
  for (std::size_t i = 0; i < jobs.size(); ++i) job_of[jobs[i].table.name] = i;
  std::vector<std::vector<Reference>> refs(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i)
    for (const auto& key : jobs[i].table.foreign_keys) {
      const std::string& from = jobs[i].table.name;
      const std::string fk = printable(key.name);
      const std::string to = printable(key.referenced_table);
      const auto job = job_of.find(key.referenced_table);
      if (key.referenced_schema != schema.name)
        jobs[i].notes.push_back(from + " references " + printable(key.referenced_schema) + "." +
                                to + " (" + fk + "), outside schema " + printable(schema.name) +
                                ", which this migration does not copy.");
      else if (key.referenced_table == jobs[i].table.name)
        jobs[i].notes.push_back(from + " references itself (" + fk +
                                "): its rows are copied in key order, so add that foreign key "
                                "to the target after the run.");
      else if (job == job_of.end())
        jobs[i].notes.push_back(from + " references " + to + " (" + fk +
                                "), which has no job: copy that table before this one.");
      else
        refs[i].push_back({job->second, fk});
    }
  return refs;
}

// Each job's `after:` from the references to jobs placed before it; a reference to one placed
// after it closes a cycle and is dropped, in a note.
void order_lists(const std::vector<std::vector<Reference>>& refs,
                 const std::vector<std::size_t>& order, std::vector<SkeletonJob>& jobs) {
  std::vector<std::size_t> position(jobs.size());
  for (std::size_t p = 0; p < order.size(); ++p) position[order[p]] = p;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    std::map<std::string, std::vector<std::string>> after;
    for (const auto& r : refs[i]) {
      const std::string& to = jobs[r.to].table.name;
      if (position[r.to] < position[i])
        after[to].push_back(r.foreign_key);
      else
        jobs[i].notes.push_back(jobs[i].table.name + " references " + to + " (" + r.foreign_key +
                                "), which leads back to it through a cycle of foreign keys: its "
                                "list cannot wait for " +
                                to + "'s, so add that foreign key to the target after the run.");
    }
    for (auto& [list, keys] : after) jobs[i].after.push_back({list, keys});
  }
  std::vector<SkeletonJob> ordered;
  for (const std::size_t i : order) ordered.push_back(std::move(jobs[i]));
  jobs = std::move(ordered);
}

// Each job's list name (skeleton.h), and the `after:` of every job by those names.
void name_lists(std::vector<SkeletonJob>& jobs) {
  std::set<std::string> taken;
  for (const auto& job : jobs) taken.insert(job.table.name);
  std::map<std::string, std::string> list_of;
  for (auto& job : jobs) {
    std::string list = job.table.name + "_list";
    while (taken.count(list)) list += "_list";
    taken.insert(list);
    job.list = list;
    list_of[job.table.name] = list;
  }
  for (auto& job : jobs)
    for (auto& a : job.after) a.list = list_of.at(a.list);
}

void note_key(SkeletonJob& job) {
  const JobKey& key = job.key;
  if (key.kind == KeyKind::leading_column)
    job.notes.push_back("The key " + key.column + " is not unique (it leads index " + key.index +
                        "): a batch takes every row of its last key, so it may hold more than "
                        "batch_size rows.");
  if (!key.not_null)
    job.notes.push_back("The key " + key.column + " may be NULL: rows whose " + key.column +
                        " is NULL are in no batch, and are not copied.");
}

}  // namespace

Skeleton plan_skeleton(const SourceSchema& schema, const std::string& target_schema) {
  if (auto problems = schema_problems(schema, target_schema); !problems.empty())
    throw InitError(problems);
  Skeleton skeleton;
  skeleton.source_schema = schema.name;
  skeleton.target_schema = target_schema;
  std::vector<std::string> problems;
  for (const auto& table : schema.tables) {
    if (const auto why = unwritable(table)) {
      skeleton.skipped.push_back({printable(table.name), *why, Target::left_out, ""});
      continue;
    }
    skeleton.tables.push_back(table);
    // The job, its list and its function are named after the table.
    if (const auto flaw = steering_flaw(table.name)) {
      skeleton.skipped.push_back({table.name, "a job's name" + *flaw, Target::copied, ""});
      continue;
    }
    const auto key = choose_key(table);
    if (!key) {
      skeleton.skipped.push_back(
          {table.name, no_key_reason(table), Target::copied, suggested_key(table)});
      continue;
    }
    if (schema.functions.count(table.name))
      problems.push_back("function " + k_function_schema + "." + table.name +
                         " exists already, and R__transforms.sql would replace it: drop it, "
                         "or run pgxform init against a database without it");
    SkeletonJob job;
    job.table = table;
    job.key = *key;
    note_key(job);
    skeleton.jobs.push_back(std::move(job));
  }
  if (skeleton.jobs.empty()) {
    problems.insert(problems.begin(), "no table of schema '" + printable(schema.name) +
                                          "' has a usable key (a column that leads a btree "
                                          "index): a jobs file needs at least one job");
    for (const auto& table : skeleton.skipped)
      problems.push_back(table.table + ": " + table.reason);
  }
  if (!problems.empty()) throw InitError(problems);
  const auto refs = references(schema, skeleton.jobs);
  order_lists(refs, list_order(refs), skeleton.jobs);
  name_lists(skeleton.jobs);
  return skeleton;
}

}  // namespace pgxform
