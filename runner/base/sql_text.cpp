#include "base/sql_text.h"

#include <cctype>
#include <stdexcept>
#include <vector>

namespace pgxform {

namespace {

bool word_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool word_char(char c) {
  return word_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}

std::string upper(std::string_view word) {
  std::string out(word);
  for (auto& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// One top-level statement as it is read: where it starts, its first two words, and whether
// the reader is inside the body of a CREATE ... BEGIN ATOMIC (whose own semicolons do not end
// the statement, and whose END does, unless it closes a CASE).
struct Statement {
  std::size_t start = std::string_view::npos;
  std::vector<std::string> words;
  std::string previous;
  bool atomic = false;
  int open_cases = 0;

  void word(std::size_t at, std::string_view text) {
    if (start == std::string_view::npos) start = at;
    const std::string w = upper(text);
    if (words.size() < 2) words.push_back(w);
    if (!words.empty() && words[0] == "CREATE" && !atomic && previous == "BEGIN" && w == "ATOMIC") {
      atomic = true;
      open_cases = 0;
    } else if (atomic && w == "CASE") {
      ++open_cases;
    } else if (atomic && w == "END") {
      if (open_cases > 0)
        --open_cases;
      else
        atomic = false;
    }
    previous = w;
  }
  void content(std::size_t at) {
    if (start == std::string_view::npos) start = at;
  }

  std::optional<TransactionControl> control() const {
    if (words.empty()) return std::nullopt;
    const std::string& first = words[0];
    const std::string second = words.size() > 1 ? words[1] : "";
    for (const char* command :
         {"BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"})
      if (first == command)
        return TransactionControl{start, second == "PREPARED" ? first + " PREPARED" : first};
    if ((first == "START" || first == "PREPARE") && second == "TRANSACTION")
      return TransactionControl{start, first + " TRANSACTION"};
    return std::nullopt;
  }
};

// The end of the quoted text that starts at `i` (a quote character), past its closing quote.
// A doubled quote stays inside; with `backslashes`, a backslash escapes the next character.
std::size_t skip_quoted(std::string_view sql, std::size_t i, bool backslashes) {
  const char quote = sql[i];
  for (++i; i < sql.size(); ++i) {
    if (backslashes && sql[i] == '\\') {
      ++i;
    } else if (sql[i] == quote) {
      if (i + 1 < sql.size() && sql[i + 1] == quote)
        ++i;
      else
        return i + 1;
    }
  }
  return sql.size();
}

// Past a comment starting at `i` ("--" or "/*", which nests).
std::size_t skip_comment(std::string_view sql, std::size_t i) {
  if (sql[i] == '-') {
    const std::size_t end = sql.find('\n', i);
    return end == std::string_view::npos ? sql.size() : end + 1;
  }
  int depth = 0;
  while (i + 1 < sql.size()) {
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return sql.size();
}

// Past a dollar-quoted string starting at `i` ($$...$$ or $tag$...$tag$); `i` itself when the
// '$' starts no such string (a parameter such as $1).
std::size_t skip_dollar_quoted(std::string_view sql, std::size_t i) {
  std::size_t end = i + 1;
  while (end < sql.size() && (word_start(sql[end]) ||
                              (end > i + 1 && std::isdigit(static_cast<unsigned char>(sql[end])))))
    ++end;
  if (end >= sql.size() || sql[end] != '$') return i;
  const std::string_view tag = sql.substr(i, end - i + 1);
  const std::size_t close = sql.find(tag, end + 1);
  return close == std::string_view::npos ? sql.size() : close + tag.size();
}

// Reads `sql` statement by statement: `visit(statement, end)` for each top-level statement,
// `end` being where its ';' is (or the text's end); stops when `visit` returns false.
template <typename Visit>
void for_each_statement(std::string_view sql, Visit visit) {
  Statement statement;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if ((c == '-' && next == '-') || (c == '/' && next == '*')) {
      i = skip_comment(sql, i);
    } else if (c == '\'' || c == '"') {
      statement.content(i);
      i = skip_quoted(sql, i, false);
    } else if (c == '$') {
      statement.content(i);
      const std::size_t end = skip_dollar_quoted(sql, i);
      i = end == i ? i + 1 : end;
    } else if (c == ';' && !statement.atomic) {
      if (!visit(statement, i)) return;
      statement = Statement{};
      ++i;
    } else if (word_start(c)) {
      std::size_t end = i;
      while (end < sql.size() && word_char(sql[end])) ++end;
      const std::string_view word = sql.substr(i, end - i);
      if (end < sql.size() && sql[end] == '\'' && upper(word) == "E") {
        // E'...': an escape string, where a backslash escapes the quote.
        statement.content(i);
        i = skip_quoted(sql, end, true);
        continue;
      }
      statement.word(i, word);
      i = end;
    } else {
      statement.content(i);
      ++i;
    }
  }
  visit(statement, sql.size());
}

}  // namespace

std::optional<TransactionControl> find_transaction_control(std::string_view sql) {
  std::optional<TransactionControl> found;
  for_each_statement(sql, [&](const Statement& statement, std::size_t) {
    found = statement.control();
    return !found;
  });
  return found;
}

std::vector<std::string> split_statements(std::string_view sql) {
  std::vector<std::string> statements;
  for_each_statement(sql, [&](const Statement& statement, std::size_t end) {
    if (statement.start == std::string_view::npos) return true;  // only blanks and comments
    std::string_view text = sql.substr(statement.start, end - statement.start);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
      text.remove_suffix(1);
    statements.emplace_back(text);
    return true;
  });
  return statements;
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string fill_sql(const std::string& statement, const std::vector<SqlPart>& parts) {
  std::vector<bool> used(parts.size(), false);
  std::string out;
  // One pass, left to right: what a part inserts is never read again, so that a name holding
  // '@' (a quoted table "a@b@") cannot be taken for a placeholder.
  for (std::size_t i = 0; i < statement.size();) {
    std::size_t end = std::string::npos;
    if (statement[i] == '@') {
      end = i + 1;
      while (end < statement.size() &&
             (std::islower(static_cast<unsigned char>(statement[end])) || statement[end] == '_'))
        ++end;
      if (end == i + 1 || end >= statement.size() || statement[end] != '@') end = std::string::npos;
    }
    if (end == std::string::npos) {
      out += statement[i++];
      continue;
    }
    const std::string placeholder = statement.substr(i, end + 1 - i);
    std::size_t k = 0;
    while (k < parts.size() && parts[k].placeholder != placeholder) ++k;
    if (k == parts.size())
      throw std::logic_error("fill_sql: no part for " + placeholder + " in the statement");
    out += parts[k].text;
    used[k] = true;
    i = end + 1;
  }
  for (std::size_t k = 0; k < parts.size(); ++k)
    if (!used[k])
      throw std::logic_error("fill_sql: no " + parts[k].placeholder + " in the statement");
  return out;
}

}  // namespace pgxform
