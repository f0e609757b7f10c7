// What the outside world provides to the engine. transport/ implements these for production,
// sim/ for the simulated world, engine/testing for in-memory unit tests. The host loop
// (engine/host) is the only caller, and the only place that orders I/O.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/raft/raft.hpp"

namespace anya::engine {

class NetworkPort {
 public:
  virtual ~NetworkPort() = default;
  // Best effort: a message may be lost, delayed, duplicated or reordered; Raft copes.
  virtual void send(const Message& message) = 0;
};

class StoragePort {
 public:
  virtual ~StoragePort() = default;
  // Stage entries, replacing any stored entry at index >= entries.front().index.
  virtual Status append(const std::vector<Entry>& entries) = 0;
  // Stage the hard state, replacing the previous one atomically.
  virtual Status save_hard_state(const HardState& state) = 0;
  // Make everything staged durable. Only after OK may dependent messages leave.
  virtual Status sync() = 0;
  // Read back what was made durable (on start and after a crash).
  virtual Result<RestoredState> load() = 0;
};

class StateMachinePort {
 public:
  virtual ~StateMachinePort() = default;
  // Apply one committed entry; entries arrive once each, in index order, since the last start.
  virtual void apply(const Entry& entry) = 0;
};

class ClockPort {
 public:
  virtual ~ClockPort() = default;
  // This node's monotonic clock in milliseconds. Never goes backwards.
  virtual std::uint64_t now_ms() = 0;
};

}  // namespace anya::engine
