#include "transport/health/exec_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

extern char** environ;

namespace anya::transport {

namespace {

using SteadyClock = std::chrono::steady_clock;

// The first line of what a failed program said on stderr, for the reason.
std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

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

// Starts argv in a new process group, stdout and stderr to the pipes. posix_spawnp reports a
// program that cannot be executed (ENOENT, EACCES) through its return value (glibc >= 2.24).
Result<pid_t> spawn(const std::vector<std::string>& args, Pipe& out, Pipe& err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out.write_fd, 1);
  ::posix_spawn_file_actions_adddup2(&actions, err.write_fd, 2);
  // Its own process group, so a timeout kills what it started too; default signal handling
  // and no blocked signals, whatever this process does with them.
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
  std::vector<std::string> copy = args;  // posix_spawn takes char*, not const char*
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status(Errc::io_error, "cannot start " + args[0] + ": " + std::strerror(rc));
  }
  return pid;
}

enum class Collected { done, timed_out, too_much };

// Reads both pipes until both are closed, the deadline passes or stdout grows too large.
Collected collect(const ExecOptions& o, Pipe& out, Pipe& err, SteadyClock::time_point deadline,
                  std::string& stdout_text, std::string& stderr_text) {
  pollfd fds[2] = {{out.read_fd, POLLIN, 0}, {err.read_fd, POLLIN, 0}};
  char buffer[4096];
  // One byte more than the limit is kept when it kills, so "too much" can be seen.
  const std::size_t keep[2] = {o.max_stdout_bytes + (o.kill_on_too_much_output ? 1 : 0),
                               o.max_stderr_bytes};
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
      sink.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n),
                                                keep[i] - std::min(keep[i], sink.size())));
      if (i == 0 && o.kill_on_too_much_output && sink.size() > o.max_stdout_bytes) {
        return Collected::too_much;
      }
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

std::uint64_t ms_since(SteadyClock::time_point start) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        SteadyClock::now() - start)
                                        .count());
}

}  // namespace

Result<ExecOutcome> run_exec(const ExecOptions& o) {
  ANYA_ASSERT(!o.argv.empty());
  ANYA_ASSERT(!o.argv[0].empty());
  Pipe out, err;
  if (!out.open() || !err.open()) {
    return Status(Errc::io_error, std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  const SteadyClock::time_point start = SteadyClock::now();
  const SteadyClock::time_point deadline = start + std::chrono::milliseconds(o.timeout_ms);
  Result<pid_t> pid = spawn(o.argv, out, err);
  if (!pid) return pid.status();
  out.close_write();
  err.close_write();
  ExecOutcome outcome;
  const Collected collected =
      collect(o, out, err, deadline, outcome.stdout_text, outcome.stderr_text);
  std::optional<int> status;
  if (collected == Collected::done) status = wait_exit(*pid, deadline);
  if (!status) {
    kill_group(*pid);
    outcome.end = collected == Collected::too_much ? ExecOutcome::End::too_much_output
                                                   : ExecOutcome::End::timed_out;
  } else if (WIFSIGNALED(*status)) {
    outcome.end = ExecOutcome::End::signaled;
    outcome.signal = WTERMSIG(*status);
  } else {
    outcome.end = ExecOutcome::End::exited;
    outcome.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  outcome.elapsed_ms = ms_since(start);
  return outcome;
}

std::string ExecOutcome::describe(const ExecOptions& options) const {
  const std::string said = first_line(stderr_text);
  const std::string tail = said.empty() ? std::string() : ": " + said;
  switch (end) {
    case End::timed_out:
      return "timed out after " + std::to_string(options.timeout_ms) + " ms; killed";
    case End::too_much_output:
      return "printed more than " + std::to_string(options.max_stdout_bytes) + " bytes; killed";
    case End::signaled:
      return "killed by signal " + std::to_string(signal) + tail;
    case End::exited: {
      const std::string hint = exit_code == 127   ? " (command not found?)"
                               : exit_code == 126 ? " (not executable?)"
                                                  : "";
      return "exited with status " + std::to_string(exit_code) + hint + tail;
    }
  }
  ANYA_ASSERT(false);
  return "";
}

}  // namespace anya::transport
