#include "engine/host/host.hpp"

#include <algorithm>

#include "engine/base/mutants.hpp"

namespace anya::engine {

namespace {
// A batch can produce another (commits found while advancing); a healthy node settles in a
// handful. Far more batches that apply nothing means a livelock bug, not load.
constexpr int kMaxBatchesPerDrain = 10000;
}  // namespace

namespace {
constexpr std::uint8_t kHostSnapshotFormat = 1;

// What storage handed back must make a log: entries contiguous after the snapshot (if any),
// the commit index within them.
Status check_restored(const RestoredState& restored) {
  const Index base = restored.snapshot ? restored.snapshot->meta.index : 0;
  Index expected = 0;  // the next index, once past the snapshot
  for (const Entry& e : restored.entries) {
    if (e.index <= base) continue;
    if (expected == 0 && e.index != base + 1) {
      return Status(Errc::corrupt, "stored entries resume at index " + std::to_string(e.index) +
                                       " after a snapshot at index " + std::to_string(base));
    }
    if (expected != 0 && e.index != expected) {
      return Status(Errc::corrupt, "stored entry " + std::to_string(e.index) + " follows entry " +
                                       std::to_string(expected - 1));
    }
    expected = e.index + 1;
  }
  if (!restored.snapshot && !restored.entries.empty() && restored.entries.front().index != 1) {
    return Status(Errc::corrupt, "stored entries start at index " +
                                     std::to_string(restored.entries.front().index) +
                                     " without a snapshot");
  }
  const Index last = expected == 0 ? base : expected - 1;
  if (restored.hard_state.commit > last) {
    return Status(Errc::corrupt, "hard state commit " +
                                     std::to_string(restored.hard_state.commit) +
                                     " is beyond the last stored entry " + std::to_string(last));
  }
  return {};
}

// Accepts every document: the default when the host supplies no validator.
class AcceptAll : public ConfigValidator {
 public:
  Status validate(std::uint64_t, std::string_view) override { return {}; }
};
AcceptAll g_accept_all;  // stateless
}  // namespace

Result<std::unique_ptr<Host>> Host::open(const RaftConfig& config, StoragePort& storage,
                                         NetworkPort& network, StateMachinePort& state_machine,
                                         ClockPort& clock, ConfigOptions config_options) {
  if (Status valid = config.validate(); !valid) return valid;
  Result<RestoredState> restored = storage.load();
  if (!restored) return restored.status();
  if (Status s = check_restored(*restored); !s) return s;
  if (config_options.validator == nullptr) config_options.validator = &g_accept_all;
  std::unique_ptr<Host> host(
      new Host(config, *restored, storage, network, state_machine, clock, config_options));
  if (restored->snapshot) {
    if (Status s = host->restore_snapshot(*restored->snapshot); !s) return s;
  }
  return host;
}

Host::Host(const RaftConfig& config, const RestoredState& restored, StoragePort& storage,
           NetworkPort& network, StateMachinePort& state_machine, ClockPort& clock,
           ConfigOptions config_options)
    : storage_(storage),
      network_(network),
      state_machine_(state_machine),
      clock_(clock),
      raft_(config, restored, clock.now_ms()),
      hooks_(config.fault_hooks),
      cluster_id_(config.cluster_id),
      config_options_(config_options),
      coordinator_(config_options.txn_deadline_ms),
      snapshot_entries_(config.snapshot_entries),
      snapshot_keep_entries_(config.snapshot_keep_entries) {}

std::string encode_host_snapshot(const ConfigState& config, std::string_view state_machine) {
  const std::string c = config.encode();
  ANYA_ASSERT(c.size() <= 0xffffffffu);
  std::string out;
  out.reserve(1 + 4 + c.size() + state_machine.size());
  out.push_back(static_cast<char>(kHostSnapshotFormat));
  for (int i = 0; i < 4; i++) out.push_back(static_cast<char>((c.size() >> (8 * i)) & 0xff));
  out += c;
  out.append(state_machine);
  return out;
}

Result<HostSnapshot> decode_host_snapshot(std::string_view data) {
  if (data.size() < 5) {
    return Status(Errc::malformed, "host snapshot: " + std::to_string(data.size()) +
                                       " bytes, shorter than its 5-byte header");
  }
  if (static_cast<std::uint8_t>(data[0]) != kHostSnapshotFormat) {
    return Status(Errc::unsupported, "host snapshot: unknown format " +
                                         std::to_string(static_cast<std::uint8_t>(data[0])) +
                                         " at byte offset 0");
  }
  std::size_t length = 0;
  for (int i = 0; i < 4; i++) {
    length |= static_cast<std::size_t>(static_cast<unsigned char>(data[1 + i])) << (8 * i);
  }
  if (length > data.size() - 5) {
    return Status(Errc::malformed, "host snapshot: configuration state length " +
                                       std::to_string(length) + " exceeds the " +
                                       std::to_string(data.size() - 5) +
                                       " bytes remaining at byte offset 1");
  }
  Result<ConfigState> config = ConfigState::decode(data.substr(5, length));
  if (!config) return Status(Errc::malformed, "host snapshot: " + config.status().message());
  return HostSnapshot{std::move(config).value(), data.substr(5 + length)};
}

Status Host::check_snapshot_message(const Message& message) {
  Result<Snapshot> snapshot = decode_snapshot_envelope(message.payload);
  if (!snapshot) return {};
  Result<HostSnapshot> decoded = decode_host_snapshot(snapshot->data);
  if (!decoded) return decoded.status();
  return state_machine_.check_snapshot(decoded->state_machine);
}

Status Host::restore_snapshot(const Snapshot& snapshot) {
  Result<HostSnapshot> decoded = decode_host_snapshot(snapshot.data);
  if (!decoded) return decoded.status();
  if (Status s = state_machine_.restore(decoded->state_machine); !s) {
    return Status(s.code(), "state machine refused the snapshot at index " +
                                std::to_string(snapshot.meta.index) + ": " + s.message());
  }
  config_state_ = std::move(decoded->config);
  last_snapshot_index_ = snapshot.meta.index;
  snapshots_restored_++;
  // A PREPARE staged by the snapshot was acked by the replica that made it, not by this one:
  // answer it, as replaying the log would have.
  const std::optional<StagedConfig>& staged = config_state_.staged();
  if (staged && !raft_.is_leader() && raft_.leader() != kNoNode &&
      std::find(staged->required.begin(), staged->required.end(), raft_.id()) !=
          staged->required.end()) {
    Message m;
    m.type = MessageType::config_ack;
    m.cluster_id = cluster_id_;
    m.from = raft_.id();
    m.to = raft_.leader();
    m.term = raft_.term();
    m.index = staged->version;
    m.reject = !staged->locally_valid;
    m.payload = staged->local_reason;
    network_.send(m);
  }
  return {};
}

Status Host::maybe_snapshot() {
  const Index applied = raft_.log().applied();
  if (snapshot_entries_ == 0 || applied < last_snapshot_index_ + snapshot_entries_) return {};
  const Snapshot& snapshot =
      raft_.record_snapshot(applied, encode_host_snapshot(config_state_,
                                                          state_machine_.snapshot()));
  if (Status s = storage_.save_snapshot(snapshot.meta, snapshot.data); !s) return s;
  // Durable before any entry it covers is dropped.
  if (Status s = storage_.sync(); !s) return s;
  last_snapshot_index_ = applied;
  snapshots_taken_++;
  if (applied <= snapshot_keep_entries_) return {};
  const Index through = applied - snapshot_keep_entries_;
  if (through <= raft_.log().snapshot_index()) return {};
  // Storage first: until Raft drops them too, the entries stay readable (the simulator's
  // checker looks at the log once more when storage compacts).
  if (Status s = storage_.compact(through); !s) return s;
  raft_.compact(through);
  return {};
}

Status Host::tick() {
  if (failed()) return failure_;
  raft_.tick(clock_.now_ms());
  if (Status s = drain(); !s) return s;
  return drive_config();
}

Status Host::receive(const Message& message) {
  if (failed()) return failure_;
  if (message.type == MessageType::config_ack) {
    on_config_ack(message);
  } else if (message.type == MessageType::snapshot && !check_snapshot_message(message)) {
    // Installing it would persist it and then fail to restore from it, on every restart too.
    // Refused with nothing changed: the leader gets no answer and sends it again.
    snapshots_refused_++;
  } else {
    raft_.step(message, clock_.now_ms());
  }
  if (Status s = drain(); !s) return s;
  return drive_config();
}

void Host::on_config_ack(const Message& m) {
  if (cluster_id_ != 0 && m.cluster_id != cluster_id_) return;
  if (!raft_.is_leader() || m.term != raft_.term()) return;  // for another leadership
  coordinator_.on_ack(m.from, m.index, !m.reject, m.payload);
}

void Host::apply(const Entry& entry) {
  if (entry.type == EntryType::normal) {
    state_machine_.apply(entry);
    return;
  }
  if (entry.type != EntryType::config_txn) return;  // no-ops and membership: the engine's own
  ConfigEffects effects = config_state_.apply(entry, *config_options_.validator, raft_.id());
  if (config_options_.observer != nullptr) config_options_.observer->on_config_effects(effects);
  if (!effects.ack) return;
  const ConfigAck& ack = *effects.ack;
  if (raft_.is_leader()) {
    coordinator_.on_ack(raft_.id(), ack.version, ack.ok, ack.reason);
    return;
  }
  if (raft_.leader() == kNoNode) return;  // the next leader aborts what it cannot finish
  Message m;
  m.type = MessageType::config_ack;
  m.cluster_id = cluster_id_;
  m.from = raft_.id();
  m.to = raft_.leader();
  m.term = raft_.term();
  m.index = ack.version;
  m.reject = !ack.ok;
  m.payload = ack.reason;
  network_.send(m);
}

Status Host::drive_config() {
  if (!raft_.is_leader()) {
    if (was_leader_) coordinator_.reset();
    was_leader_ = false;
    return {};
  }
  if (!was_leader_) coordinator_.reset();  // a new leadership starts from the log alone
  was_leader_ = true;
  std::optional<ConfigRecord> record = coordinator_.decide(config_state_, clock_.now_ms());
  if (!record) return {};
  Result<Index> index =
      raft_.propose(encode_config_record(*record), clock_.now_ms(), EntryType::config_txn);
  // Refused (a leadership transfer is under way): forget the transaction; once leading again,
  // the coordinator finds the staged PREPARE it no longer owns and aborts it.
  if (!index) coordinator_.reset();
  return drain();
}

Status Host::ready_for_config() {
  // Judge a compare-and-set only with the engine's clock at now: a leader that was paused or
  // starved past its CheckQuorum deadline steps down in this tick, instead of answering from a
  // view that a newer leader may have moved past (a stale "version N is current").
  if (Status s = tick(); !s) return s;
  if (!raft_.is_leader()) {
    return Status(Errc::not_leader, "not the leader; the leader is node " +
                                        std::to_string(raft_.leader()));
  }
  // Until the leader has applied an entry of its own term, its view of the configuration may
  // lag a PREPARE of an earlier leader, and it could hand out that transaction's version again.
  if (raft_.log().term_at(raft_.log().applied()) != raft_.term()) {
    return {Errc::busy, "the new leader is still applying its log; retry"};
  }
  return {};
}

std::vector<NodeId> Host::required_members() const {
  // Every member the leader has heard from within an election timeout must accept: they are
  // the ones that would run the new configuration now. Others activate it when they catch up.
  std::vector<NodeId> required;
  for (const MemberStatus& m : raft_.members()) {
    if (m.reachable) required.push_back(m.id);
  }
  return required;
}

Result<std::uint64_t> Host::put_config(std::string document,
                                       std::optional<std::uint64_t> if_version) {
  if (failed()) return failure_;
  if (Status s = ready_for_config(); !s) return s;
  Result<ConfigRecord> prepare = coordinator_.begin(config_state_, if_version,
                                                    std::move(document), required_members(),
                                                    clock_.now_ms());
  if (!prepare) return prepare.status();
  Result<Index> index =
      raft_.propose(encode_config_record(*prepare), clock_.now_ms(), EntryType::config_txn);
  if (!index) {
    coordinator_.reset();
    return index.status();
  }
  if (Status s = drain(); !s) return s;
  return prepare->version;
}

Result<std::uint64_t> Host::rollback_config(std::uint64_t to_version,
                                            std::optional<std::uint64_t> if_version) {
  if (failed()) return failure_;
  if (Status s = ready_for_config(); !s) return s;
  Result<ConfigRecord> prepare = coordinator_.rollback(config_state_, to_version, if_version,
                                                       required_members(), clock_.now_ms());
  if (!prepare) return prepare.status();
  Result<Index> index =
      raft_.propose(encode_config_record(*prepare), clock_.now_ms(), EntryType::config_txn);
  if (!index) {
    coordinator_.reset();
    return index.status();
  }
  if (Status s = drain(); !s) return s;
  return prepare->version;
}

Result<Index> Host::propose(std::string data, EntryType type) {
  if (failed()) return failure_;
  Result<Index> index = raft_.propose(std::move(data), clock_.now_ms(), type);
  if (Status s = drain(); !s) return s;
  return index;
}

Result<Index> Host::propose_batch(std::vector<std::string> data) {
  if (failed()) return failure_;
  Result<Index> first = raft_.propose_batch(std::move(data), clock_.now_ms());
  if (Status s = drain(); !s) return s;
  return first;
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

Status Host::set_chain_view(std::optional<ChainView> view) {
  if (failed()) return failure_;
  if (view && view->height > Limits::max_chain_height) {
    return {Errc::invalid_argument, "chain height " + std::to_string(view->height) +
                                        " exceeds the limit " +
                                        std::to_string(Limits::max_chain_height)};
  }
  raft_.set_chain_view(view, clock_.now_ms());
  return drain();
}

Status Host::transfer_leadership(NodeId target) {
  if (failed()) return failure_;
  Status s = raft_.transfer_leadership(target, clock_.now_ms());
  if (Status d = drain(); !d) return d;
  return s;
}

Status Host::leader_unreachable() {
  if (failed()) return failure_;
  raft_.leader_unreachable(clock_.now_ms());
  return drain();
}

Result<std::uint64_t> Host::request_read_round() {
  if (failed()) return failure_;
  const std::uint64_t round = raft_.request_read_round(clock_.now_ms());
  if (Status s = drain(); !s) return s;
  return round;
}

Status Host::campaign_now() {
  if (failed()) return failure_;
  raft_.campaign_now(clock_.now_ms());
  return drain();
}

Status Host::persist(const Ready& ready) {
  if (ready.entries.empty() && !ready.hard_state && !ready.snapshot) return {};
  if (ANYA_FAULT(hooks_, storage_fails)) return {Errc::io_error, "injected storage failure"};
  // An installed snapshot first: the entries that follow continue it.
  if (ready.snapshot) {
    if (Status s = storage_.save_snapshot(ready.snapshot->meta, ready.snapshot->data); !s) {
      return s;
    }
  }
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
    if (ready.snapshot) {
      if (Status s = restore_snapshot(*ready.snapshot); !s) {
        failure_ = Status(s.code(), "installing the leader's snapshot failed, node stopped: " +
                                        s.message());
        return failure_;
      }
    }
    for (const Entry& e : ready.committed_entries) apply(e);
    raft_.advance(ready);
    batches_processed_++;
    if (Status s = maybe_snapshot(); !s) {
      failure_ = Status(s.code(), "storage failed, node stopped: " + s.message());
      return failure_;
    }
  }
  return {};
}

}  // namespace anya::engine
