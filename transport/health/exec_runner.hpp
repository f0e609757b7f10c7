// Runs a program with a deadline: what the chain probe ([bitcoin] chain_probe) and the exec
// health probes ([[health.probe]] type = "exec") both need. The program runs in a process group
// of its own (stdin /dev/null, the environment inherited, default signal handling); at the
// deadline the whole group is killed, so whatever it started dies with it. Blocking: run it on a
// thread of its own, never on an event loop.
//
// A program that cannot be started is an error (Errc::io_error with the reason), never an
// outcome: a probe must not read "could not run" as "ran and passed".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::transport {

struct ExecOptions {
  // argv[0] is the program: a path, or a name looked up in PATH when it has no '/'.
  std::vector<std::string> argv;
  std::uint64_t timeout_ms = 2000;
  std::size_t max_stdout_bytes = 64 * 1024;
  std::size_t max_stderr_bytes = 1024;  // kept to quote in a reason; the rest is read and dropped
  // More than max_stdout_bytes on stdout: true kills the program (its output is the answer,
  // and that much is not one); false keeps reading and drops the rest.
  bool kill_on_too_much_output = true;
};

struct ExecOutcome {
  enum class End { exited, signaled, timed_out, too_much_output };
  End end = End::exited;
  int exit_code = -1;       // End::exited
  int signal = 0;           // End::signaled
  std::string stdout_text;  // at most max_stdout_bytes
  std::string stderr_text;  // at most max_stderr_bytes
  std::uint64_t elapsed_ms = 0;

  bool succeeded() const { return end == End::exited && exit_code == 0; }
  // For people: "exited with status 1: <first line of stderr>", "exited with status 127
  // (command not found?)", "killed by signal 9", "timed out after 100 ms; killed", "printed
  // more than 65536 bytes; killed"; "exited with status 0" on success.
  std::string describe(const ExecOptions& options) const;
};

// Errc::io_error naming the program when it cannot be started (no such file, not executable,
// no pipe); otherwise how it ended.
Result<ExecOutcome> run_exec(const ExecOptions& options);

}  // namespace anya::transport
