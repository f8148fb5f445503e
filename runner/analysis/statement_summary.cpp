#include "analysis/statement_summary.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "base/output_format.h"
#include "base/sql_text.h"

namespace pgxform {

namespace {

// A trigger (or a statement run many times) taking this share of the batch dominates it...
constexpr double k_dominant_share = 0.5;
// ... unless it took less than this: a finding about a sub-millisecond batch helps no one.
constexpr double k_dominant_min_ms = 1;
// Of foreign keys that together dominate the batch, those under this share go unmentioned.
constexpr double k_minor_share = 0.1;
// A statement run this many times in a batch is run once per row, or close to it.
constexpr double k_per_row_runs = 100;

std::string whole_number(double value) {
  return fixed(std::round(value), 0);
}

// The nodes' types and tables, one per line, indented as printed: two runs of one statement
// with this shape in common did the same work.
std::string plan_shape(const StatementPlan& plan) {
  std::string shape;
  for (const auto& n : plan.nodes)
    shape += std::string(std::size_t(n.indent), ' ') + n.type + " " + n.relation + "\n";
  return shape;
}

// What two runs of one statement have in common: the text (with other constants) and, but for a
// foreign key's check (which may switch from a custom plan to the generic one after a few
// runs), the plan's shape. A SQL function's statements all carry the function's whole body as
// their text: the shape tells them apart.
std::string statement_key(const StatementPlan& s) {
  return normalised_text(s.query_text) + "\n" +
         (statement_kind(s.query_text) == StatementKind::foreign_key ? "" : plan_shape(s));
}

bool word_character(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '$';
}

// The Seq Scan of `relation` in a plan, if any.
std::optional<std::size_t> seq_scan_of(const StatementPlan& plan, const std::string& relation) {
  for (std::size_t i = 0; i < plan.nodes.size(); ++i)
    if (plan.nodes[i].type.find("Seq Scan") != std::string::npos &&
        plan.nodes[i].relation == relation)
      return i;
  return std::nullopt;
}

// The foreign key's statement group that reads `relation`: its checks' plans.
const StatementGroup* checks_reading(const StatementSummary& summary,
                                     const std::vector<StatementPlan>& statements,
                                     const std::string& relation) {
  for (const auto& g : summary.groups) {
    if (g.kind != StatementKind::foreign_key) continue;
    for (const auto& n : statements[g.slowest].nodes)
      if (n.relation == relation) return &g;
  }
  return nullptr;
}

std::string milliseconds_text(double value) {
  return fixed(value, 1) + " ms";
}

Finding foreign_key_finding(const TriggerTotal& total, const ForeignKeyTrigger* fk,
                            const StatementSummary& summary,
                            const std::vector<StatementPlan>& statements, double whole_ms) {
  const TriggerTime& t = total.trigger;
  Finding f{Finding::Kind::foreign_key, "", "", {}, ""};
  const std::string constraint = fk ? fk->constraint : t.constraint;
  const std::string table = fk ? fk->table : (t.relation.empty() ? "its table" : t.relation);
  f.text = "the foreign key " + constraint + " of " + table + " takes " +
           milliseconds_text(t.time_ms) + ", " + percent_of(t.time_ms, whole_ms) +
           " of the batch, in " + whole_number(t.calls) + " checks";
  // The two steps, written out whole: the names and the definition as the catalog gave them.
  static const char* const k_steps =
      "a step before the job, ALTER TABLE @table@ DROP CONSTRAINT @constraint@; and one after it,"
      " ALTER TABLE @table@ ADD CONSTRAINT @constraint@ @definition@ NOT VALID;"
      " ALTER TABLE @table@ VALIDATE CONSTRAINT @constraint@;";
  const std::string validate =
      fk ? fill_sql(k_steps, {{"@table@", fk->table},
                              {"@constraint@", fk->constraint},
                              {"@definition@", fk->definition}})
         : "drop the constraint before the job, add it back after it as NOT VALID and VALIDATE "
           "it;";
  if (fk && fk->on_referenced) {
    f.text += ", one per row of " + fk->referenced + " deleted or updated, each a look-up of " +
              fk->table + ".";
    const StatementGroup* checks = checks_reading(summary, statements, fk->table);
    const auto scan = checks ? seq_scan_of(statements[checks->slowest], fk->table) : std::nullopt;
    if (scan && !fk->columns.empty()) {
      const PlanNode& n = statements[checks->slowest].nodes[*scan];
      f.text += " Each check reads the whole table (Seq Scan, " + whole_number(n.rows_read()) +
                " rows): nothing indexes its referencing columns.";
      f.relation = fk->table;
      f.columns = fk->columns;
      f.remedy =
          "an index on the referencing columns (below): each check then reads one index "
          "entry instead of the table.";
      return f;
    }
    f.remedy = "check the constraint once, after the job, rather than once per row: " + validate;
    return f;
  }
  f.text += ", one per row written, each a look-up of " +
            (fk ? fk->referenced : std::string("the referenced table")) +
            " and a lock on the row it finds: a cost per row that no index removes.";
  f.remedy = "check the constraint once, after the job, rather than once per row: " + validate +
             " VALIDATE checks every row in one query. The rows it references must be loaded "
             "first (their job in a list that this one is after:). DEFERRABLE INITIALLY "
             "DEFERRED would only move the checks to each batch's COMMIT, at the same cost.";
  return f;
}

Finding trigger_finding(const TriggerTotal& total, double whole_ms) {
  const TriggerTime& t = total.trigger;
  Finding f{Finding::Kind::trigger, "", "", {}, ""};
  f.text = "trigger " + t.name + (t.relation.empty() ? "" : " on " + t.relation) + " takes " +
           milliseconds_text(t.time_ms) + ", " + percent_of(t.time_ms, whole_ms) +
           " of the batch, in " + whole_number(t.calls) + " calls: it runs once per row written.";
  f.remedy =
      "do its work once per statement: a FOR EACH STATEMENT trigger with a transition table "
      "(REFERENCING NEW TABLE AS ...) sees every row at once; or, when its work can wait, "
      "disable it for the job (ALTER TABLE ... DISABLE TRIGGER " +
      t.name + ") and do that work in a step after it.";
  return f;
}

}  // namespace

StatementKind statement_kind(const std::string& query_text) {
  const std::string text = normalised_text(query_text);
  const std::string lock = " FOR KEY SHARE OF x";
  if (text.rfind("SELECT ? FROM ", 0) == 0 && text.size() > lock.size() &&
      text.compare(text.size() - lock.size(), lock.size(), lock) == 0)
    return StatementKind::foreign_key;
  if ((text.rfind("DELETE FROM ", 0) == 0 || text.rfind("UPDATE ", 0) == 0) &&
      text.find(" OPERATOR(pg_catalog.") != std::string::npos)
    return StatementKind::foreign_key;
  return StatementKind::ordinary;
}

std::string normalised_text(const std::string& query_text) {
  std::string out;
  bool blank = false;
  std::size_t i = 0;
  while (i < query_text.size()) {
    const char c = query_text[i];
    if (std::isspace((unsigned char)c)) {
      blank = true;
      ++i;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    if (c == '\'' || c == '"') {
      std::size_t end = i + 1;
      while (end < query_text.size()) {
        if (query_text[end] == c && end + 1 < query_text.size() && query_text[end + 1] == c)
          end += 2;  // a doubled quote stays inside
        else if (query_text[end] == c)
          break;
        else
          ++end;
      }
      end = std::min(end + 1, query_text.size());
      out += c == '"' ? query_text.substr(i, end - i) : "?";  // identifiers stay
      i = end;
    } else if (std::isdigit((unsigned char)c) && (out.empty() || !word_character(out.back()))) {
      while (i < query_text.size() &&
             (std::isdigit((unsigned char)query_text[i]) || query_text[i] == '.'))
        ++i;
      out += '?';
    } else if (word_character(c)) {
      while (i < query_text.size() && word_character(query_text[i])) out += query_text[i++];
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

StatementSummary summarise_statements(const std::vector<StatementPlan>& statements) {
  StatementSummary summary;
  std::map<std::string, std::size_t> by_key;
  std::vector<std::size_t> group_of(statements.size());
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const StatementPlan& s = statements[i];
    auto [at, added] = by_key.emplace(statement_key(s), summary.groups.size());
    if (added) summary.groups.push_back({s.query_text, statement_kind(s.query_text), {}, i, 0, 0});
    StatementGroup& g = summary.groups[at->second];
    g.runs.push_back(i);
    g.total_ms += s.duration_ms;
    if (g.runs.size() == 1 || s.duration_ms > g.max_ms) {
      g.max_ms = s.duration_ms;
      g.slowest = i;
    }
    group_of[i] = at->second;
  }
  // The function's statements first: they are what its author wrote.
  std::vector<std::size_t> order(summary.groups.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(), [&](std::size_t g) {
    return summary.groups[g].kind == StatementKind::ordinary;
  });
  std::vector<StatementGroup> sorted;
  std::vector<std::size_t> position(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    sorted.push_back(std::move(summary.groups[order[k]]));
    position[order[k]] = k;
  }
  summary.groups = std::move(sorted);

  std::map<std::string, std::size_t> trigger_at;
  for (std::size_t i = 0; i < statements.size(); ++i)
    for (const auto& t : statements[i].triggers) {
      const std::string key = t.name + "\n" + t.constraint + "\n" + t.relation;
      auto [at, added] = trigger_at.emplace(key, summary.triggers.size());
      const bool repeated = summary.groups[position[group_of[i]]].runs.size() > 1;
      if (added) {
        summary.triggers.push_back({t, position[group_of[i]], repeated});
        continue;
      }
      TriggerTotal& total = summary.triggers[at->second];
      total.trigger.time_ms += t.time_ms;
      total.trigger.calls += t.calls;
      total.fired_by_repeats = total.fired_by_repeats || repeated;
    }
  return summary;
}

void take_timing(std::vector<StatementPlan>& first, const std::vector<StatementPlan>& second) {
  std::map<std::string, std::vector<std::size_t>> runs;
  for (std::size_t i = 0; i < first.size(); ++i) runs[statement_key(first[i])].push_back(i);
  std::set<std::string> taken;
  for (const auto& s : second) {
    const std::string key = statement_key(s);
    const auto at = runs.find(key);
    if (at == runs.end() || at->second.size() != 1 || !taken.insert(key).second) continue;
    first[at->second.front()] = s;
  }
}

std::vector<std::pair<Finding, std::size_t>> find_costly_repeats(
    const StatementSummary& summary, const std::vector<StatementPlan>& statements,
    const std::map<std::string, ForeignKeyTrigger>& foreign_keys, const BatchTime& time,
    double batch_rows) {
  std::vector<std::pair<Finding, std::size_t>> findings;
  if (time.ms <= 0) return findings;
  auto dominant = [](double ms, double share) {
    return ms >= k_dominant_min_ms && share >= k_dominant_share;
  };
  // Foreign keys count together: two of them, each checking every row, may each take under
  // half the batch and both most of it.
  double foreign_keys_ms = 0, foreign_keys_share = 0;
  for (const auto& total : summary.triggers)
    if (total.trigger.foreign_key()) {
      foreign_keys_ms += total.trigger.time_ms;
      foreign_keys_share += total.trigger.time_ms / time.of(total);
    }
  for (const auto& total : summary.triggers) {
    const double whole = time.of(total);
    if (total.trigger.foreign_key()) {
      if (!dominant(foreign_keys_ms, foreign_keys_share) ||
          total.trigger.time_ms < k_minor_share * whole)
        continue;
      const auto fk = foreign_keys.find(total.trigger.name);
      Finding f = foreign_key_finding(total, fk == foreign_keys.end() ? nullptr : &fk->second,
                                      summary, statements, whole);
      if (foreign_keys_ms > total.trigger.time_ms)
        f.text += " The foreign keys together take " + percent_of(foreign_keys_share, 1) +
                  " of the batch.";
      findings.emplace_back(f, total.group);
    } else if (dominant(total.trigger.time_ms, total.trigger.time_ms / whole)) {
      findings.emplace_back(trigger_finding(total, whole), total.group);
    }
  }
  // A group run many times is never timed again: measured against the first run.
  const double whole = time.of_repeats();
  for (std::size_t g = 0; g < summary.groups.size(); ++g) {
    const StatementGroup& group = summary.groups[g];
    if (group.kind != StatementKind::ordinary || double(group.runs.size()) < k_per_row_runs ||
        !dominant(group.total_ms, group.total_ms / whole))
      continue;
    Finding f{Finding::Kind::repeated_statement, "", "", {}, ""};
    f.text = "it runs " + whole_number(double(group.runs.size())) + " times for a batch of " +
             whole_number(batch_rows) + " rows, taking " + milliseconds_text(group.total_ms) +
             ", " + percent_of(group.total_ms, whole) + " of the batch (at most " +
             milliseconds_text(group.max_ms) +
             " a run): a statement per row, as a loop in the function or a row trigger runs it.";
    f.remedy =
        "one set-based statement over the batch's rows (INSERT ... SELECT ... WHERE key BETWEEN "
        "the bounds) does the work of all its runs at once.";
    findings.emplace_back(f, g);
  }
  return findings;
}

std::string percent_of(double part, double whole) {
  if (whole <= 0) return "?%";
  const double share = 100 * part / whole;
  return share < 1 ? "<1%" : whole_number(share) + "%";
}

}  // namespace pgxform
