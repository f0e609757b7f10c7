// The host loop: drives one Raft through the ports and is the one place that orders I/O.
//
//   ready() -> persist entries, persist hard state, sync -> send messages -> apply committed
//           -> advance()
//
// Messages leave only after the state they depend on (term, vote, entries) is durable, and only
// committed, durable entries are applied. Production and the simulator run this same code.
// A storage failure is fail-stop: the host refuses all further input, like a crashed process.
//
// Snapshots: every RaftConfig::snapshot_entries applied entries the host takes a snapshot (its
// configuration-document state and StateMachinePort::snapshot(), in one envelope, see
// encode_host_snapshot), hands it to Raft (which sends it to followers that need compacted
// entries), saves and syncs it, then compacts the log in Raft and in storage up to
// RaftConfig::snapshot_keep_entries below it. A snapshot installed from the leader arrives in
// Ready::snapshot: persisted first, then both states are restored from it. On start, the states
// are restored from the stored snapshot, then the entries after it are applied.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/config/config.hpp"
#include "engine/ports.hpp"
#include "engine/raft/raft.hpp"

namespace anya::engine {

// The configuration-document protocol (engine/config) rides on the same log: the host applies
// its records, sends members' acks to the leader and, on the leader, proposes COMMIT or ABORT.
// Told what each applied configuration record did (staged, activated, dropped, ignored), so a
// host can answer the client that began the transaction. Called from inside the host loop:
// it must not call back into the Host.
class ConfigObserver {
 public:
  virtual ~ConfigObserver() = default;
  virtual void on_config_effects(const ConfigEffects& effects) = 0;
};

struct ConfigOptions {
  ConfigValidator* validator = nullptr;  // null: accept every document. Not owned.
  std::uint64_t txn_deadline_ms = 5000;  // required members must ack within this, or ABORT
  ConfigObserver* observer = nullptr;    // null: nobody is told. Not owned.
};

class Host {
 public:
  // Load durable state from `storage` and start the engine on it.
  static Result<std::unique_ptr<Host>> open(const RaftConfig& config, StoragePort& storage,
                                            NetworkPort& network, StateMachinePort& state_machine,
                                            ClockPort& clock, ConfigOptions config_options = {});

  Status tick();
  Status receive(const Message& message);
  Result<Index> propose(std::string data, EntryType type = EntryType::normal);
  // Many entries, one persist-send-apply round (see Raft::propose_batch). Index of the first.
  Result<Index> propose_batch(std::vector<std::string> data);
  Result<Index> propose_conf_change(const ConfChange& change);
  Status set_healthy(bool healthy);
  // This node's Bitcoin backend as the host's probe last saw it (nullopt: unknown). See
  // Raft::set_chain_view; heights above Limits::max_chain_height are invalid_argument.
  Status set_chain_view(std::optional<ChainView> view);
  Status transfer_leadership(NodeId target);
  Status campaign_now();
  Status leader_unreachable();
  // Leader only: send a heartbeat round for ReadIndex (Raft::request_read_round); its number.
  Result<std::uint64_t> request_read_round();

  // Leader only: begin a configuration transaction (compare-and-set on `if_version`). Returns
  // the version it will have if every required member accepts it.
  Result<std::uint64_t> put_config(std::string document, std::optional<std::uint64_t> if_version);
  Result<std::uint64_t> rollback_config(std::uint64_t to_version,
                                        std::optional<std::uint64_t> if_version);
  const ConfigState& config_state() const { return config_state_; }
  const ConfigCoordinator& config_coordinator() const { return coordinator_; }

  const Raft& raft() const { return raft_; }
  std::vector<NodeId> take_regressed_followers() { return raft_.take_regressed_followers(); }
  bool failed() const { return !failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  std::uint64_t batches_processed() const { return batches_processed_; }
  std::uint64_t snapshots_taken() const { return snapshots_taken_; }
  std::uint64_t snapshots_restored() const { return snapshots_restored_; }
  // Snapshots from a leader refused before installing, because their data would not restore.
  std::uint64_t snapshots_refused() const { return snapshots_refused_; }

 private:
  Host(const RaftConfig& config, const RestoredState& restored, StoragePort& storage,
       NetworkPort& network, StateMachinePort& state_machine, ClockPort& clock,
       ConfigOptions config_options);
  // Process every pending batch in the order above.
  Status drain();
  Status persist(const Ready& ready);
  // Restore both states from a snapshot's data (start, or installed from the leader).
  Status restore_snapshot(const Snapshot& snapshot);
  // Would restore_snapshot() take the snapshot this message carries? (Raft itself checks the
  // envelope and the membership; a message it cannot decode is Raft's to refuse.)
  Status check_snapshot_message(const Message& message);
  // Every snapshot_entries applied entries: snapshot, save, sync, compact.
  Status maybe_snapshot();
  void apply(const Entry& entry);
  void on_config_ack(const Message& m);
  // Leader: propose what the coordinator decided; everyone: forget it when not leading.
  Status drive_config();
  Status ready_for_config();
  std::vector<NodeId> required_members() const;

  StoragePort& storage_;
  NetworkPort& network_;
  StateMachinePort& state_machine_;
  ClockPort& clock_;
  Raft raft_;
  FaultHooks* hooks_;
  std::uint64_t cluster_id_;
  ConfigOptions config_options_;
  ConfigState config_state_;
  ConfigCoordinator coordinator_;
  bool was_leader_ = false;
  Status failure_;
  std::uint64_t batches_processed_ = 0;
  std::uint64_t snapshot_entries_;     // 0: never
  std::uint64_t snapshot_keep_entries_;
  Index last_snapshot_index_ = 0;      // of the latest snapshot taken, restored or installed
  std::uint64_t snapshots_taken_ = 0;
  std::uint64_t snapshots_restored_ = 0;
  std::uint64_t snapshots_refused_ = 0;
};

// The host's snapshot data: format u8 (1) | configuration state length u32 | ConfigState
// encoding | the state machine's snapshot (the rest).
std::string encode_host_snapshot(const ConfigState& config, std::string_view state_machine);
struct HostSnapshot {
  ConfigState config;
  std::string_view state_machine;  // points into the decoded bytes
};
Result<HostSnapshot> decode_host_snapshot(std::string_view data);

}  // namespace anya::engine
