// Leveled, line-oriented logging to stderr for the production node: one line per event, with a
// UTC timestamp, the level, the node and a component, so `grep node=3` or `grep peer` work across
// the logs of a whole cluster. Lines are written whole (one write per line), so the logs of
// several threads never interleave inside a line. There is no global logger: each component gets
// a Logger by value from the node that owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

namespace anya::transport {

enum class LogLevel : std::uint8_t { error = 0, warn = 1, info = 2, debug = 3 };
bool parse_log_level(std::string_view text, LogLevel& out);

// Where lines go. The default sink is stderr; tests capture lines with their own sink.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view line) = 0;
};
std::shared_ptr<LogSink> stderr_sink();

class Logger {
 public:
  Logger() = default;  // discards everything
  Logger(std::shared_ptr<LogSink> sink, LogLevel level, std::string prefix)
      : sink_(std::move(sink)), level_(level), prefix_(std::move(prefix)) {}

  // A logger for a sub-component: "node=1" + "peer" -> "node=1 peer:".
  Logger with(std::string_view component) const;
  bool enabled(LogLevel level) const { return sink_ && level <= level_; }
  void log(LogLevel level, std::string_view message) const;

  template <typename... Parts>
  void error(const Parts&... parts) const { emit(LogLevel::error, parts...); }
  template <typename... Parts>
  void warn(const Parts&... parts) const { emit(LogLevel::warn, parts...); }
  template <typename... Parts>
  void info(const Parts&... parts) const { emit(LogLevel::info, parts...); }
  template <typename... Parts>
  void debug(const Parts&... parts) const { emit(LogLevel::debug, parts...); }

 private:
  template <typename... Parts>
  void emit(LogLevel level, const Parts&... parts) const {
    if (!enabled(level)) return;
    std::ostringstream out;
    (out << ... << parts);
    log(level, out.str());
  }

  std::shared_ptr<LogSink> sink_;
  LogLevel level_ = LogLevel::info;
  std::string prefix_;
};

}  // namespace anya::transport
