#include "base/redaction.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <set>
#include <string_view>
#include <vector>

namespace pgxform {

namespace {

std::mutex g_secrets_mutex;
std::set<std::string>& secrets() {
  static std::set<std::string> s;
  return s;
}

void add_secret(const std::string& secret) {
  if (secret.empty()) return;
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  secrets().insert(secret);
}

// A password as written, and the pieces a message may quote of it when it does not parse (a
// URI password with an unencoded '/' ends its host part early, and libpq then quotes what
// it found there). Pieces shorter than 3 characters are too common to hide and tell little.
void add_secret_with_pieces(const std::string& secret) {
  add_secret(secret);
  std::string piece;
  for (const char c : secret + "/") {
    if (std::string_view("/?#@:&=").find(c) == std::string_view::npos) {
      piece += c;
      continue;
    }
    if (piece.size() >= 3) add_secret(piece);
    piece.clear();
  }
}

// What libpq itself reads as the password, decoded (percent-encoding, quotes, escapes).
void add_parsed_password(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return;
  for (const PQconninfoOption* o = options; o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val) add_secret(o->val);
  PQconninfoFree(options);
}

}  // namespace

void register_secrets_from(const std::string& dsn) {
  if (const char* env = std::getenv("PGPASSWORD")) add_secret(env);
  add_parsed_password(dsn);
  // And as written, whether libpq could parse it or not: a message quotes the raw text.
  static const std::regex scheme(R"(^\s*postgres(?:ql)?://)");
  if (std::regex_search(dsn, scheme)) {
    // URI form, leading spaces too: postgresql://user:secret@host/db, the secret running to
    // the LAST '@' (an unencoded '@' or '/' in it included); and ?password=secret.
    static const std::regex uri(R"(postgres(?:ql)?://[^:/@\s]*:(.*)@)");
    std::smatch m;
    if (std::regex_search(dsn, m, uri)) add_secret_with_pieces(m[1].str());
    static const std::regex query(R"([?&]password=([^&\s]*))");
    for (std::sregex_iterator it(dsn.begin(), dsn.end(), query), end; it != end; ++it)
      add_secret_with_pieces((*it)[1].str());
    return;
  }
  // key=value form: password=secret or password='se cret' (its quote closed or not).
  static const std::regex kv(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'?|([^\s]+)))");
  for (std::sregex_iterator it(dsn.begin(), dsn.end(), kv), end; it != end; ++it)
    add_secret_with_pieces((*it)[2].matched ? (*it)[2].str() : (*it)[3].str());
}

bool dsn_has_password(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (error) PQfreemem(error);
  bool found = false;
  if (options) {
    for (const PQconninfoOption* o = options; o->keyword; ++o)
      if (std::string_view(o->keyword) == "password" && o->val && *o->val) found = true;
    PQconninfoFree(options);
  }
  static const std::regex written(R"((^|[\s?&])password\s*=|postgres(?:ql)?://[^:/@\s]*:[^@]*@)");
  return found || std::regex_search(dsn, written);
}

std::string redact(std::string text) {
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  // Longest first, so that a secret that begins with a shorter one is hidden whole.
  std::vector<std::string> ordered(secrets().begin(), secrets().end());
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& secret : ordered) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
      text.replace(pos, secret.size(), "***");
  }
  return text;
}

void clear_secrets() {
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  secrets().clear();
}

}  // namespace pgxform
