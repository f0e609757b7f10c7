// What the outside world provides to the engine. transport/ implements these for production,
// sim/ for the simulated world, engine/testing for in-memory unit tests. The host loop
// (engine/host) is the only caller, and the only place that orders I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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
  // Read back what was made durable (on start and after a crash): the latest snapshot saved, if
  // any, and the entries after it (some at or below its index may remain; they are ignored).
  virtual Result<RestoredState> load() = 0;
  // Store a snapshot covering the log up to meta.index (replacing the previous one; a crash
  // leaves one or the other). It may be durable on return and must be at the next sync() at
  // the latest. Stored entries that do not continue it are dropped: if the stored entry at
  // meta.index is missing or has another term than meta.term (a follower whose log the
  // leader's snapshot replaced), every stored entry goes and the next append is at
  // meta.index + 1. Otherwise the entries stay until compact().
  virtual Status save_snapshot(const SnapshotMeta& meta, std::string_view data) = 0;
  // Entries up to `index` may be dropped: a durable snapshot covers them (index <= its index).
  // Best effort (a storage may drop less, e.g. only whole files); load() may still return some.
  virtual Status compact(Index index) = 0;
};

class StateMachinePort {
 public:
  virtual ~StateMachinePort() = default;
  // Apply one committed entry; entries arrive once each, in index order, since the last start
  // or the last restore().
  virtual void apply(const Entry& entry) = 0;
  // The whole state as of the last entry applied, as bytes that restore() takes back.
  virtual std::string snapshot() = 0;
  // Replace the whole state with a snapshot() (of this node or of another replica). An error
  // means the bytes are damaged or from an incompatible version: the host stops (fail-stop).
  virtual Status restore(std::string_view data) = 0;
  // Would restore() take these bytes? Asked before a snapshot from the leader is installed: a
  // damaged one is then refused and the leader retries, instead of it being persisted first
  // and failing the node (and every restart of it) afterwards. Changes nothing.
  virtual Status check_snapshot(std::string_view data) = 0;
};

class ClockPort {
 public:
  virtual ~ClockPort() = default;
  // This node's monotonic clock in milliseconds. Never goes backwards.
  virtual std::uint64_t now_ms() = 0;
};

}  // namespace anya::engine
