#include "transport/chain/chain_probe.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace anya::transport {

namespace json = boost::json;

namespace {

Status bad_output(const std::string& what) {
  return {Errc::malformed, "printed " + what + " (expected {\"height\": N, \"tip\": \"<64 hex "
                           "digits>\"})"};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::uint64_t> read_height(const json::object& o) {
  const json::value* v = o.if_contains("height");
  if (v == nullptr) return bad_output("no \"height\"");
  std::uint64_t height = 0;
  if (v->is_uint64()) {
    height = v->as_uint64();
  } else if (v->is_int64() && v->as_int64() >= 0) {
    height = static_cast<std::uint64_t>(v->as_int64());
  } else {
    return bad_output("\"height\": " + json::serialize(*v) + ", not a non-negative whole number");
  }
  if (height > engine::Limits::max_chain_height) {
    return bad_output("\"height\": " + std::to_string(height) + ", above the limit " +
                      std::to_string(engine::Limits::max_chain_height));
  }
  return height;
}

Status read_tip(const json::object& o, engine::ChainView& view) {
  const json::value* v = o.if_contains("tip");
  if (v == nullptr) return bad_output("no \"tip\"");
  if (!v->is_string()) return bad_output("\"tip\": " + json::serialize(*v) + ", not a string");
  const json::string& tip = v->as_string();
  if (tip.size() != 2 * view.tip.size()) {
    return bad_output("\"tip\" of " + std::to_string(tip.size()) + " characters, not 64");
  }
  for (std::size_t i = 0; i < view.tip.size(); i++) {
    const int hi = hex_value(tip[2 * i]);
    const int lo = hex_value(tip[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return bad_output("\"tip\" with a non-hex character at position " +
                        std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    view.tip[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return {};
}

// The first line of what a failed command said on stderr, for the reason.
std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

using SteadyClock = std::chrono::steady_clock;

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  ~Pipe() {
    if (read_fd >= 0) ::close(read_fd);
    if (write_fd >= 0) ::close(write_fd);
  }
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_fd = fds[0];
    write_fd = fds[1];
    return true;
  }
  void close_write() {
    ::close(write_fd);
    write_fd = -1;
  }
};

// Starts /bin/sh -c `command` in a new process group, stdout and stderr to the pipes.
Result<pid_t> spawn_shell(const std::string& command, Pipe& out, Pipe& err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out.write_fd, 1);
  ::posix_spawn_file_actions_adddup2(&actions, err.write_fd, 2);
  // Its own process group, so a timeout kills what the shell started too; default signal
  // handling and no blocked signals, whatever this process does with them.
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  ::posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  std::string arg0 = "sh", arg1 = "-c", arg2 = command;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status(Errc::io_error, std::string("cannot start /bin/sh: ") + std::strerror(rc));
  }
  return pid;
}

enum class Collected { done, timed_out, too_much };

// Reads both pipes until both are closed, the deadline passes or stdout grows too large.
Collected collect(Pipe& out, Pipe& err, SteadyClock::time_point deadline,
                  std::string& stdout_text, std::string& stderr_text) {
  pollfd fds[2] = {{out.read_fd, POLLIN, 0}, {err.read_fd, POLLIN, 0}};
  char buffer[4096];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - SteadyClock::now());
    if (left.count() <= 0) return Collected::timed_out;
    const int ready = ::poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return ready == 0 ? Collected::timed_out : Collected::done;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        fds[i].fd = -1;  // closed (or failed): nothing more from it
        continue;
      }
      std::string& sink = i == 0 ? stdout_text : stderr_text;
      const std::size_t keep = i == 0 ? ChainProbeLimits::max_output_bytes + 1
                                      : ChainProbeLimits::max_stderr_bytes;
      sink.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n),
                                                keep - std::min(keep, sink.size())));
      if (i == 0 && sink.size() > ChainProbeLimits::max_output_bytes) return Collected::too_much;
    }
  }
  return Collected::done;
}

// Waits for `pid` to exit until the deadline; nullopt if it has not.
std::optional<int> wait_exit(pid_t pid, SteadyClock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;  // not ours to wait for any more: treat as failed
    if (SteadyClock::now() >= deadline) return std::nullopt;
    // Its output is closed, so it is about to exit: a short sleep, not a busy loop.
    ::usleep(1000);
  }
}

void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

Status describe_exit(int status, const std::string& stderr_text) {
  const std::string said = first_line(stderr_text);
  const std::string tail = said.empty() ? std::string() : ": " + said;
  if (WIFSIGNALED(status)) {
    return {Errc::io_error, "killed by signal " + std::to_string(WTERMSIG(status)) + tail};
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string hint = code == 127 ? " (command not found?)" : code == 126
                                             ? " (not executable?)" : "";
  return {Errc::io_error, "exited with status " + std::to_string(code) + hint + tail};
}

}  // namespace

Result<engine::ChainView> parse_chain_view_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return bad_output("nothing");
    return bad_output("bad JSON (" + ec.message() + ")");
  }
  const json::object* o = v.if_object();
  if (o == nullptr) return bad_output("JSON that is not an object");
  for (const auto& field : *o) {
    if (field.key() != "height" && field.key() != "tip") {
      return bad_output("an unknown field \"" + std::string(field.key()) + "\"");
    }
  }
  engine::ChainView view;
  Result<std::uint64_t> height = read_height(*o);
  if (!height) return height.status();
  view.height = *height;
  if (Status s = read_tip(*o, view); !s) return s;
  ANYA_ASSERT(view.height <= engine::Limits::max_chain_height);
  return view;
}

std::string chain_tip_hex(const engine::ChainView& view) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * view.tip.size());
  for (std::uint8_t b : view.tip) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

Result<engine::ChainView> run_chain_probe_command(const std::string& command,
                                                  std::uint64_t timeout_ms) {
  ANYA_ASSERT(!command.empty());
  Pipe out, err;
  if (!out.open() || !err.open()) {
    return Status(Errc::io_error, std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  const SteadyClock::time_point deadline =
      SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  Result<pid_t> pid = spawn_shell(command, out, err);
  if (!pid) return pid.status();
  out.close_write();
  err.close_write();
  std::string stdout_text, stderr_text;
  const Collected collected = collect(out, err, deadline, stdout_text, stderr_text);
  std::optional<int> status;
  if (collected == Collected::done) status = wait_exit(*pid, deadline);
  if (!status) {
    kill_group(*pid);
    if (collected == Collected::too_much) {
      return Status(Errc::malformed, "printed more than " +
                                         std::to_string(ChainProbeLimits::max_output_bytes) +
                                         " bytes; killed");
    }
    return Status(Errc::io_error, "timed out after " + std::to_string(timeout_ms) + " ms; killed");
  }
  if (*status != 0) return describe_exit(*status, stderr_text);
  return parse_chain_view_json(stdout_text);
}

ChainProber::ChainProber(ChainProbeFn probe, std::uint64_t interval_ms, ChainProbeSink deliver)
    : probe_(std::move(probe)), interval_ms_(interval_ms), deliver_(std::move(deliver)) {
  ANYA_ASSERT(probe_ != nullptr);
  ANYA_ASSERT(deliver_ != nullptr);
  ANYA_ASSERT(interval_ms_ > 0);
}

ChainProber::~ChainProber() { stop(); }

void ChainProber::start() {
  ANYA_ASSERT(!thread_.joinable());
  thread_ = std::thread([this] { loop(); });
}

void ChainProber::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ChainProber::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    deliver_(probe_());
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

}  // namespace anya::transport
