#include "output/logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

#include "base/redaction.h"
#include "output/json_output.h"
#include "output/terminal_text.h"

namespace pgxform {

namespace {

std::mutex g_writer_mutex;
LogWriter g_writer;
LogFormat g_format = LogFormat::text;

void write_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_writer_mutex);
  if (g_writer)
    g_writer(line);
  else
    std::cerr << line;
}

// 2026-12-02T08:22:55.123+00:00, local time with its offset, as the text lines off a terminal.
std::string iso_time(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()) %
                  std::chrono::seconds(1);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char date[32], zone[8];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::strftime(zone, sizeof zone, "%z", &tm);  // +0000
  const std::string z = zone;
  return std::string(date) + fmt::format(".{:03d}", int(ms.count())) + z.substr(0, 3) + ":" +
         z.substr(3);
}

}  // namespace

std::string contained(const std::string& line) {
  return terminal_text(line, Lines::indented);
}

namespace {

class RedactingSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    write_line(contained(redact(fmt::to_string(formatted))));
  }
  void flush_() override { std::cerr.flush(); }
};

class JsonSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    const Json line{{"time", iso_time(msg.time)},
                    {"level", std::string(level.data(), level.size())},
                    {"message", redact(std::string(msg.payload.data(), msg.payload.size()))}};
    write_line(json_line(line) + "\n");
  }
  void flush_() override { std::cerr.flush(); }
};

// The line prefix (spdlog's pattern), for stderr on a terminal or not (logging.h).
const char* log_pattern(bool terminal) {
  return terminal ? "%H:%M:%S %^%l%$ %v" : "%Y-%m-%dT%H:%M:%S.%e%z %l %v";
}

}  // namespace

void set_log_writer(LogWriter writer) {
  std::lock_guard<std::mutex> lock(g_writer_mutex);
  g_writer = std::move(writer);
}

LogFormat log_format() {
  return g_format;
}

void setup_logging(Verbosity verbosity, LogFormat format) {
  g_format = format;
  spdlog::sink_ptr sink;
  if (format == LogFormat::json)
    sink = std::make_shared<JsonSink>();
  else
    sink = std::make_shared<RedactingSink>();
  auto logger = std::make_shared<spdlog::logger>("pgxform", sink);
  logger->set_pattern(log_pattern(isatty(STDERR_FILENO) == 1));
  logger->set_level(verbosity == Verbosity::debug   ? spdlog::level::debug
                    : verbosity == Verbosity::quiet ? spdlog::level::warn
                                                    : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace pgxform
