// A discovery method as the Discovery service runs it: it starts on the node's io_context, and
// each time it has looked (a poll, a resolution, an announcement heard) it hands a report to
// the service, which merges it (engine/discovery). Methods do I/O only; every decision about
// what the reports mean is the engine's.
//
// Lifetime: a method keeps its state in a shared object that its pending handlers hold, so
// stop() may be called at any time; it cancels timers and sockets, no report follows it, and
// the handlers still queued finish harmlessly as the io_context runs (or is destroyed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/discovery/discovered_peers.hpp"

namespace anya::transport::discovery {

using ReportFn = std::function<void(engine::discovery::MethodReport)>;

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string_view name() const = 0;
  // Errors (a secret file that cannot be read, a socket that cannot bind) name the field.
  virtual Status start(ReportFn report) = 0;
  virtual void stop() = 0;
  // Inputs refused before they became a report (multicast: bad MACs, replays...), by reason,
  // as running totals. Reports' own failures are counted by the service.
  virtual std::map<std::string, std::uint64_t> drops() const { return {}; }
};

// The steady clock in ms, the time base of every report and expiry.
std::uint64_t steady_now_ms();

}  // namespace anya::transport::discovery
