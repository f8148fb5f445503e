// sql_text: SQL text read as PostgreSQL's lexer reads it, just far enough to find its
// top-level statements — never inside a quoted string or identifier, a comment, a
// dollar-quoted body, or the body of a CREATE FUNCTION ... BEGIN ATOMIC ... END — and whether
// one of them controls the transaction: BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK,
// ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION. pgxform runs a script (and a one-shot step)
// inside a transaction of its own, together with its history row; a COMMIT in it would commit
// behind pgxform's back, and what ran before it would stay whatever happened after. explain
// splits a SQL function's body into its statements the same way, to find the one that failed
// (PostgreSQL names it "SQL function "f" statement N").
//
// And the other way round, a name written as SQL text: quote_ident, the one quoting of an
// identifier, for the statements pgxform runs and the scripts `pgxform init` writes. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgxform {

struct TransactionControl {
  std::size_t offset = 0;  // where the statement starts
  std::string command;     // "COMMIT", "START TRANSACTION", ... in capitals
};

// The first top-level statement of `sql` that controls the transaction; none when none does.
std::optional<TransactionControl> find_transaction_control(std::string_view sql);

// The top-level statements of `sql`, in order, each without its ';' and the blanks around it;
// a statement of only comments is none.
std::vector<std::string> split_statements(std::string_view sql);

// "a""b" -> "\"a\"\"b\"": always quoted, so that names keep their case and spelling.
std::string quote_ident(const std::string& name);

// A statement written out whole, as one raw string, with @name@ placeholders (lower-case
// letters and '_' between two '@') for what is known only when it is built: identifiers
// already quoted (a table, a key column, a function) and fragments that differ by a state
// version. Never a value: values are bound parameters ($1...). Replaces every placeholder of
// `statement` with its text from `parts`, in one pass: a part's text is never read for
// placeholders (fill a fragment's own placeholders before it is a part). Throws
// std::logic_error naming it when a placeholder of the statement has no part, or a part no
// placeholder (a typo either way).
struct SqlPart {
  std::string placeholder;  // "@log@"
  std::string text;
};
std::string fill_sql(const std::string& statement, const std::vector<SqlPart>& parts);

}  // namespace pgxform
