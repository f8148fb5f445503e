#include "analysis/query_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace pgxform {

namespace {

// Below this many rows read, no scan is worth a finding, whatever the batch size.
constexpr double k_small_read = 1000;
// A scan reading this many times the batch's rows reads far more than the batch needs.
constexpr double k_read_ratio = 4;
// An inner side run this many times makes a nested loop worth a look.
constexpr double k_many_loops = 100;

// A plan node's line: "  ->  Seq Scan on target.items t  (cost=0.00..154.99 rows=9999
// width=8) (actual time=0.017..1.261 rows=9999 loops=1)", or "(never executed)" instead.
struct NodeLine {
  int indent = 0;
  std::string head;  // "Seq Scan on target.items t"
  bool executed = false;
  double rows = 0, loops = 0;
};

std::optional<NodeLine> read_node_line(const std::string& line) {
  const auto cost = line.find("  (cost=");
  if (cost == std::string::npos) return std::nullopt;
  NodeLine n;
  std::size_t at = line.find_first_not_of(' ');
  n.indent = int(at);
  if (line.compare(at, 2, "->") == 0) at = line.find_first_not_of(' ', at + 2);
  if (at >= cost) return std::nullopt;
  n.head = line.substr(at, cost - at);
  const auto actual = line.find(" (actual time=", cost);
  if (actual != std::string::npos) {
    const auto rows = line.find(" rows=", actual), loops = line.find(" loops=", actual);
    if (rows == std::string::npos || loops == std::string::npos) return std::nullopt;
    n.executed = true;
    n.rows = std::atof(line.c_str() + rows + 6);
    n.loops = std::atof(line.c_str() + loops + 7);
  }
  return n;
}

// "SubPlan 1", "InitPlan 1 (returns $0)", "CTE ins": the line heading the node below it.
std::optional<std::string> read_label(const std::string& line) {
  const auto at = line.find_first_not_of(' ');
  if (at == 0 || at == std::string::npos) return std::nullopt;
  const std::string text = line.substr(at);
  for (const char* prefix : {"SubPlan ", "InitPlan ", "CTE "})
    if (text.rfind(prefix, 0) == 0) return text;
  return std::nullopt;
}

// "        Hash Cond: (l.id = t.id)" -> ("Hash Cond", "(l.id = t.id)").
std::optional<std::pair<std::string, std::string>> read_property(const std::string& line) {
  const auto at = line.find_first_not_of(' ');
  if (at == 0 || at == std::string::npos || !std::isupper((unsigned char)line[at]))
    return std::nullopt;
  const auto colon = line.find(": ", at);
  if (colon == std::string::npos) return std::nullopt;
  for (std::size_t i = at; i < colon; ++i)
    if (!std::isalpha((unsigned char)line[i]) && line[i] != ' ' && line[i] != '-')
      return std::nullopt;
  return std::make_pair(line.substr(at, colon - at), line.substr(colon + 2));
}

// "Trigger RI_ConstraintTrigger_c_16458 for constraint entries_account_id_fkey: time=248.193
// calls=5000"; " on REL" follows the name or constraint when the statement wrote several
// tables, and "time=" is missing when timing was off.
std::optional<TriggerTime> read_trigger_line(const std::string& line) {
  if (line.rfind("Trigger ", 0) != 0) return std::nullopt;
  const auto colon = line.rfind(": ");
  if (colon == std::string::npos) return std::nullopt;
  const auto calls = line.find("calls=", colon);
  if (calls == std::string::npos) return std::nullopt;
  TriggerTime t;
  const auto time = line.find("time=", colon);
  if (time != std::string::npos && time < calls) t.time_ms = std::atof(line.c_str() + time + 5);
  t.calls = std::atof(line.c_str() + calls + 6);
  std::string head = line.substr(8, colon - 8);
  if (const auto on = head.rfind(" on "); on != std::string::npos) {
    t.relation = head.substr(on + 4);
    head.resize(on);
  }
  const std::string for_constraint = "for constraint ";
  if (head.rfind(for_constraint, 0) == 0) {  // without VERBOSE the name is left out
    t.constraint = head.substr(for_constraint.size());
  } else if (const auto at = head.find(" " + for_constraint); at != std::string::npos) {
    t.constraint = head.substr(at + 1 + for_constraint.size());
    t.name = head.substr(0, at);
  } else {
    t.name = head;
  }
  return t;
}

// Splits "a b c" into words, keeping double-quoted identifiers whole.
std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (c == ' ' && !quoted) {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

// "Index Scan using items_pkey on legacy.items l" -> type, relation, alias.
void read_head(const std::string& head, PlanNode& node) {
  const std::vector<std::string> w = words(head);
  std::size_t i = 0;
  std::string type;
  while (i < w.size() && w[i] != "on" && w[i] != "using")
    type += (type.empty() ? "" : " ") + w[i++];
  node.type = type;
  if (i < w.size() && w[i] == "using") i += 2;  // the index's name
  if (i < w.size() && w[i] == "on" && i + 1 < w.size()) {
    node.relation = w[i + 1];
    if (i + 2 < w.size()) {
      node.alias = w[i + 2];
    } else {
      const auto dot = node.relation.rfind('.');
      node.alias = dot == std::string::npos ? node.relation : node.relation.substr(dot + 1);
    }
  }
}

// Splits an Output list at its top-level commas.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  int depth = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') quoted = !quoted;
    if (!quoted && c == '(') ++depth;
    if (!quoted && c == ')') --depth;
    if (!quoted && depth == 0 && c == ',') {
      out.push_back(item);
      item.clear();
      if (i + 1 < text.size() && text[i + 1] == ' ') ++i;
      continue;
    }
    item += c;
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<std::size_t> children(const StatementPlan& plan, std::size_t node) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < plan.nodes.size(); ++i)
    if (plan.nodes[i].parent == int(node)) out.push_back(i);
  return out;
}

