#include "logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>

#include "database.h"

namespace pgxform {

namespace {}  // namespace

std::string contained(const std::string& line) {
  std::string out;
  const std::size_t end = line.size() - (!line.empty() && line.back() == '\n' ? 1 : 0);
  for (std::size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == '\n') {
      out += "\n    ";
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += char(c);
    }
  }
  return out + line.substr(end);
}

namespace {

class RedactingSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::cerr << contained(redact(fmt::to_string(formatted)));
  }
  void flush_() override { std::cerr.flush(); }
};

// The line prefix (spdlog's pattern), for stderr on a terminal or not (logging.h).
const char* log_pattern(bool terminal) {
  return terminal ? "%H:%M:%S %^%l%$ %v" : "%Y-%m-%dT%H:%M:%S.%e%z %l %v";
}

}  // namespace

void setup_logging(Verbosity verbosity) {
  auto logger = std::make_shared<spdlog::logger>("pgxform", std::make_shared<RedactingSink>());
  logger->set_pattern(log_pattern(isatty(STDERR_FILENO) == 1));
  logger->set_level(verbosity == Verbosity::debug   ? spdlog::level::debug
                    : verbosity == Verbosity::quiet ? spdlog::level::warn
                                                    : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace pgxform
