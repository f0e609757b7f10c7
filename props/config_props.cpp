// The configuration 2PC against a model. Random operations drive one leader's coordinator and
// 3-5 members that apply the committed records in order, each at its own pace; leaders change
// (keeping or losing their uncommitted proposals) and acks are delayed, duplicated, lost or
// forged. After every operation the model's rules must hold, and once the run settles (all
// committed, applied and decided) no transaction may be left half applied.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/config/config.hpp"

namespace anya::engine {
namespace {

constexpr std::uint64_t kDeadlineMs = 1000;
constexpr int kDocuments = 6;  // a small pool, so different versions often share a document

// Uniform over [low, high): rc::gen::inRange scales its range with the test size, which would
// make small runs degenerate (always `low`), so choices draw at full size. Shrinking still works.
template <typename T>
T pick(T low, T high) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(low, high));
}

std::string document(int i) { return R"({"doc":)" + std::to_string(i) + "}"; }

// For the log of a failing run: RapidCheck prints what RC_LOG collected.
std::string describe(const ConfigRecord& r) {
  std::string out = std::string(config_record_kind_name(r.kind)) + "(" + std::to_string(r.version);
  if (!r.document.empty()) out += ", " + r.document + ", required";
  for (const NodeId id : r.required) out += " " + std::to_string(id);
  if (!r.reason.empty()) out += ", " + r.reason;
  return out + ")";
}

class PoolValidator : public ConfigValidator {
 public:
  Status validate(std::uint64_t, std::string_view doc) override {
    if (reject.count(std::string(doc)) == 0) return Status::ok();
    return Status(Errc::invalid_argument, "refuses " + std::string(doc));
  }
  std::set<std::string> reject;
};

struct Member {
  ConfigState state;
  PoolValidator validator;
  std::size_t applied = 0;  // how many committed records it has applied
};

struct Proposal {
  ConfigRecord record;
  int epoch = 0;           // the leadership that proposed it
  bool duplicate = false;  // a copy of an earlier committed record
};

// An ack in flight, with the document the member had staged when it sent it: the wire names only
// the version, the model knows what the member was speaking of.
struct Ack {
  NodeId from = kNoNode;
  ConfigAck ack;
  std::string document;  // kForged for an ack no member sent
};
const std::string kForged = "(forged)";

struct Verdict {
  bool ok = false;
  std::string document;
};

enum class Op {
  begin, rollback, commit, apply, deliver, forge, tick, decide, leader_change, duplicate
};
constexpr int kOps = 10;

// Operations a run may leave out altogether: faults, time, and the less common requests.
bool is_optional(Op op) {
  return op == Op::forge || op == Op::tick || op == Op::leader_change || op == Op::duplicate ||
         op == Op::rollback;
}

class World {
 public:
  explicit World(std::size_t size) : members_(size) {
    // Per run, too: how picky the validators are, and how lossy and duplicating the network.
    const int reject_in_16 = pick<int>(0, 4);
    for (Member& m : members_) {
      for (int d = 0; d < kDocuments; ++d) {
        if (pick<int>(0, 16) < reject_in_16) m.validator.reject.insert(document(d));
      }
    }
    loss_in_16_ = pick<int>(0, 4);
    duplication_in_16_ = pick<int>(0, 4);
    leader_ = pick<NodeId>(1, size + 1);
    // Swarm testing: each run weighs the operations its own way, which reaches rare
    // interleavings (a lagging new leader, say) far more often than one fixed mix. Faults may
    // be off altogether; the protocol's own steps may not, or nothing would ever commit.
    for (int op = 0; op < kOps; ++op) weights_[op] = pick<int>(is_optional(Op(op)) ? 0 : 1, 5);
    for (const int w : weights_) total_weight_ += w;
  }

  void step() {
    int draw = pick<int>(0, total_weight_);
    int op = 0;
    while (op < kOps && draw >= weights_[op]) draw -= weights_[op++];
    RC_ASSERT(op < kOps);  // draw < total_weight_
    switch (static_cast<Op>(op)) {
      case Op::begin: return begin();
      case Op::rollback: return rollback();
      case Op::commit: return commit_some();
      case Op::apply: return apply_some();
      case Op::deliver: return deliver_ack();
      case Op::forge: return forge_ack();
      case Op::tick:
        now_ms_ += pick<std::uint64_t>(0, 700);
        RC_LOG() << "time is " << now_ms_ << " ms" << std::endl;
        return;
      case Op::decide: return decide();
      case Op::leader_change: return change_leader();
      case Op::duplicate: return duplicate();
    }
  }

