// libFuzzer target for the engine: one node (id 1, a voter of {1, 2, 3}, with learner 4 in some
// runs) driven through its real Host by a sequence of inputs decoded from the fuzzer's bytes:
// clock ticks, messages from peers with any field (any term, index, commit, entries, payload),
// proposals, membership and configuration-document requests, health and chain-view changes,
// leadership transfers, and crash-restarts from what the node made durable. The fuzzer plays
// every peer, and peers may lie, so the checks are the ones a node keeps whatever it is told:
//
//   - the invariant checker after every step: term and commit never go back, a committed entry
//     never changes, commit stays within the log, a leader commits only entries of its own term
//     (Figure 8), snapshot bases are committed history, durable state survives a restart;
//   - at most one vote per term, across restarts;
//   - persist before send: every message leaves with its term durable (a pre-vote may name the
//     next term), a granted vote with that vote durable, an append acknowledgement with the
//     entries it acknowledges durable;
//   - the host never stops: storage here never fails, so nothing a peer sends may stop it;
//   - the state machine applies committed entries only, each the entry committed at its index.
//
// A crash, an assertion or a failed check is a finding (abort with a description). To read one,
// replay it with ANYA_FUZZ_TRACE=1: every operation and delivered message is printed.
//
// Input format: byte 0 chooses the setup (bits: PreVote, CheckQuorum, learner 4, snapshots every
// few entries); then operations until the input or kMaxOperations runs out, each an opcode byte
// followed by its operands. Values are drawn relative to the node's state (its term, last index,
// commit) most of the time and raw otherwise, so that the fuzzer reaches deep states quickly:
// elections it wins (the "answer" operation makes a cooperative peer reply to something the
// node sent), commits, snapshots, truncations, and hostile messages in each of those states.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/host/host.hpp"
#include "engine/invariants/invariants.hpp"
#include "engine/raft/membership.hpp"
#include "engine/raft/snapshot.hpp"
#include "engine/testing/memory_ports.hpp"

namespace {

using namespace anya::engine;
using anya::engine::testing::AppliedLog;
using anya::engine::testing::CallbackNetwork;
using anya::engine::testing::ManualClock;
using anya::engine::testing::MemoryStorage;

constexpr NodeId kSelf = 1;
constexpr std::uint64_t kClusterId = 7;
constexpr std::size_t kMaxOperations = 256;
constexpr std::size_t kMaxSentKept = 64;       // messages the "answer" operation can pick from
constexpr std::size_t kMaxEntriesPerMessage = 6;
constexpr std::size_t kMaxDataBytes = 24;
// The checker keeps a record per committed index, so a run ends when a peer's snapshot jumps the
// node further ahead than this (the install itself was still exercised and checked).
constexpr Index kMaxVouchedGap = 4096;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "engine_fuzz finding: %s\n", what.c_str());
  std::abort();
}

