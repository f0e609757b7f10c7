// The chain probe: how a node learns how far the Bitcoin backend beside it has synced. The view
// it reports (height and tip) gates leadership in the engine (Raft::set_chain_view); here is only
// the I/O: running an exec command ([bitcoin] chain_probe) or the embedder's callback, on a
// thread of its own, and parsing what the command prints.
//
// A probe that cannot run, times out, exits non-zero, is killed or prints anything but the one
// JSON object below fails, with a reason a person can act on; the node then treats its view as
// unknown (transport/node logs it once per change of reason).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::transport {

struct ChainProbeLimits {
  // More than this on stdout is not a chain view: the probe is killed and fails.
  static constexpr std::size_t max_output_bytes = 64 * 1024;
  // Kept of its stderr, to quote in the failure's reason.
  static constexpr std::size_t max_stderr_bytes = 1024;
};

// What a probe prints: exactly one JSON object {"height": N, "tip": "<64 hex digits>"} (white
// space around it allowed). height: a whole number 0..engine::Limits::max_chain_height. tip: the
// best block's hash as `bitcoin-cli getbestblockhash` prints it, in either case. Any other field
// is refused, so a typo ("heigth") is not silently a missing height. Errors name the field.
Result<engine::ChainView> parse_chain_view_json(std::string_view text);

// The tip as 64 lowercase hex digits, in the order parse_chain_view_json read them.
std::string chain_tip_hex(const engine::ChainView& view);

// Runs `command` with /bin/sh -c in a process group of its own (stdin /dev/null, the
// environment inherited), waits at most `timeout_ms` for it to exit, and parses its stdout.
// On a timeout or too much output the whole group is killed. Blocking: never call it on the
// node's event loop.
Result<engine::ChainView> run_chain_probe_command(const std::string& command,
                                                  std::uint64_t timeout_ms);

using ChainProbeFn = std::function<Result<engine::ChainView>()>;
using ChainProbeSink = std::function<void(Result<engine::ChainView>)>;

// Runs `probe` on a thread of its own: once at start(), then `interval_ms` after each one
// returns, handing every result to `deliver` (on the probing thread; it should post the result
// to the node's thread). stop() (and the destructor) waits for a probe in progress to return:
// an exec probe returns within its timeout, a callback probe must return promptly by itself.
class ChainProber {
 public:
  ChainProber(ChainProbeFn probe, std::uint64_t interval_ms, ChainProbeSink deliver);
  ~ChainProber();
  ChainProber(const ChainProber&) = delete;
  ChainProber& operator=(const ChainProber&) = delete;

  void start();
  void stop();

 private:
  void loop();

  ChainProbeFn probe_;
  std::uint64_t interval_ms_;
  ChainProbeSink deliver_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace anya::transport