bool is_scan(const PlanNode& n) {
  return n.type.find("Scan") != std::string::npos || n.type == "Materialize";
}

bool is_join(const PlanNode& n) {
  return n.type.find("Join") != std::string::npos || n.type.rfind("Nested Loop", 0) == 0;
}

// Rows read by the scans of a subtree, over all their loops.
double subtree_reads(const StatementPlan& plan, std::size_t node) {
  double total = is_scan(plan.nodes[node]) ? plan.nodes[node].rows_read() : 0;
  for (std::size_t c : children(plan, node)) total += subtree_reads(plan, c);
  return total;
}

// The Seq Scan in a subtree that reads the most, if any.
std::optional<std::size_t> worst_seq_scan(const StatementPlan& plan, std::size_t node) {
  std::optional<std::size_t> best;
  if (plan.nodes[node].type.find("Seq Scan") != std::string::npos) best = node;
  for (std::size_t c : children(plan, node))
    if (auto s = worst_seq_scan(plan, c))
      if (!best || plan.nodes[*s].rows_read() > plan.nodes[*best].rows_read()) best = s;
  return best;
}

bool under_subplan(const StatementPlan& plan, std::size_t node) {
  for (int i = int(node); i >= 0; i = plan.nodes[std::size_t(i)].parent)
    if (plan.nodes[std::size_t(i)].label.rfind("SubPlan", 0) == 0) return true;
  return false;
}

// An identifier at `at` ("id", or quoted: "My Id"); its length, 0 when there is none.
std::size_t identifier_length(const std::string& text, std::size_t at) {
  if (at >= text.size()) return 0;
  if (text[at] == '"') {
    for (std::size_t i = at + 1; i < text.size(); ++i)
      if (text[i] == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          ++i;  // "" inside a quoted identifier
          continue;
        }
        return i + 1 - at;
      }
    return 0;
  }
  if (!std::isalpha((unsigned char)text[at]) && text[at] != '_') return 0;
  std::size_t i = at + 1;
  while (i < text.size() &&
         (std::isalnum((unsigned char)text[i]) || text[i] == '_' || text[i] == '$'))
    ++i;
  return i - at;
}

// The columns of `alias` that `text` compares for equality ("t.id = l.id" -> id).
void equality_columns(const std::string& text, const std::string& alias,
                      std::vector<std::string>& out) {
  for (std::size_t begin = 0; begin < text.size(); ++begin) {
    // alias.column, where alias starts here and is not itself after a dot (schema.table.column)
    // or inside a longer name.
    if (text.compare(begin, alias.size(), alias) != 0) continue;
    if (begin > 0 && (text[begin - 1] == '.' || text[begin - 1] == '_' ||
                      std::isalnum((unsigned char)text[begin - 1])))
      continue;
    const std::size_t dot = begin + alias.size();
    if (dot >= text.size() || text[dot] != '.') continue;
    const std::size_t length = identifier_length(text, dot + 1);
    if (length == 0) continue;
    const std::string column = text.substr(dot + 1, length);
    std::size_t after = dot + 1 + length;
    while (after < text.size() && text[after] == ' ') ++after;
    std::size_t before = begin;
    while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '(')) --before;
    const bool equals_after = after < text.size() && text[after] == '=' &&
                              (after + 1 >= text.size() || text[after + 1] != '=');
    const bool equals_before =
        before > 0 && text[before - 1] == '=' &&
        (before < 2 || std::string("<>!").find(text[before - 2]) == std::string::npos);
    if ((equals_after || equals_before) && std::find(out.begin(), out.end(), column) == out.end())
      out.push_back(column);
    begin = dot + length;
  }
}

