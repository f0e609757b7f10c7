#include "engine/host/host.hpp"

#include "engine/base/mutants.hpp"

namespace anya::engine {

namespace {
// A batch can produce another (commits found while advancing); a healthy node settles in a
// handful. Far more batches that apply nothing means a livelock bug, not load.
constexpr int kMaxBatchesPerDrain = 10000;
}  // namespace

Result<std::unique_ptr<Host>> Host::open(const RaftConfig& config, StoragePort& storage,
                                         NetworkPort& network, StateMachinePort& state_machine,
                                         ClockPort& clock) {
  if (Status valid = config.validate(); !valid) return valid;
  Result<RestoredState> restored = storage.load();
  if (!restored) return restored.status();
  if (restored->hard_state.commit > restored->entries.size()) {
    return Status(Errc::corrupt, "hard state commit " +
                                     std::to_string(restored->hard_state.commit) +
                                     " is beyond the last stored entry " +
                                     std::to_string(restored->entries.size()));
  }
  return std::unique_ptr<Host>(
      new Host(config, *restored, storage, network, state_machine, clock));
}

Host::Host(const RaftConfig& config, const RestoredState& restored, StoragePort& storage,
           NetworkPort& network, StateMachinePort& state_machine, ClockPort& clock)
    : storage_(storage),
      network_(network),
      state_machine_(state_machine),
      clock_(clock),
      raft_(config, restored, clock.now_ms()),
      hooks_(config.fault_hooks) {}

Status Host::tick() {
  if (failed()) return failure_;
  raft_.tick(clock_.now_ms());
  return drain();
}

Status Host::receive(const Message& message) {
  if (failed()) return failure_;
  raft_.step(message, clock_.now_ms());
  return drain();
}

Result<Index> Host::propose(std::string data, EntryType type) {
  if (failed()) return failure_;
  Result<Index> index = raft_.propose(std::move(data), clock_.now_ms(), type);
  if (Status s = drain(); !s) return s;
  return index;
}

Result<Index> Host::propose_conf_change(const ConfChange& change) {
  if (failed()) return failure_;
  Result<Index> index = raft_.propose_conf_change(change, clock_.now_ms());
  if (Status s = drain(); !s) return s;
  return index;
}

Status Host::set_healthy(bool healthy) {
  if (failed()) return failure_;
  raft_.set_healthy(healthy, clock_.now_ms());
  return drain();
}

Status Host::transfer_leadership(NodeId target) {
  if (failed()) return failure_;
  Status s = raft_.transfer_leadership(target, clock_.now_ms());
  if (Status d = drain(); !d) return d;
  return s;
}

Status Host::campaign_now() {
  if (failed()) return failure_;
  raft_.campaign_now(clock_.now_ms());
  return drain();
}

Status Host::persist(const Ready& ready) {
  if (ready.entries.empty() && !ready.hard_state) return {};
  if (ANYA_FAULT(hooks_, storage_fails)) return {Errc::io_error, "injected storage failure"};
  // Entries before the hard state: a commit index must never point past durable entries.
  if (!ready.entries.empty()) {
    if (Status s = storage_.append(ready.entries); !s) return s;
  }
  if (ready.hard_state) {
    if (Status s = storage_.save_hard_state(*ready.hard_state); !s) return s;
  }
  return storage_.sync();
}

Status Host::drain() {
  for (int idle_batches = 0; raft_.has_ready(); idle_batches++) {
    ANYA_ASSERT(idle_batches < kMaxBatchesPerDrain);
    Ready ready = raft_.ready();
    // Applying a long committed log (after a restart) takes many batches, each making
    // progress; only batches that apply nothing count toward the livelock bound.
    if (!ready.committed_entries.empty()) idle_batches = 0;
    if (mutants::active(mutants::send_before_persist)) {
      for (const Message& m : ready.messages) network_.send(m);
      ready.messages.clear();
    }
    if (Status s = persist(ready); !s) {
      failure_ = Status(s.code(), "storage failed, node stopped: " + s.message());
      return failure_;
    }
    for (const Message& m : ready.messages) network_.send(m);
    for (const Entry& e : ready.committed_entries) state_machine_.apply(e);
    raft_.advance(ready);
    batches_processed_++;
  }
  return {};
}

}  // namespace anya::engine