  // Heal everything and let the protocol finish: nothing may stay staged.
  void settle() {
    for (int round = 0; round < 8; ++round) {
      commit_all();
      for (std::size_t m = 0; m < members_.size(); ++m) apply(m, committed_.size());
      for (const Ack& a : network_) receive(a);  // healed: nothing lost
      network_.clear();
      now_ms_ += kDeadlineMs + 1;
      decide();
      decide();
    }
    for (const Member& m : members_) {
      RC_ASSERT(!m.state.staged().has_value());
      RC_ASSERT(m.state.active_version() == members_[0].state.active_version());
    }
    RC_ASSERT(coordinator_.open_version() == 0u);
    RC_CLASSIFY(members_[0].state.active_version() > 0, "something activated");
    RC_CLASSIFY(!dropped_.empty(), "something aborted");
    RC_CLASSIFY(foreign_aborts_ > 0, "a foreign transaction aborted");
    RC_CLASSIFY(members_[0].state.counters().stale_prepares > 0, "stale prepare");
  }

 private:
  Member& leader() { return members_[leader_ - 1]; }

  std::optional<std::uint64_t> draw_if_version() {
    const std::uint64_t active = leader().state.active_version();
    return *rc::gen::weightedOneOf<std::optional<std::uint64_t>>({
        {3, rc::gen::just(std::optional<std::uint64_t>())},
        {3, rc::gen::just(std::optional<std::uint64_t>(active))},
        {1, rc::gen::just(std::optional<std::uint64_t>(active + 1))},
        {1, rc::gen::map(rc::gen::inRange<std::uint64_t>(0, 6),
                         [](std::uint64_t v) { return std::optional<std::uint64_t>(v); })},
    });
  }

  std::vector<NodeId> draw_required() {
    // A non-empty subset, as a bit mask over the members.
    const auto mask = pick<std::uint32_t>(1, std::uint32_t{1} << members_.size());
    std::vector<NodeId> required;
    for (NodeId id = 1; id <= members_.size(); ++id) {
      if ((mask >> (id - 1)) & 1u) required.push_back(id);
    }
    RC_ASSERT(!required.empty());
    return required;
  }

  void begin() {
    const std::optional<std::uint64_t> if_version = draw_if_version();
    Result<ConfigRecord> r = coordinator_.begin(leader().state, if_version,
                                                document(pick<int>(0, kDocuments)),
                                                draw_required(), now_ms_);
    on_begun(r, if_version);
  }

  void rollback() {
    const ConfigState& s = leader().state;
    const std::uint64_t to = pick<std::uint64_t>(0, s.highest_version_seen() + 2);
    const std::optional<std::uint64_t> if_version = draw_if_version();
    Result<ConfigRecord> r = coordinator_.rollback(s, to, if_version, draw_required(), now_ms_);
    if (r.status().code() == Errc::invalid_argument) {
      RC_ASSERT(s.find_in_history(to) == nullptr);
      return;
    }
    RC_ASSERT(s.find_in_history(to) != nullptr);
    if (r.is_ok()) RC_ASSERT(r->document == s.find_in_history(to)->document);
    on_begun(r, if_version);
  }

  // CAS conflicts exactly when if_version differs from the active version; a success takes the
  // next version and forgets acks that came before it.
  void on_begun(const Result<ConfigRecord>& r, std::optional<std::uint64_t> if_version) {
    const ConfigState& s = leader().state;
    RC_LOG() << "leader " << leader_ << " begins (if_version "
             << (if_version ? std::to_string(*if_version) : "none") << "): "
             << (r.is_ok() ? describe(*r) : r.status().to_string()) << std::endl;
    const bool stale = if_version && *if_version != s.active_version();
    RC_ASSERT((r.status().code() == Errc::conflict) == stale);
    if (!r.is_ok()) {
      RC_ASSERT(r.status().code() == Errc::conflict || r.status().code() == Errc::busy);
      return;
    }
    RC_ASSERT(r->kind == ConfigRecordKind::prepare);
    RC_ASSERT(r->version == s.highest_version_seen() + 1);
    began_[epoch_][r->version] = *r;
    acked_[epoch_][r->version].clear();
    pending_.push_back({*r, epoch_});
  }