// The columns an index on the scan's table should have: what its filter, or the join that
// consumes it, compares for equality; for a scan under a sub-plan, what it returns.
std::vector<std::string> index_columns(const StatementPlan& plan, std::size_t scan) {
  const PlanNode& node = plan.nodes[scan];
  std::vector<std::string> columns;
  for (const auto& c : node.conditions) equality_columns(c, node.alias, columns);
  for (int up = node.parent; columns.empty() && up >= 0; up = plan.nodes[std::size_t(up)].parent) {
    const PlanNode& above = plan.nodes[std::size_t(up)];
    for (const auto& c : above.conditions) equality_columns(c, node.alias, columns);
    if (is_join(above) || !above.label.empty()) break;
  }
  if (columns.empty() && under_subplan(plan, scan) && !node.output.empty()) {
    const std::string prefix = node.alias + ".";
    if (node.output.front().rfind(prefix, 0) == 0)
      columns.push_back(node.output.front().substr(prefix.size()));
  }
  if (columns.size() > 3) columns.resize(3);
  return columns;
}

std::string count(double value) {
  std::ostringstream s;
  s << (long long)std::llround(value);
  return s.str();
}

// Fills in the proposed index of a finding about `scan`.
void propose(const StatementPlan& plan, std::size_t scan, Finding& finding) {
  const PlanNode& node = plan.nodes[scan];
  if (node.relation.empty()) return;
  finding.columns = index_columns(plan, scan);
  if (finding.columns.empty()) return;
  finding.relation = node.relation;
  if (node.relation.rfind("pg_temp", 0) == 0)
    finding.text +=
        " It is a temporary table: create the index in the function, after creating"
        " the table.";
  if (under_subplan(plan, scan)) {
    for (const auto& n : plan.nodes)
      for (const auto& c : n.conditions)
        if (c.find("NOT (hashed SubPlan") != std::string::npos ||
            c.find("NOT (SubPlan") != std::string::npos) {
          finding.text += " A NOT IN (SELECT ...) cannot use an index: rewrite it as NOT EXISTS.";
          return;
        }
  }
}

}  // namespace

std::optional<StatementPlan> parse_auto_explain(const std::string& message) {
  StatementPlan plan;
  const auto duration = message.find("duration: ");
  const auto text_at = message.find("Query Text: ");
  if (duration == std::string::npos || text_at == std::string::npos) return std::nullopt;
  plan.duration_ms = std::atof(message.c_str() + duration + 10);

  std::vector<std::string> lines;
  std::istringstream in(message.substr(text_at + 12));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // The query text runs until the plan's root: the first unindented line of a plan node.
  std::size_t first = 1;
  while (first < lines.size() &&
         !(lines[first][0] != ' ' && read_node_line(lines[first]).has_value()))
    ++first;
  if (first >= lines.size()) return std::nullopt;
  for (std::size_t i = 0; i < first; ++i) plan.query_text += (i ? "\n" : "") + lines[i];
  // Leading and trailing blank lines of a function body are no part of the statement.
  const auto begin = plan.query_text.find_first_not_of(" \n\t");
  const auto end = plan.query_text.find_last_not_of(" \n\t;");
  plan.query_text =
      begin == std::string::npos ? "" : plan.query_text.substr(begin, end - begin + 1);

  std::vector<std::pair<int, std::size_t>> open;  // (indent, node) of the nodes above
  std::string label;
  for (std::size_t i = first; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find_first_not_of(' ') == std::string::npos) continue;
    plan.plan_text += line + "\n";
    if (const auto trigger = read_trigger_line(line)) {
      plan.triggers.push_back(*trigger);
    } else if (const auto n = read_node_line(line)) {
      PlanNode node;
      node.indent = n->indent;
      read_head(n->head, node);
      node.rows = n->rows;
      node.loops = n->loops;
      node.label = label;
      label.clear();
      while (!open.empty() && open.back().first >= node.indent) open.pop_back();
      node.parent = open.empty() ? -1 : int(open.back().second);
      open.emplace_back(node.indent, plan.nodes.size());
      plan.nodes.push_back(node);
    } else if (const auto l = read_label(line)) {
      label = *l;
    } else if (const auto property = read_property(line); property && !plan.nodes.empty()) {
      PlanNode& node = plan.nodes.back();
      const auto& [key, value] = *property;
      if (key == "Output")
        node.output = split_list(value);
      else if (key == "Rows Removed by Filter" || key == "Rows Removed by Index Recheck")
        node.removed += std::atof(value.c_str());
      else if (key == "Filter" || key == "Hash Cond" || key == "Join Filter" ||
               key == "Merge Cond" || key == "Index Cond" || key == "Recheck Cond" ||
               key == "One-Time Filter")
        node.conditions.push_back(key + ": " + value);
    }
  }
  if (plan.nodes.empty()) return std::nullopt;
  return plan;
}