// Reads operands from the input; past its end every read is 0, so any input is a whole run.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= std::uint64_t{byte()} << (8 * i);
    return v;
  }
  std::string text(std::size_t max_bytes) {
    std::string out(byte() % (max_bytes + 1), '\0');
    for (char& c : out) c = static_cast<char>(byte());
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// A value near `base` most of the time (the interesting boundaries), raw otherwise.
std::uint64_t near(Reader& in, std::uint64_t base) {
  const std::uint8_t pick = in.byte();
  switch (pick % 9) {
    case 0: case 1: return base;
    case 2: return base + 1;
    case 3: return base + 2 + pick / 9 % 4;
    case 4: return base > 0 ? base - 1 : 0;
    case 5: return base > 2 ? base - 2 - pick / 9 % 4 : 0;
    case 6: return 0;
    case 7: return in.byte();
    default: return in.u64();
  }
}

NodeId pick_peer(Reader& in) {
  const std::uint8_t pick = in.byte() % 10;
  if (pick < 6) return 2 + pick % 3;  // the other voters, most of the time
  if (pick == 6) return 4;            // the learner (or a stranger in runs without one)
  if (pick == 7) return 9;            // never a member
  if (pick == 8) return kSelf;        // itself
  return in.u64();
}

class Run {
 public:
  Run(Reader& in) : in_(in), network_([this](const Message& m) { on_send(m); }) {
    const std::uint8_t setup = in_.byte();
    config_.id = kSelf;
    config_.cluster_id = kClusterId;
    config_.voters = {1, 2, 3};
    if (setup & 4) config_.learners = {4};
    config_.pre_vote = (setup & 1) != 0;
    config_.check_quorum = (setup & 2) != 0;
    config_.snapshot_entries = (setup & 8) ? 2 + setup / 16 % 8 : 0;
    // The checker must have seen an entry before the node compacts it away, and one step
    // appends at most a message's entries, a batch and a no-op: keep more than that.
    config_.snapshot_keep_entries = 16 + setup / 128 * 8;
    config_.random_seed = 1;
    start();
  }

  void operate() {
    for (std::size_t op = 0; op < kMaxOperations && !in_.done() && !beyond_checking_; op++) {
      const std::uint8_t opcode = in_.byte();
      step(opcode);
      if (trace_) {
        const Raft& r = raft();
        std::fprintf(stderr, "op %zu: opcode %u -> term %llu %s commit %llu log %llu..%llu\n", op,
                     opcode % 16u, static_cast<unsigned long long>(r.term()),
                     role_name(r.role()), static_cast<unsigned long long>(r.log().committed()),
                     static_cast<unsigned long long>(r.log().first_index()),
                     static_cast<unsigned long long>(r.log().last_index()));
      }
      check();
    }
  }

 private:
  void start() {
    applied_.clear();
    auto host = Host::open(config_, storage_, network_, applied_, clock_);
    if (!host) finding("restart failed: " + host.status().message());
    host_ = std::move(*host);
  }

  const Raft& raft() const { return host_->raft(); }

  void step(std::uint8_t opcode) {
    switch (opcode % 16) {
      case 0: case 1: case 2: return tick();
      case 3: case 4: case 5: return deliver_from_peer(hostile_message());
      case 6: case 7: case 8: return answer();
      case 9: return (void)host_->propose(in_.text(kMaxDataBytes));
      case 10: {
        std::vector<std::string> batch(1 + in_.byte() % 4);
        for (std::string& d : batch) d = in_.text(kMaxDataBytes);
        return (void)host_->propose_batch(std::move(batch));
      }
      case 11: return (void)host_->propose_conf_change(conf_change());
      case 12: {
        const std::uint8_t how = in_.byte();
        std::optional<std::uint64_t> if_version;
        if (how & 1) if_version = near(in_, host_->config_state().active_version());
        if (how & 2) return (void)host_->rollback_config(near(in_, 1), if_version);
        return (void)host_->put_config(in_.text(kMaxDataBytes), if_version);
      }
      case 13: {
        const std::uint8_t which = in_.byte() % 5;
        if (which == 4) return (void)host_->set_chain_view(chain_view());
        if (which == 0) return (void)host_->set_healthy(!raft().healthy());
        if (which == 1) return (void)host_->transfer_leadership(pick_peer(in_));
        if (which == 2) return (void)host_->campaign_now();
        return (void)host_->leader_unreachable();
      }
      case 14: return restart();
      default: return deliver_from_peer(snapshot_message());
    }
  }

  void tick() {
    const std::uint8_t how = in_.byte();
    std::uint64_t ms = 1;
    if (how % 4 == 1) ms = config_.heartbeat_interval_ms;
    if (how % 4 == 2) ms = config_.election_timeout_ms + 2 * in_.byte();
    if (how % 4 == 3) ms = in_.byte();
    now_ms_ += ms;
    clock_.set(now_ms_);
    (void)host_->tick();
  }

  void deliver(const Message& m) {
    if (trace_) {
      std::fprintf(stderr, "  deliver %s from %llu term %llu index %llu log_term %llu commit %llu"
                   " entries %zu%s\n", message_type_name(m.type),
                   static_cast<unsigned long long>(m.from), static_cast<unsigned long long>(m.term),
                   static_cast<unsigned long long>(m.index),
                   static_cast<unsigned long long>(m.log_term),
                   static_cast<unsigned long long>(m.commit), m.entries.size(),
                   m.reject ? " reject" : "");
    }
    for (const Entry& e : trace_ ? m.entries : std::vector<Entry>{}) {
      std::fprintf(stderr, "    entry %llu term %llu type %u, %zu bytes\n",
                   static_cast<unsigned long long>(e.index),
                   static_cast<unsigned long long>(e.term), static_cast<unsigned>(e.type),
                   e.data.size());
    }
    (void)host_->receive(m);
  }

  // The peers lie freely, except where no node could ever notice the lie and Raft's safety rests
  // on the peers instead: there is at most one leader per term (its voters guarantee that), and
  // an entry (index, term) has one content and one predecessor wherever it appears (its term's
  // leader created it once). A message breaking these is changed to keep them, or dropped.
  void deliver_from_peer(Message m) {
    const bool from_leader = m.type == MessageType::append || m.type == MessageType::heartbeat ||
                             m.type == MessageType::snapshot ||
                             m.type == MessageType::timeout_now;
    if (from_leader) {
      auto [it, first] = leader_of_term_.emplace(m.term, m.from);
      if (it->second == kSelf) return;  // this node led that term: nobody else did
      m.from = it->second;
    }
    if (m.type == MessageType::append) keep_entries_unique(m);
    deliver(m);
  }

  // Entries that the node must refuse anyway (term 0, terms out of order or above the message's,
  // indexes not contiguous) are left as drawn: refusing them is the node's job.
  void keep_entries_unique(Message& m) {
    Term previous = m.log_term;
    for (std::size_t k = 0; k < m.entries.size(); k++) {
      const Entry& e = m.entries[k];
      if (e.term == 0 || e.term < previous || e.term > m.term || e.index != m.index + 1 + k) {
        return;
      }
      previous = e.term;
    }
    previous = m.log_term;
    for (std::size_t k = 0; k < m.entries.size(); k++) {
      Entry& e = m.entries[k];
      auto [it, created] = world_.emplace(std::make_pair(e.index, e.term), WorldEntry{previous, e});
      if (!created) {
        if (it->second.previous_term != previous && it->second.previous_term != kUnknownTerm) {
          m.entries.resize(k);  // (index, term) exists after another entry: stop before it
          return;
        }
        it->second.previous_term = previous;
        e = it->second.entry;
      }
      previous = e.term;
    }
  }

  // The node's own entries are part of the world too (as leader it created them).
  void record_world() {
    const Raft& r = raft();
    // Its leadership is real (a claim it did not follow was never a leader): claims by others
    // in its term are dropped from now on.
    if (r.is_leader()) leader_of_term_[r.term()] = kSelf;
    Term previous = r.log().snapshot_term();
    if (r.log().snapshot_index() > 0) {
      world_.emplace(std::make_pair(r.log().snapshot_index(), previous),
                     WorldEntry{kUnknownTerm, Entry{previous, r.log().snapshot_index(), EntryType::noop, ""}});
    }
    for (const Entry& e : r.log().entries()) {
      world_.emplace(std::make_pair(e.index, e.term), WorldEntry{previous, e});
      previous = e.term;
    }
  }

  Message base_message(MessageType type) {
    Message m;
    m.type = type;
    m.cluster_id = in_.byte() % 16 == 0 ? in_.u64() : kClusterId;
    m.from = pick_peer(in_);
    m.to = in_.byte() % 16 == 0 ? pick_peer(in_) : kSelf;
    m.term = near(in_, raft().term());
    return m;
  }

  Message hostile_message() {
    const auto type = static_cast<MessageType>(kMinMessageType +
                                               in_.byte() % (kMaxMessageType - kMinMessageType));
    Message m = base_message(type);
    const Index last = raft().log().last_index();
    m.index = near(in_, in_.byte() % 2 ? last : raft().log().committed());
    m.log_term = near(in_, raft().log().term_at(m.index).value_or(raft().term()));
    m.commit = near(in_, raft().log().committed());
    const std::uint8_t flags = in_.byte();
    m.reject = flags & 1;
    m.transfer = flags & 2;
    m.unhealthy = flags & 4;
    if (m.reject) {
      m.reject_hint = near(in_, m.index);
      m.reject_hint_term = near(in_, m.log_term);
    }
    m.context = near(in_, 0);
    if (type == MessageType::append) add_entries(m);
    if (type == MessageType::config_ack && (flags & 8)) m.payload = in_.text(kMaxDataBytes);
    // Chain views of any height (past the limit too), and quorum heights a liar might send.
    if (flags & 16) m.chain_view = chain_view();
    if (flags & 32) m.chain_quorum_height = near(in_, kChainBase);
    return m;
  }

  // A height near a base most of the time (heights close together make the gating interesting),
  // or none.
  std::optional<ChainView> chain_view() {
    if (in_.byte() % 8 == 0) return std::nullopt;
    ChainView v;
    v.height = near(in_, kChainBase);
    v.tip[0] = in_.byte();
    return v;
  }
  static constexpr std::uint64_t kChainBase = 800'000;

  // Entries after m.index, mostly in the non-decreasing term order an honest leader sends.
  void add_entries(Message& m) {
    const std::size_t count = in_.byte() % (kMaxEntriesPerMessage + 1);
    Term term = m.log_term;
    for (std::size_t i = 0; i < count; i++) {
      Entry e;
      const std::uint8_t how = in_.byte();
      if (how % 8 == 0) term = near(in_, term);
      else if (how % 4 == 1 && term < m.term) term++;
      e.term = term;
      e.index = how % 16 == 15 ? near(in_, m.index) : m.index + 1 + i;
      e.type = static_cast<EntryType>(in_.byte() % (kMaxEntryType + 1));
      if (e.type == EntryType::config_change) {
        e.data = conf_change_record();
      } else if (e.type == EntryType::config_txn) {
        e.data = config_record();
      } else if (e.type == EntryType::normal) {
        e.data = in_.text(kMaxDataBytes);
      }
      m.entries.push_back(std::move(e));
    }
  }

  ConfChange conf_change() {
    ConfChange c;
    c.op = static_cast<ConfChangeOp>(1 + in_.byte() % 3);
    c.node = in_.byte() % 8 == 0 ? in_.u64() : 1 + in_.byte() % 6;
    if (c.op == ConfChangeOp::add_learner) c.address = "127.0.0.1:" + std::to_string(c.node);
    return c;
  }

  // A membership change as a leader would log it: the change and the membership it results in
  // (applied to the node's current membership when it makes sense there, else as drawn).
  std::string conf_change_record() {
    ConfChangeRecord record;
    record.change = conf_change();
    record.result = raft().membership();
    if (!record.result.voters.empty() && record.result.check(record.change)) {
      record.result.apply(record.change);  // (apply needs a configuration to apply to)
    }
    if (in_.byte() % 8 == 0) return in_.text(kMaxDataBytes);  // undecodable
    return encode_conf_change(record);
  }

  std::string config_record() {
    const std::uint8_t how = in_.byte();
    const std::uint64_t version = near(in_, host_->config_state().highest_version_seen() + 1);
    ConfigRecord record;
    if (how % 3 == 0) {
      std::vector<NodeId> required = {1, 2, 3};
      if (how & 8) required = {2, 3};
      record = ConfigRecord::prepare(version, in_.text(kMaxDataBytes), required);
    } else if (how % 3 == 1) {
      record = ConfigRecord::commit(version);
    } else {
      record = ConfigRecord::abort(version, in_.text(kMaxDataBytes));
    }
    if (how & 64) return in_.text(kMaxDataBytes);  // undecodable
    if (!check_config_record(record)) return in_.text(kMaxDataBytes);
    return encode_config_record(record);
  }

  // InstallSnapshot, mostly well-formed: a membership and host data whose state machine part
  // is the applied log of normal entries at or below the snapshot's index.
  Message snapshot_message() {
    Message m = base_message(MessageType::snapshot);
    m.index = near(in_, in_.byte() % 2 ? raft().log().last_index() : raft().log().committed());
    m.log_term = near(in_, m.term);
    const std::uint8_t how = in_.byte();
    Membership membership = raft().membership();
    if (how & 1) membership.voters = {1, 2, 3};
    if (how & 2) membership.voters.erase(kSelf);
    // The image agrees with what this node committed (a peer contradicting committed history
    // is beyond what any node can detect), and adds entries above it.
    AppliedLog image;
    const Index commit = raft().log().committed();
    for (Index i = 1; i <= std::min<Index>(m.index, commit + 4); i++) {
      auto seen = committed_.find(i);
      if (seen != committed_.end()) {
        if (seen->second.type == EntryType::normal) image.apply(seen->second);
      } else if (i > commit && in_.byte() % 2) {
        image.apply(Entry{m.log_term, i, EntryType::normal, in_.text(4)});
      }
    }
    std::string data = encode_host_snapshot(ConfigState{}, image.snapshot());
    if (how & 4) data = in_.text(kMaxDataBytes);
    m.payload = encode_snapshot_envelope(membership, data);
    if (how & 8) m.payload = in_.text(kMaxDataBytes);
    return m;
  }

  // A cooperative peer answers one message the node sent, as an honest node would: grants
  // votes, acknowledges appends and snapshots, echoes heartbeats. Lets the node lead and commit.
  void answer() {
    if (sent_.empty()) return;
    const std::size_t pick = in_.byte() % sent_.size();
    const Message sent = sent_[pick];
    sent_.erase(sent_.begin() + static_cast<std::ptrdiff_t>(pick));
    Message reply;
    reply.cluster_id = kClusterId;
    reply.from = sent.to;
    reply.to = kSelf;
    reply.term = sent.term;
    reply.reject = in_.byte() % 8 == 0;
    switch (sent.type) {
      case MessageType::pre_vote: reply.type = MessageType::pre_vote_response; break;
      case MessageType::vote: reply.type = MessageType::vote_response; break;
      case MessageType::append:
        reply.type = MessageType::append_response;
        reply.index = sent.index + sent.entries.size();
        if (reply.reject) {
          reply.index = sent.index;
          reply.reject_hint = sent.index > 0 ? sent.index - 1 : 0;
          reply.reject_hint_term = raft().log().term_at(reply.reject_hint).value_or(0);
        }
        break;
      case MessageType::snapshot:
        reply.type = MessageType::append_response;
        reply.index = sent.index;
        break;
      case MessageType::heartbeat:
        reply.type = MessageType::heartbeat_response;
        reply.context = sent.context;
        break;
      default: return;  // responses and acks need no answer
    }
    deliver(reply);
  }

  void restart() {
    storage_.drop_unsynced();
    const HardState durable = storage_.durable().hard_state;
    host_.reset();
    sent_.clear();
    checker_.on_restart(kSelf, durable.term, durable.commit);
    start();
  }

  Index durable_last_index() const {
    const RestoredState& d = storage_.durable();
    Index last = d.snapshot ? d.snapshot->meta.index : 0;
    if (!d.entries.empty()) last = std::max(last, d.entries.back().index);
    return last;
  }

  // Persist before send, checked as each message leaves.
  void on_send(const Message& m) {
    const HardState& durable = storage_.durable().hard_state;
    const Term allowed = m.type == MessageType::pre_vote ? durable.term + 1 : durable.term;
    if (m.type != MessageType::pre_vote_response && m.term > allowed) {
      finding(std::string(message_type_name(m.type)) + " of term " + std::to_string(m.term) +
              " sent with durable term " + std::to_string(durable.term));
    }
    if (m.type == MessageType::vote_response && !m.reject &&
        (durable.vote != m.to || durable.term != m.term)) {
      finding("vote for " + std::to_string(m.to) + " in term " + std::to_string(m.term) +
              " sent before it was durable (durable vote " + std::to_string(durable.vote) +
              " term " + std::to_string(durable.term) + ")");
    }
    if (m.type == MessageType::append_response && !m.reject && m.index > durable_last_index()) {
      finding("acknowledged index " + std::to_string(m.index) + " with only " +
              std::to_string(durable_last_index()) + " durable");
    }
    sent_.push_back(m);
    if (sent_.size() > kMaxSentKept) sent_.pop_front();
  }

  void check() {
    if (host_->failed()) finding("host stopped: " + host_->failure().message());
    const Raft& r = raft();
    if (r.is_leader()) {
      auto it = followed_.find(r.term());
      if (it != followed_.end()) {
        finding("node leads term " + std::to_string(r.term()) + " after following node " +
                std::to_string(it->second) + " as that term's leader");
      }
    } else if (r.leader() != kNoNode && r.leader() != kSelf) {
      followed_.emplace(r.term(), r.leader());
    }
    if (r.stats().snapshots_installed != snapshots_installed_) {
      // Installed from a peer this checker does not observe: vouch for its base, so that the
      // checks go on from there (the installed log must still never contradict history).
      snapshots_installed_ = r.stats().snapshots_installed;
      if (r.log().snapshot_index() > checker_.highest_committed() + kMaxVouchedGap) {
        beyond_checking_ = true;
        return;
      }
      checker_.vouch_for_snapshot(r.log().snapshot_index(), r.log().snapshot_term());
    }
    const HardState& durable = storage_.durable().hard_state;
    checker_.observe(NodeView{kSelf, r.term(), r.role(), r.log().committed(),
                              r.log().first_index(), r.log().entries(), 1, durable.term,
                              durable.commit, r.log().snapshot_term()});
    if (!checker_.ok()) finding(checker_.report());
    if (durable.vote != kNoNode) {
      auto [it, first] = votes_.emplace(durable.term, durable.vote);
      if (!first && it->second != durable.vote) {
        finding("voted for " + std::to_string(it->second) + " and " +
                std::to_string(durable.vote) + " in term " + std::to_string(durable.term));
      }
    }
    check_applied();
    record_world();
  }

  void check_applied() {
    const Raft& r = raft();
    for (Index i = std::max(recorded_commit_ + 1, r.log().first_index());
         i <= r.log().committed(); i++) {
      committed_.emplace(i, r.log().at(i));
    }
    recorded_commit_ = std::max(recorded_commit_, r.log().committed());
    for (const Entry& e : applied_.applied()) {
      if (e.index > r.log().committed()) {
        finding("applied index " + std::to_string(e.index) + " above commit " +
                std::to_string(r.log().committed()));
      }
      auto it = committed_.find(e.index);
      if (it != committed_.end() && it->second.type == EntryType::normal && it->second != e) {
        finding("applied entry " + std::to_string(e.index) + " differs from the one committed");
      }
    }
  }

  Reader& in_;
  // ANYA_FUZZ_TRACE=1 prints every operation and delivered message: how to read a reproducer.
  const bool trace_ = std::getenv("ANYA_FUZZ_TRACE") != nullptr;
  RaftConfig config_;
  MemoryStorage storage_;
  CallbackNetwork network_;
  AppliedLog applied_;
  ManualClock clock_;
  std::unique_ptr<Host> host_;
  std::uint64_t now_ms_ = 0;
  std::deque<Message> sent_;
  InvariantChecker checker_;
  std::uint64_t snapshots_installed_ = 0;
  bool beyond_checking_ = false;
  std::map<Term, NodeId> votes_;
  struct WorldEntry {
    Term previous_term;  // of the entry before it (kUnknownTerm: a snapshot's base)
    Entry entry;
  };
  static constexpr Term kUnknownTerm = ~Term{0};
  std::map<std::pair<Index, Term>, WorldEntry> world_;
  std::map<Term, NodeId> leader_of_term_;  // claimed by a peer's message, or this node's own
  std::map<Term, NodeId> followed_;        // the leader this node accepted in each term
  std::map<Index, Entry> committed_;  // every entry seen committed here, first sighting
  Index recorded_commit_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  Run run(in);
  run.operate();
  return 0;
}