  void commit_some() {
    if (pending_.empty()) return;
    const auto count = pick<std::size_t>(1, pending_.size() + 1);
    committed_.insert(committed_.end(), pending_.begin(), pending_.begin() + count);
    RC_LOG() << "raft commits " << count << " more, " << committed_.size() << " in all"
             << std::endl;
    pending_.erase(pending_.begin(), pending_.begin() + count);
  }

  void commit_all() {
    committed_.insert(committed_.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }

  void apply_some() {
    const auto m = pick<std::size_t>(0, members_.size());
    const std::size_t behind = committed_.size() - members_[m].applied;
    if (behind == 0) return;
    const std::size_t upto = members_[m].applied + pick<std::size_t>(1, behind + 1);
    RC_LOG() << "member " << m + 1 << " applies up to " << upto << std::endl;
    apply(m, upto);
  }

  void apply(std::size_t m, std::size_t upto) {
    Member& member = members_[m];
    const NodeId self = m + 1;
    while (member.applied < upto) {
      const Proposal& p = committed_[member.applied++];
      const Entry entry{1, member.applied, EntryType::config_txn, encode_config_record(p.record)};
      const std::uint64_t before = member.state.active_version();
      const ConfigEffects e = member.state.apply(entry, member.validator, self);
      RC_ASSERT(member.state.active_version() >= before);  // never backwards
      if (p.duplicate) RC_ASSERT(e.ignored);  // its original came first
      if (e.ack) {
        RC_ASSERT(std::binary_search(p.record.required.begin(), p.record.required.end(), self));
        network_.push_back({self, *e.ack, member.state.staged()->document});
      }
      if (e.activated != 0) on_activated(member, p, e.activated);
      if (e.dropped != 0) {
        RC_ASSERT(activated_.count(e.dropped) == 0);
        dropped_.insert(e.dropped);
      }
    }
    check_agreement();
  }

  // The COMMIT came from the leadership that began this version, with this document, and that
  // leadership had an ok from every required member (checked when it decided).
  void on_activated(const Member& member, const Proposal& commit, std::uint64_t v) {
    RC_ASSERT(commit.record.kind == ConfigRecordKind::commit);
    RC_ASSERT(commit.record.version == v);
    RC_ASSERT(dropped_.count(v) == 0);
    const auto began = began_[commit.epoch].find(v);
    RC_ASSERT(began != began_[commit.epoch].end());
    RC_ASSERT(member.state.active_document() == began->second.document);
    const auto [it, first] = activated_.emplace(v, member.state.active_document());
    RC_ASSERT(it->second == member.state.active_document());  // one document per version
  }

  // Members that applied the same prefix hold the same state.
  void check_agreement() {
    std::map<std::size_t, const ConfigState*> by_prefix;
    for (const Member& m : members_) {
      const auto [it, first] = by_prefix.emplace(m.applied, &m.state);
      if (first) continue;
      const ConfigState& other = *it->second;
      RC_ASSERT(m.state.active_version() == other.active_version());
      RC_ASSERT(m.state.active_document() == other.active_document());
      RC_ASSERT(m.state.history() == other.history());
      RC_ASSERT(m.state.highest_version_seen() == other.highest_version_seen());
      RC_ASSERT(m.state.staged().has_value() == other.staged().has_value());
      if (!m.state.staged()) continue;
      // All but the local verdict, which is each member's own.
      RC_ASSERT(m.state.staged()->version == other.staged()->version);
      RC_ASSERT(m.state.staged()->document == other.staged()->document);
      RC_ASSERT(m.state.staged()->required == other.staged()->required);
      RC_ASSERT(m.state.staged()->index == other.staged()->index);
    }
  }

  void deliver_ack() {
    if (network_.empty()) return;
    deliver(pick<std::size_t>(0, network_.size()));
  }

  // Delivers to the current leader; the ack may also stay in flight (a duplicate) or be lost.
  void deliver(std::size_t i) {
    const Ack a = network_[i];
    const int draw = pick<int>(0, 16);
    const bool lost = draw < loss_in_16_;
    const bool duplicated = !lost && draw < loss_in_16_ + duplication_in_16_;
    if (!duplicated) network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(i));
    if (!lost) receive(a);
    RC_LOG() << "ack from " << a.from << " for " << a.ack.version << (a.ack.ok ? " ok" : " reject")
             << (duplicated ? ", duplicated" : lost ? ", lost" : "") << std::endl;
  }

