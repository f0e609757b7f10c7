// The host loop: drives one Raft through the ports and is the one place that orders I/O.
//
//   ready() -> persist entries, persist hard state, sync -> send messages -> apply committed
//           -> advance()
//
// Messages leave only after the state they depend on (term, vote, entries) is durable, and only
// committed, durable entries are applied. Production and the simulator run this same code.
// A storage failure is fail-stop: the host refuses all further input, like a crashed process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/ports.hpp"
#include "engine/raft/raft.hpp"

namespace anya::engine {

class Host {
 public:
  // Load durable state from `storage` and start the engine on it.
  static Result<std::unique_ptr<Host>> open(const RaftConfig& config, StoragePort& storage,
                                            NetworkPort& network, StateMachinePort& state_machine,
                                            ClockPort& clock);

  Status tick();
  Status receive(const Message& message);
  Result<Index> propose(std::string data, EntryType type = EntryType::normal);
  Result<Index> propose_conf_change(const ConfChange& change);
  Status set_healthy(bool healthy);
  Status transfer_leadership(NodeId target);
  Status campaign_now();

  const Raft& raft() const { return raft_; }
  bool failed() const { return !failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  std::uint64_t batches_processed() const { return batches_processed_; }

 private:
  Host(const RaftConfig& config, const RestoredState& restored, StoragePort& storage,
       NetworkPort& network, StateMachinePort& state_machine, ClockPort& clock);
  // Process every pending batch in the order above.
  Status drain();
  Status persist(const Ready& ready);

  StoragePort& storage_;
  NetworkPort& network_;
  StateMachinePort& state_machine_;
  ClockPort& clock_;
  Raft raft_;
  FaultHooks* hooks_;
  Status failure_;
  std::uint64_t batches_processed_ = 0;
};

}  // namespace anya::engine
