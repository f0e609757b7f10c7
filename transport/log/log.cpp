#include "transport/log/log.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

namespace anya::transport {

namespace {

class StderrSink : public LogSink {
 public:
  void write(std::string_view line) override {
    // One write(2) per line: atomic for lines under PIPE_BUF, and never buffered past a crash.
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
      if (n <= 0) return;  // nowhere to report a failure to log
      done += static_cast<std::size_t>(n);
    }
  }
};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error: return "ERROR";
    case LogLevel::warn: return "WARN";
    case LogLevel::info: return "INFO";
    case LogLevel::debug: return "DEBUG";
  }
  return "?";
}

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[96];  // room for any int the compiler imagines in each field
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buffer;
}

}  // namespace

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "error") out = LogLevel::error;
  else if (text == "warn") out = LogLevel::warn;
  else if (text == "info") out = LogLevel::info;
  else if (text == "debug") out = LogLevel::debug;
  else return false;
  return true;
}

std::shared_ptr<LogSink> stderr_sink() {
  static const std::shared_ptr<LogSink> sink = std::make_shared<StderrSink>();
  return sink;
}

Logger Logger::with(std::string_view component) const {
  Logger child = *this;
  child.prefix_ = prefix_.empty() ? std::string(component)
                                  : prefix_ + " " + std::string(component);
  return child;
}

void Logger::log(LogLevel level, std::string_view message) const {
  if (!enabled(level)) return;
  std::string line = utc_timestamp();
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += prefix_;
  line += ": ";
  line += message;
  line += '\n';
  sink_->write(line);
}

}  // namespace anya::transport