  void forge_ack() {
    const std::uint64_t open = coordinator_.open_version();
    ConfigAck ack;
    ack.version = *rc::gen::element(open, open + 1, pick<std::uint64_t>(0, 6));
    ack.ok = *rc::gen::arbitrary<bool>();
    ack.reason = ack.ok ? "" : "forged";
    const NodeId from = pick<NodeId>(1, members_.size() + 1);
    RC_LOG() << "forged ack from " << from << " for " << ack.version << (ack.ok ? " ok" : " reject")
             << std::endl;
    receive({from, ack, kForged});
  }

  void receive(const Ack& a) {
    coordinator_.on_ack(a.from, a.ack.version, a.ack.ok, a.ack.reason);
    auto [it, first] = acked_[epoch_][a.ack.version].emplace(a.from, Verdict{a.ack.ok, a.document});
    if (!first && it->second.ok) it->second = Verdict{a.ack.ok, a.document};  // rejects stay
  }

  void decide() {
    std::optional<ConfigRecord> r = coordinator_.decide(leader().state, now_ms_);
    if (!r) return;
    RC_LOG() << "leader " << leader_ << " decides " << describe(*r) << std::endl;
    RC_ASSERT(r->kind != ConfigRecordKind::prepare);
    if (r->kind == ConfigRecordKind::commit) check_commit(*r);
    if (r->reason == "leader changed during the transaction") ++foreign_aborts_;
    pending_.push_back({*r, epoch_});
  }

  // A version commits only if every required member acked ok (and none rejected) the document
  // this leadership began under that version, not another leader's PREPARE of the same number.
  void check_commit(const ConfigRecord& commit) {
    const auto began = began_[epoch_].find(commit.version);
    RC_ASSERT(began != began_[epoch_].end());
    const std::map<NodeId, Verdict>& acks = acked_[epoch_][commit.version];
    for (const NodeId id : began->second.required) {
      const auto it = acks.find(id);
      RC_ASSERT(it != acks.end());
      RC_ASSERT(it->second.ok);
      RC_ASSERT(it->second.document == began->second.document || it->second.document == kForged);
    }
  }

  // A new leader may hold some of the old one's uncommitted proposals; the rest are lost.
  void change_leader() {
    pending_.resize(pick<std::size_t>(0, pending_.size() + 1));
    coordinator_.reset();
    coordinator_ = ConfigCoordinator(kDeadlineMs);
    ++epoch_;
    leader_ = pick<NodeId>(1, members_.size() + 1);
    RC_LOG() << "leader " << leader_ << " elected, keeping " << pending_.size()
             << " uncommitted" << std::endl;
  }

  // A record committed twice (a host replaying an entry, a leader re-proposing): the copy comes
  // after its original, so it must find nothing to act on.
  void duplicate() {
    if (committed_.empty()) return;
    Proposal copy = committed_[pick<std::size_t>(0, committed_.size())];
    copy.duplicate = true;
    RC_LOG() << "raft commits a copy of " << describe(copy.record) << std::endl;
    committed_.push_back(copy);
  }

  std::vector<Member> members_;
  std::vector<Proposal> committed_;
  std::vector<Proposal> pending_;
  std::vector<Ack> network_;
  NodeId leader_ = kNoNode;
  int epoch_ = 0;
  ConfigCoordinator coordinator_{kDeadlineMs};
  std::uint64_t now_ms_ = 0;
  int foreign_aborts_ = 0;
  int loss_in_16_ = 0;
  int duplication_in_16_ = 0;
  int weights_[kOps] = {};
  int total_weight_ = 0;
  // The model.
  std::map<int, std::map<std::uint64_t, ConfigRecord>> began_;  // epoch -> version -> PREPARE
  // epoch -> version -> member -> what the leadership of that epoch heard, after it began
  std::map<int, std::map<std::uint64_t, std::map<NodeId, Verdict>>> acked_;
  std::map<std::uint64_t, std::string> activated_;  // version -> its one document
  std::set<std::uint64_t> dropped_;
};

RC_GTEST_PROP(ConfigProps, TwoPhaseCommitAgreesWithTheModel, ()) {
  World world(pick<std::size_t>(3, 6));
  const int steps = pick<int>(1, 500);
  for (int i = 0; i < steps; ++i) world.step();
  world.settle();
}

}  // namespace
}  // namespace anya::engine