std::string Finding::index_sql() const {
  if (relation.empty() || columns.empty()) return "";
  std::string table = relation;
  if (table.rfind("pg_temp", 0) == 0) table = table.substr(table.find('.') + 1);
  std::string sql = "CREATE INDEX ON " + table + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + columns[i];
  return sql + ")";
}

double many_rows_for(double batch_rows) {
  return std::max(k_small_read, k_read_ratio * std::max(batch_rows, 1.0));
}

std::vector<Finding> find_problems(const StatementPlan& plan, double batch_rows) {
  std::vector<Finding> findings;
  const double many = many_rows_for(batch_rows);
  for (std::size_t i = 0; i < plan.nodes.size(); ++i) {
    const PlanNode& node = plan.nodes[i];
    if (node.type.find("Seq Scan") != std::string::npos && node.rows_read() >= many) {
      Finding f{Finding::Kind::seq_scan,
                node.type + " on " + node.relation + " reads " + count(node.rows_read()) + " rows" +
                    (node.loops > 1 ? " (" + count(node.rows + node.removed) + " per loop, " +
                                          count(node.loops) + " loops)"
                                    : "") +
                    " for a batch of " + count(batch_rows) +
                    " rows: it reads the whole table for every batch, so each batch costs more"
                    " as the table grows.",
                "",
                {},
                ""};
      propose(plan, i, f);
      findings.push_back(f);
    }
    if (node.label.rfind("SubPlan", 0) == 0 && node.loops > 1 && subtree_reads(plan, i) >= many) {
      Finding f{Finding::Kind::per_row_subplan,
                node.label + " runs once per row: " + count(node.loops) +
                    " times for this batch, reading " + count(subtree_reads(plan, i)) +
                    " rows in all.",
                "",
                {},
                ""};
      if (auto scan = worst_seq_scan(plan, i)) propose(plan, *scan, f);
      findings.push_back(f);
    }
    if (node.type.rfind("Nested Loop", 0) == 0) {
      const auto kids = children(plan, i);
      if (kids.size() >= 2) {
        const PlanNode& inner = plan.nodes[kids[1]];
        const double reads = subtree_reads(plan, kids[1]);
        if (inner.loops >= k_many_loops && reads >= many) {
          Finding f{Finding::Kind::nested_loop,
                    node.type + " runs its inner side (" + inner.type +
                        (inner.relation.empty() ? "" : " on " + inner.relation) + ") " +
                        count(inner.loops) + " times, reading " + count(reads) + " rows in all.",
                    "",
                    {},
                    ""};
          if (auto scan = worst_seq_scan(plan, kids[1])) propose(plan, *scan, f);
          findings.push_back(f);
        }
      }
    }
  }
  return findings;
}

bool TriggerTime::foreign_key() const {
  return name.rfind("RI_ConstraintTrigger_", 0) == 0;
}

std::vector<ScannedTable> unbounded_scans(const std::string& explain_json) {
  using PlanTree = nlohmann::json;
  const PlanTree doc = PlanTree::parse(explain_json, nullptr, false);
  std::vector<ScannedTable> tables;
  if (!doc.is_array() || doc.empty() || !doc[0].is_object() || !doc[0].contains("Plan"))
    return tables;
  // The plan is [ { "Plan": { "Node Type": ..., "Plans": [ children ] } } ]. A scan right
  // under a Limit stops after the rows it needs.
  const std::function<void(const PlanTree&, const std::string&)> walk =
      [&](const PlanTree& node, const std::string& parent) {
        if (!node.is_object()) return;
        const std::string type = node.value("Node Type", "");
        const bool unbounded =
            type == "Seq Scan" ||
            ((type == "Index Scan" || type == "Index Only Scan") && !node.contains("Index Cond"));
        if (unbounded && parent != "Limit") {
          const ScannedTable table{node.value("Schema", ""), node.value("Relation Name", ""), type};
          if (!table.name.empty() && std::find(tables.begin(), tables.end(), table) == tables.end())
            tables.push_back(table);
        }
        if (const auto kids = node.find("Plans"); kids != node.end() && kids->is_array())
          for (const auto& kid : *kids) walk(kid, type);
      };
  walk(doc[0]["Plan"], "");
  return tables;
}

std::string plan_without_output(const std::string& plan_text) {
  std::istringstream in(plan_text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    const auto start = line.find_first_not_of(' ');
    if (start != std::string::npos && line.compare(start, 8, "Output: ") == 0) continue;
    out += line + "\n";
  }
  return out;
}

}  // namespace pgxform
