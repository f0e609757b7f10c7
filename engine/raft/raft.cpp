#include "engine/raft/raft.hpp"

#include <algorithm>
#include <limits>

#include "engine/base/mutants.hpp"

namespace anya::engine {

namespace {
// Bound on proposals the leader accepts beyond its commit index, so a leader cut off from its
// followers cannot grow its log without limit.
constexpr Index kMaxUncommittedEntries = 65536;

// Messages only a leader sends: they make the receiver a follower of the sender.
bool is_append_like(MessageType type) {
  return type == MessageType::append || type == MessageType::heartbeat ||
         type == MessageType::snapshot;
}
}  // namespace

Status RaftConfig::validate() const {
  if (id == kNoNode) return {Errc::invalid_argument, "id: must be non-zero"};
  if (heartbeat_interval_ms == 0) {
    return {Errc::invalid_argument, "heartbeat_interval_ms: must be positive"};
  }
  if (election_timeout_ms < 2 * heartbeat_interval_ms) {
    return {Errc::invalid_argument,
            "election_timeout_ms: must be at least twice heartbeat_interval_ms (" +
                std::to_string(election_timeout_ms) + " < 2 * " +
                std::to_string(heartbeat_interval_ms) + ")"};
  }
  if (election_jitter_ms > election_timeout_ms) {
    return {Errc::invalid_argument, "election_jitter_ms: must be at most election_timeout_ms"};
  }
  if (max_inflight_appends == 0) {
    return {Errc::invalid_argument, "max_inflight_appends: must be positive"};
  }
  if (max_apply_batch == 0) return {Errc::invalid_argument, "max_apply_batch: must be positive"};
  if (snapshot_keep_entries > kMaxSnapshotKeepEntries) {
    return {Errc::invalid_argument, "snapshot_keep_entries: must be at most " +
                                        std::to_string(kMaxSnapshotKeepEntries)};
  }
  if (max_append_bytes == 0 || max_append_bytes > Limits::max_frame_bytes / 2) {
    // One append carries up to max_append_bytes plus one more entry; it must fit a frame.
    return {Errc::invalid_argument, "max_append_bytes: must be 1 to " +
                                        std::to_string(Limits::max_frame_bytes / 2)};
  }
  for (const auto& [node, address] : addresses) {
    if (address.size() > kMaxAddressBytes) {
      return {Errc::invalid_argument, "addresses: node " + std::to_string(node) +
                                          " address longer than " +
                                          std::to_string(kMaxAddressBytes) + " bytes"};
    }
  }
  for (NodeId learner : learners) {
    if (voters.count(learner) != 0) {
      return {Errc::invalid_argument,
              "learners: node " + std::to_string(learner) + " is also a voter"};
    }
  }
  if (leases && max_clock_drift_ppm >= kMaxClockDriftPpm) {
    return {Errc::invalid_argument, "max_clock_drift: must be below " +
                                        std::to_string(kMaxClockDriftPpm / 10'000) + " %"};
  }
  if (leases && lease_duration_ms(election_timeout_ms, max_clock_drift_ppm) == 0) {
    return {Errc::invalid_argument, "election_timeout_ms: too short for a lease under "
                                    "max_clock_drift"};
  }
  if (max_blocks_behind > kMaxBlocksBehind) {
    return {Errc::invalid_argument, "max_blocks_behind: must be at most " +
                                        std::to_string(kMaxBlocksBehind) + " (got " +
                                        std::to_string(max_blocks_behind) + ")"};
  }
  if (voters.count(kNoNode) != 0 || learners.count(kNoNode) != 0) {
    return {Errc::invalid_argument, "voters/learners: node id 0 is reserved"};
  }
  return {};
}

std::uint64_t lease_duration_ms(std::uint64_t election_timeout_ms, std::uint32_t drift_ppm) {
  ANYA_ASSERT(drift_ppm < 1'000'000);
  const std::uint64_t scaled =
      election_timeout_ms * (1'000'000 - drift_ppm) / (1'000'000 + drift_ppm);
  ANYA_ASSERT(scaled <= election_timeout_ms);
  return scaled == 0 ? 0 : scaled - 1;
}

namespace {
// Nodes configured with the same seed must still draw different timeouts, or they would time
// out in lockstep and split every vote.
std::uint64_t node_seed(const RaftConfig& config) {
  return config.random_seed ^ (config.id * 0x9e3779b97f4a7c15ULL);
}
}  // namespace

Raft::Raft(const RaftConfig& config, std::uint64_t now_ms)
    : tracker_(config.max_inflight_appends), rng_(node_seed(config)) {
  init(config, now_ms);
}

Raft::Raft(const RaftConfig& config, const RestoredState& restored, std::uint64_t now_ms)
    : tracker_(config.max_inflight_appends), rng_(node_seed(config)) {
  term_ = restored.hard_state.term;
  vote_ = restored.hard_state.vote;
  if (restored.snapshot) {
    const SnapshotMeta& meta = restored.snapshot->meta;
    std::vector<Entry> after;
    for (const Entry& e : restored.entries) {
      if (e.index > meta.index) after.push_back(e);
    }
    // The snapshot may have reached the disk before the hard state that commits it.
    log_.restore(meta.index, meta.term, std::move(after),
                 std::max(restored.hard_state.commit, meta.index));
    snapshot_ = restored.snapshot;
  } else {
    log_.restore(restored.entries, restored.hard_state.commit);
  }
  persisted_hard_state_ = restored.hard_state;
  init(config, now_ms);
}

void Raft::init(const RaftConfig& config, std::uint64_t now_ms) {
  const Status valid = config.validate();
  ANYA_ASSERT(valid.is_ok());  // hosts validate configuration before building the engine
  id_ = config.id;
  cluster_id_ = config.cluster_id;
  heartbeat_interval_ms_ = config.heartbeat_interval_ms;
  election_timeout_ms_ = config.election_timeout_ms;
  election_jitter_ms_ =
      config.election_jitter_ms == 0 ? config.election_timeout_ms : config.election_jitter_ms;
  ANYA_ASSERT(election_jitter_ms_ > 0);
  pre_vote_ = config.pre_vote;
  check_quorum_ = config.check_quorum;
  leases_ = config.leases;
  lease_duration_ms_ =
      leases_ ? lease_duration_ms(config.election_timeout_ms, config.max_clock_drift_ppm) : 0;
  // A restarted node forgot which leader it last answered: it holds its vote for an election
  // timeout, as if it had just heard one.
  vote_hold_until_ms_ = leases_ ? now_ms + config.election_timeout_ms : 0;
  max_append_bytes_ = config.max_append_bytes;
  max_apply_batch_ = config.max_apply_batch;
  max_blocks_behind_ = config.max_blocks_behind;
  // Suspect once silent for an election timeout (the bound CheckQuorum and elections use), down
  // after three: long enough that one stalled fsync or a GC-like pause does not mark it down.
  liveness_config_ = LivenessConfig{config.election_timeout_ms, 3 * config.election_timeout_ms,
                                    kLivenessRise};
  hooks_ = config.fault_hooks;
  now_ms_ = now_ms;
  Membership bootstrap{config.voters, config.learners, config.addresses};
  // A snapshot's membership replaces the bootstrap one: the log after it starts from there.
  if (snapshot_) {
    membership_history_.assign(1, {snapshot_->meta.index, snapshot_->meta.membership});
  } else {
    membership_history_.assign(1, {0, bootstrap});
  }
  reset_tracker();
  refresh_membership(log_.first_index());
  become_follower(term_, kNoNode);
}

void Raft::set_now(std::uint64_t now_ms) {
  ANYA_ASSERT(now_ms >= now_ms_);  // a monotonic clock never goes back
  now_ms_ = now_ms;
}

Role Raft::role() const {
  if (role_ == Role::follower && tracker_.is_learner(id_)) return Role::learner;
  return role_;
}

void Raft::reset_election_timer() {
  // Randomised in [T, T + jitter) so that split votes resolve (§5.2).
  election_deadline_ms_ = now_ms_ + election_timeout_ms_ + rng_.below(election_jitter_ms_);
}

bool Raft::in_lease() const {
  // Leader stickiness: while a live leader is heard, disruptive candidates are ignored.
  if (lease_guard()) return true;
  if (!check_quorum_) return false;
  if (role_ == Role::leader) return true;
  return leader_ != kNoNode && heard_from_leader_ &&
         now_ms_ - last_leader_contact_ms_ < election_timeout_ms_;
}

bool Raft::lease_guard() const {
  // Unlike stickiness this survives becoming a pre-candidate: a node whose election timer fired
  // early (or was forced) may still be counted on by the leader's lease.
  if (!leases_ || role_ == Role::leader) return false;
  // A lone voter's lease counts on nobody else: it may elect itself at once after a start.
  const std::set<NodeId>& voters = membership().voters;
  if (voters.size() == 1 && voters.count(id_) == 1) return false;
  if (now_ms_ < vote_hold_until_ms_) return true;
  return lease_contact_ && now_ms_ - lease_contact_ms_ < election_timeout_ms_;
}

// ---- role transitions --------------------------------------------------------------------

void Raft::reset_term(Term term) {
  ANYA_ASSERT(term >= term_);
  if (term != term_) {
    term_ = term;
    vote_ = kNoNode;
    leader_commit_ = 0;
  }
  tracker_.reset_votes();
  abort_transfer();
}

void Raft::set_leader(NodeId leader) {
  if (leader != kNoNode && leader != leader_) stats_.leader_changes++;
  if (leader != leader_) liveness_.clear();  // a new leader: watch the new one from now
  leader_ = leader;
  if (leader != kNoNode && leader != id_) heard_from(leader, std::nullopt);
  if (leader != kNoNode) {
    heard_from_leader_ = true;
    last_leader_contact_ms_ = now_ms_;
    if (leader != id_) {
      lease_contact_ = true;
      lease_contact_ms_ = now_ms_;
    }
  }
}

void Raft::heard_from(NodeId id, std::optional<std::uint64_t> rtt_ms) {
  ANYA_ASSERT(id != id_);
  auto peer = liveness_.find(id);
  if (peer == liveness_.end()) {  // a member added while leading, or a new leader
    peer = liveness_.emplace(id, PeerLiveness(liveness_config_, now_ms_)).first;
  }
  peer->second.heard(now_ms_, rtt_ms);
}

void Raft::become_follower(Term term, NodeId leader) {
  if (role_ == Role::leader) {
    // What it knew as leader it still knows: a leader that stepped down because it was behind
    // stays behind until a new leader says otherwise.
    heard_chain_quorum_ = chain_quorum_height();
    heard_chain_quorum_ms_ = now_ms_;
  }
  reset_term(term);
  role_ = Role::follower;
  leader_ = kNoNode;
  heard_from_leader_ = false;
  set_leader(leader);
  reset_election_timer();
}

void Raft::become_pre_candidate() {
  ANYA_ASSERT(role_ != Role::leader);
  // A pre-candidate forgets its leader: it no longer believes in it, and must not keep
  // refusing votes on its behalf (the known PreVote + CheckQuorum liveness fix).
  role_ = Role::pre_candidate;
  leader_ = kNoNode;
  heard_from_leader_ = false;
  tracker_.reset_votes();
}

void Raft::become_candidate() {
  ANYA_ASSERT(role_ != Role::leader);
  reset_term(term_ + 1);
  vote_ = id_;
  role_ = Role::candidate;
  leader_ = kNoNode;
  heard_from_leader_ = false;
}

void Raft::become_leader() {
  ANYA_ASSERT(role_ == Role::candidate);
  ANYA_ASSERT(vote_ == id_);
  // A node that knows itself behind never campaigns, and one that becomes behind while
  // campaigning gives up (set_chain_view, handle_heartbeat): it cannot be winning now.
  ANYA_ASSERT(!chain_behind() || mutants::active(mutants::chain_ignored));
  role_ = Role::leader;
  set_leader(id_);
  stats_.elections_won++;
  for (auto& [id, pr] : tracker_.all()) {
    pr.match = 0;
    pr.become_probe();
    pr.next = log_.last_index() + 1;  // optimistic: probe backwards from our last entry
    pr.last_active_ms = now_ms_;  // a full window of grace before CheckQuorum judges
  }
  if (tracker_.has(id_)) tracker_.at(id_).maybe_update(log_.stable_index());
  heartbeat_due_ms_ = now_ms_ + heartbeat_interval_ms_;
  heartbeat_round_ = 0;
  round_sent_ms_.clear();
  lease_revoked_ = false;
  liveness_.clear();
  for (const auto& [id, pr] : tracker_.all()) {
    if (id != id_) liveness_.emplace(id, PeerLiveness(liveness_config_, now_ms_));
  }
  for (auto& [id, pr] : tracker_.all()) {
    pr.acked_round = 0;
    pr.match_round = 0;
    // Views are this term's news: ones heard under an earlier leadership may be long stale.
    pr.chain_view.reset();
  }
  heard_chain_quorum_.reset();
  // An entry of the new term lets earlier entries commit (§5.4.2, Figure 8).
  append_entries({Entry{0, 0, EntryType::noop, {}}});
  broadcast_append();
}

// ---- elections ---------------------------------------------------------------------------

void Raft::campaign(CampaignKind kind) {
  if (!promotable()) return;
  MessageType request = MessageType::vote;
  Term request_term = 0;
  if (kind == CampaignKind::pre_election) {
    become_pre_candidate();
    request = MessageType::pre_vote;
    request_term = term_ + 1;  // the term we would campaign in; our own term is unchanged
    stats_.pre_votes_started++;
  } else {
    if (kind == CampaignKind::election && lease_guard()) {
      // A leader heard within an election timeout may hold a lease that counts on us.
      stats_.lease_guarded++;
      become_follower(term_, kNoNode);
      return;
    }
    become_candidate();
    request_term = term_;
    stats_.elections_started++;
  }
  const MessageType response = request == MessageType::pre_vote ? MessageType::pre_vote_response
                                                                : MessageType::vote_response;
  poll(id_, response, true);
  if (role_ == Role::leader || (kind == CampaignKind::pre_election &&
                                role_ != Role::pre_candidate)) {
    return;  // a single-voter cluster won outright
  }
  for (NodeId voter : tracker_.voters().all_voters()) {
    if (voter == id_) continue;
    Message m;
    m.type = request;
    m.to = voter;
    m.term = request_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = kind == CampaignKind::transfer;
    send(std::move(m));
  }
}

void Raft::poll(NodeId from, MessageType type, bool granted) {
  const bool expected = (role_ == Role::pre_candidate && type == MessageType::pre_vote_response) ||
                        (role_ == Role::candidate && type == MessageType::vote_response);
  if (!expected) return;
  tracker_.record_vote(from, granted);
  switch (tracker_.tally()) {
    case VoteResult::won:
      if (role_ == Role::pre_candidate) {
        campaign(CampaignKind::election);
      } else {
        become_leader();
      }
      break;
    case VoteResult::lost:
      become_follower(term_, kNoNode);
      break;
    case VoteResult::pending:
      break;
  }
}

void Raft::leader_unreachable(std::uint64_t now_ms) {
  set_now(now_ms);
  if (role_ == Role::leader || leader_ == kNoNode) return;
  heard_from_leader_ = false;
  // The host has evidence the leader's process is gone (engine/node decides what counts), and
  // a process that is gone holds no lease. Nor does any earlier leader this node may have
  // answered before it restarted: the gone one was elected after their leases had ended (its
  // voters waited them out), and it is the newest this node knows. So the hold after a
  // restart ends too.
  lease_contact_ = false;
  vote_hold_until_ms_ = 0;
}

std::uint64_t Raft::request_read_round(std::uint64_t now_ms) {
  set_now(now_ms);
  ANYA_ASSERT(role_ == Role::leader);
  stats_.read_rounds++;
  broadcast_heartbeat();
  return heartbeat_round_;
}

std::uint64_t Raft::confirmed_round() const {
  if (role_ != Role::leader) return 0;
  const std::uint64_t round = tracker_.voters().committed_index(
      [this](NodeId id) -> std::optional<Index> {
        if (id == id_) return heartbeat_round_;
        if (!tracker_.has(id)) return std::nullopt;
        return tracker_.at(id).acked_round;
      });
  // No voters at all (a leader removing itself): nothing is confirmed.
  if (round == kUnconstrainedIndex) return 0;
  ANYA_ASSERT(round <= heartbeat_round_);
  return round;
}

bool Raft::committed_in_term() const {
  return role_ == Role::leader && log_.term_at(log_.committed()) == term_;
}

std::uint64_t Raft::lease_until_ms() const {
  if (!leases_ || role_ != Role::leader || lease_revoked_) return 0;
  const std::uint64_t round = confirmed_round();
  if (round == 0) return 0;
  // The send time of the newest remembered round at or below the confirmed one.
  auto it = std::upper_bound(round_sent_ms_.begin(), round_sent_ms_.end(),
                             std::make_pair(round, std::numeric_limits<std::uint64_t>::max()));
  if (it == round_sent_ms_.begin()) return 0;
  --it;
  ANYA_ASSERT(it->first <= round);
  return it->second + lease_duration_ms_;
}

Index Raft::leader_commit() const {
  return role_ == Role::leader ? log_.committed() : leader_commit_;
}

std::vector<NodeId> Raft::take_regressed_followers() {
  std::vector<NodeId> out = std::move(regressed_followers_);
  regressed_followers_.clear();
  return out;
}

void Raft::campaign_now(std::uint64_t now_ms) {
  set_now(now_ms);
  if (role_ == Role::leader) return;
  reset_election_timer();
  campaign(pre_vote_ ? CampaignKind::pre_election : CampaignKind::election);
}

// ---- time --------------------------------------------------------------------------------

void Raft::tick(std::uint64_t now_ms) {
  set_now(now_ms);
  for (auto& [id, peer] : liveness_) peer.tick(now_ms_);
  if (role_ == Role::leader) {
    tick_leader();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  if (now_ms_ < election_deadline_ms_) return;
  reset_election_timer();
  if (tracker_.is_voter(id_) && chain_behind()) stats_.chain_campaigns_skipped++;
  campaign(pre_vote_ ? CampaignKind::pre_election : CampaignKind::election);
}

std::uint64_t Raft::quorum_expiry_ms() const {
  // The quorum's "acknowledged index" is here a time: the latest instant by which a quorum of
  // voters has been heard. The same quorum math that commits entries answers it.
  const std::uint64_t heard = tracker_.voters().committed_index(
      [this](NodeId id) -> std::optional<Index> {
        if (id == id_) return now_ms_;
        if (!tracker_.has(id)) return std::nullopt;
        return tracker_.at(id).last_active_ms;
      });
  return heard == kUnconstrainedIndex ? kUnconstrainedIndex : heard + election_timeout_ms_;
}

std::uint64_t Raft::next_deadline_ms() const {
  if (role_ != Role::leader) return election_deadline_ms_;
  std::uint64_t next = heartbeat_due_ms_;
  if (check_quorum_) next = std::min(next, quorum_expiry_ms());
  if (transfer_target_ != kNoNode) next = std::min(next, transfer_deadline_ms_);
  return std::max(next, now_ms_);
}

void Raft::tick_leader() {
  if (check_quorum_ && !tracker_.quorum_active(id_, now_ms_, election_timeout_ms_)) {
    // No quorum heard within an election timeout: another leader may exist by now.
    stats_.steps_down_check_quorum++;
    become_follower(term_, kNoNode);
    return;
  }
  if (transfer_target_ != kNoNode && now_ms_ >= transfer_deadline_ms_) abort_transfer();
  maybe_transfer_for_gating();
  if (now_ms_ >= heartbeat_due_ms_) {
    heartbeat_due_ms_ = now_ms_ + heartbeat_interval_ms_;
    broadcast_heartbeat();
  }
}

// ---- proposals and transfer --------------------------------------------------------------

Result<Index> Raft::propose(std::string data, std::uint64_t now_ms, EntryType type) {
  std::vector<std::string> one;
  one.push_back(std::move(data));
  Result<Index> first = propose_batch(std::move(one), now_ms, type);
  if (!first) return first;
  ANYA_ASSERT(*first == log_.last_index());
  return first;
}

Result<Index> Raft::propose_batch(std::vector<std::string> data, std::uint64_t now_ms,
                                  EntryType type) {
  set_now(now_ms);
  ANYA_ASSERT(type == EntryType::normal || type == EntryType::config_txn);
  ANYA_ASSERT(!data.empty());
  if (role_ != Role::leader) {
    return {Errc::not_leader, leader_ == kNoNode
                                  ? "not the leader; no leader is known"
                                  : "not the leader; the leader is node " +
                                        std::to_string(leader_)};
  }
  if (transfer_target_ != kNoNode) {
    return {Errc::busy, "leadership transfer to node " + std::to_string(transfer_target_) +
                            " in progress"};
  }
  for (const std::string& d : data) {
    if (d.size() > Limits::max_entry_data_bytes) {
      return {Errc::invalid_argument, "entry of " + std::to_string(d.size()) +
                                          " bytes exceeds the limit of " +
                                          std::to_string(Limits::max_entry_data_bytes)};
    }
  }
  if (log_.last_index() - log_.committed() + data.size() > kMaxUncommittedEntries) {
    return {Errc::busy, "too many uncommitted entries; retry once the cluster catches up"};
  }
  const Index first = log_.last_index() + 1;
  std::vector<Entry> entries;
  entries.reserve(data.size());
  for (std::string& d : data) entries.push_back(Entry{0, 0, type, std::move(d)});
  append_entries(std::move(entries));
  // One broadcast for the whole batch: each follower gets one append, so one fsync, for it.
  broadcast_append();
  return first;
}

Result<Index> Raft::propose_conf_change(const ConfChange& change, std::uint64_t now_ms) {
  set_now(now_ms);
  if (role_ != Role::leader) {
    return {Errc::not_leader, leader_ == kNoNode ? "not the leader; no leader is known"
                                                 : "not the leader; the leader is node " +
                                                       std::to_string(leader_)};
  }
  if (transfer_target_ != kNoNode) return {Errc::busy, "leadership transfer in progress"};
  if (log_.term_at(log_.committed()) != term_) {
    // Until an entry of this term commits, an older leader's change may still be in flight.
    return {Errc::busy, "the leader has not yet committed an entry of its term; retry"};
  }
  const Index config_index = membership_history_.back().first;
  if (config_index > log_.committed()) {
    return {Errc::busy, "membership change at index " + std::to_string(config_index) +
                            " is not committed yet; one change at a time"};
  }
  if (Status ok = membership().check(change); !ok) return ok;
  if (change.op == ConfChangeOp::promote) {
    const Progress& pr = tracker_.at(change.node);
    if (pr.match < log_.committed()) {
      return {Errc::busy, "learner " + std::to_string(change.node) + " is catching up (match " +
                              std::to_string(pr.match) + ", commit " +
                              std::to_string(log_.committed()) + ")"};
    }
  }
  ConfChangeRecord record{change, membership()};
  record.result.apply(change);
  append_entries({Entry{0, 0, EntryType::config_change, encode_conf_change(record)}});
  broadcast_append();
  return log_.last_index();
}

void Raft::set_healthy(bool healthy, std::uint64_t now_ms) {
  set_now(now_ms);
  healthy_ = healthy;
  if (!healthy_ && role_ == Role::leader) maybe_transfer_for_gating();
}

void Raft::set_chain_view(std::optional<ChainView> view, std::uint64_t now_ms) {
  set_now(now_ms);
  // The host checks what its backend says; a height past the limit is a bug in that check.
  ANYA_ASSERT(!view || view->height <= Limits::max_chain_height);
  chain_view_ = view;
  if (role_ == Role::leader) {
    maybe_transfer_for_gating();
  } else if ((role_ == Role::pre_candidate || role_ == Role::candidate) && chain_behind()) {
    become_follower(term_, kNoNode);  // never campaign while behind, not even half-way through
  }
}

std::optional<std::uint64_t> Raft::chain_quorum_height() const {
  if (role_ == Role::leader) return tracker_.chain_quorum_height(id_, chain_view_);
  if (!heard_chain_quorum_) return std::nullopt;
  ANYA_ASSERT(now_ms_ >= heard_chain_quorum_ms_);
  if (now_ms_ - heard_chain_quorum_ms_ >= kChainQuorumValidTimeouts * election_timeout_ms_) {
    return std::nullopt;  // no leader told us for a while: see kChainQuorumValidTimeouts
  }
  return heard_chain_quorum_;
}

bool Raft::chain_behind() const {
  const std::optional<std::uint64_t> quorum = chain_quorum_height();
  if (!quorum) return false;
  ANYA_ASSERT(*quorum <= Limits::max_chain_height);
  return !chain_view_ || height_behind(chain_view_->height, *quorum, max_blocks_behind_);
}

bool Raft::member_chain_behind(NodeId id, std::optional<std::uint64_t> quorum_height) const {
  if (!quorum_height) return false;
  const std::optional<ChainView>& view =
      id == id_ ? chain_view_ : tracker_.at(id).chain_view;
  return !view || height_behind(view->height, *quorum_height, max_blocks_behind_);
}

bool Raft::refuses_for_chain(const Message& m) const {
  // Compared with this voter's own view, not the quorum's: any quorum that elects a candidate
  // overlaps the quorum holding the quorum height, so if every voter refuses candidates more
  // than max_blocks_behind below itself, no candidate that far below the quorum height can win,
  // whatever the candidate believes about itself and however stale its knowledge. The price:
  // a voter far ahead of the quorum also refuses candidates the quorum would not call behind.
  // Such voters are a minority (a majority that far ahead would set the quorum height), so
  // they only delay an election when their votes are needed, until the views converge.
  // A candidate without a view is refused too: then only a quorum of viewless voters can elect
  // it, and with that many viewless voters there is no quorum view it could be behind.
  if (!chain_view_ || mutants::active(mutants::chain_ignored)) return false;
  if (!m.chain_view) return true;
  return height_behind(m.chain_view->height, chain_view_->height, max_blocks_behind_);
}

void Raft::maybe_transfer_for_gating() {
  if (role_ != Role::leader || transfer_target_ != kNoNode) return;
  const std::optional<std::uint64_t> quorum = chain_quorum_height();
  const bool behind = member_chain_behind(id_, quorum);
  if (healthy_ && !behind) return;
  // A healthy voter, not behind, heard from recently, with the most of our log; ties go to the
  // lower id.
  NodeId best = kNoNode;
  Index best_match = 0;
  for (const auto& [id, pr] : tracker_.all()) {
    if (id == id_ || !tracker_.is_voter(id) || !pr.healthy) continue;
    if (now_ms_ - pr.last_active_ms >= election_timeout_ms_) continue;
    if (member_chain_behind(id, quorum)) continue;
    if (best == kNoNode || pr.match > best_match) {
      best = id;
      best_match = pr.match;
    }
  }
  if (best == kNoNode) return;  // nobody better: a gated leader beats no leader
  ANYA_ASSERT(tracker_.is_voter(best));
  ANYA_ASSERT(!member_chain_behind(best, quorum));
  (healthy_ ? stats_.chain_transfers : stats_.health_transfers)++;
  const Status started = transfer_leadership(best, now_ms_);
  ANYA_ASSERT(started.is_ok());  // a voter, not us, not behind: nothing to refuse
}

bool Raft::promotable() const {
  if (!healthy_) return false;
  if (chain_behind() && !mutants::active(mutants::chain_ignored)) return false;
  if (tracker_.is_voter(id_)) return true;
  const auto& history = membership_history_;
  return history.size() >= 2 && history.back().first > log_.committed() &&
         history[history.size() - 2].second.voters.count(id_) != 0;
}

bool Raft::has_quorum() const {
  if (role_ == Role::leader) {
    return tracker_.quorum_active(id_, now_ms_, election_timeout_ms_);
  }
  return leader_ != kNoNode && heard_from_leader_ &&
         now_ms_ - last_leader_contact_ms_ < election_timeout_ms_;
}

std::vector<MemberStatus> Raft::members() const {
  std::vector<MemberStatus> out;
  const Membership& m = membership();
  auto add = [&](NodeId id, bool voter) {
    MemberStatus st;
    st.id = id;
    st.voter = voter;
    auto addr = m.addresses.find(id);
    if (addr != m.addresses.end()) st.address = addr->second;
    if (const auto peer = liveness_.find(id); peer != liveness_.end()) {
      st.liveness = peer->second.state_at(now_ms_);
      st.rtt_ms = peer->second.srtt_ms();
      st.liveness_transitions = peer->second.transitions();
    }
    if (id == id_) {
      st.liveness = Liveness::reachable;
      st.reachable = true;
      st.last_contact_age_ms = 0;
      st.match = log_.last_index();
      st.healthy = healthy_;
      st.chain_view = chain_view_;
      st.chain_behind = chain_behind();
    } else if (role_ == Role::leader && tracker_.has(id)) {
      const Progress& pr = tracker_.at(id);
      st.last_contact_age_ms = now_ms_ - pr.last_active_ms;
      st.reachable = *st.last_contact_age_ms < election_timeout_ms_;
      st.match = pr.match;
      st.healthy = pr.healthy;
      st.chain_view = pr.chain_view;
      st.chain_behind = member_chain_behind(id, chain_quorum_height());
    } else if (id == leader_ && heard_from_leader_) {
      st.last_contact_age_ms = now_ms_ - last_leader_contact_ms_;
      st.reachable = *st.last_contact_age_ms < election_timeout_ms_;
    }
    out.push_back(std::move(st));
  };
  for (NodeId id : m.voters) add(id, true);
  for (NodeId id : m.learners) add(id, false);
  return out;
}

void Raft::reset_tracker() {
  std::set<NodeId> voters = membership().voters;
  std::set<NodeId> learners = membership().learners;
  if (mutants::active(mutants::learners_vote)) {
    voters.insert(learners.begin(), learners.end());
    learners.clear();
  }
  tracker_.reset_config(JointConfig(MajorityConfig(std::move(voters))), learners,
                        log_.last_index() + 1);
}

void Raft::refresh_membership(Index from) {
  ANYA_ASSERT(from >= 1);
  const Membership before = membership();
  while (membership_history_.size() > 1 && membership_history_.back().first >= from) {
    membership_history_.pop_back();  // truncated away, or about to be recomputed
  }
  for (Index i = std::max(from, log_.first_index()); i <= log_.last_index(); i++) {
    const Entry& e = log_.at(i);
    if (e.type != EntryType::config_change) continue;
    Result<ConfChangeRecord> record = decode_conf_change(e.data);
    bool consistent = record.is_ok();
    if (consistent && !membership().voters.empty()) {
      // We know the configuration it applies to: the result must follow from it. (A joining
      // node knows none and takes the result as it comes.)
      Membership expected = membership();
      consistent = expected.check(record->change).is_ok();
      if (consistent) expected.apply(record->change);
      consistent = consistent && expected == record->result;
    }
    if (!consistent) {
      stats_.invalid_conf_changes++;  // a correct leader never appends one; skip it everywhere
      continue;
    }
    membership_history_.emplace_back(i, record->result);
  }
  if (membership() == before) return;
  reset_tracker();
  if (role_ == Role::leader) {
    for (auto& [id, pr] : tracker_.all()) {
      if (pr.last_active_ms == 0) pr.last_active_ms = now_ms_;  // a new member: grace period
      // Watched from now: a member that never answers turns suspect, then down.
      if (id != id_) liveness_.try_emplace(id, liveness_config_, now_ms_);
    }
  }
}

void Raft::maybe_step_down_if_removed() {
  // A leader removed from the voters leads until the change commits, then steps down.
  if (role_ != Role::leader || tracker_.is_voter(id_)) return;
  if (log_.committed() < membership_history_.back().first) return;
  become_follower(term_, kNoNode);
}

Status Raft::transfer_leadership(NodeId target, std::uint64_t now_ms) {
  set_now(now_ms);
  if (role_ != Role::leader) return {Errc::not_leader, "only the leader can transfer leadership"};
  if (target == id_) return {Errc::invalid_argument, "target: node is already the leader"};
  if (!tracker_.is_voter(target)) {
    return {Errc::invalid_argument, "target: node " + std::to_string(target) + " is not a voter"};
  }
  if (const std::optional<std::uint64_t> quorum = chain_quorum_height();
      member_chain_behind(target, quorum)) {
    const std::optional<ChainView>& view = tracker_.at(target).chain_view;
    return {Errc::invalid_argument,
            "target: node " + std::to_string(target) + " is behind the Bitcoin chain (height " +
                (view ? std::to_string(view->height) : std::string("unknown")) +
                ", a quorum of voters holds " + std::to_string(*quorum) + ", max_blocks_behind " +
                std::to_string(max_blocks_behind_) + ")"};
  }
  transfer_target_ = target;
  transfer_deadline_ms_ = now_ms_ + election_timeout_ms_;
  if (tracker_.at(target).match == log_.last_index()) {
    send_timeout_now(target);
  } else {
    send_append(target, true);
  }
  return {};
}

void Raft::abort_transfer() { transfer_target_ = kNoNode; }

void Raft::send_timeout_now(NodeId to) {
  ANYA_ASSERT(role_ == Role::leader);
  // The target campaigns past every voter's stickiness: from now on this term's lease rule no
  // longer holds, even if the transfer is later abandoned.
  lease_revoked_ = true;
  Message m;
  m.type = MessageType::timeout_now;
  m.to = to;
  m.term = term_;
  send(std::move(m));
}

// ---- receiving ---------------------------------------------------------------------------

void Raft::step(const Message& m, std::uint64_t now_ms) {
  set_now(now_ms);
  if (m.to != id_ || m.from == kNoNode || m.from == id_) return;
  if (m.term > Limits::max_term || m.log_term > Limits::max_term ||
      m.reject_hint_term > Limits::max_term || m.index > Limits::max_index ||
      m.commit > Limits::max_index || m.reject_hint > Limits::max_index ||
      m.entries.size() > Limits::max_index - m.index ||
      (m.chain_view && m.chain_view->height > Limits::max_chain_height) ||
      (m.chain_quorum_height && *m.chain_quorum_height > Limits::max_chain_height)) {
    stats_.invalid_messages++;  // would wrap term + 1 or index + 1; no real cluster gets here
    return;
  }
  if (!accepts_from(m)) return;
  if (!step_term(m)) return;
  if (m.type == MessageType::pre_vote || m.type == MessageType::vote) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::leader: step_leader(m); break;
    case Role::candidate:
    case Role::pre_candidate: step_candidate(m); break;
    case Role::follower:
    case Role::learner: step_follower(m); break;
  }
}

bool Raft::accepts_from(const Message& m) {
  if (cluster_id_ != 0 && m.cluster_id != cluster_id_) {
    stats_.foreign_cluster_messages++;
    return false;
  }
  // Appends and heartbeats are accepted from anyone with a current term: a joining node does
  // not know its leader yet.
  if (is_append_like(m.type) || membership().contains(m.from)) return true;
  stats_.non_member_messages++;
  // A vote request from outside our configuration comes from a removed node, or from a member
  // added by entries we have not received yet. While a leader is alive it is ignored, so a
  // removed node cannot disrupt; without one it is answered, since the cluster may need that
  // newer member's log (votes are counted in the candidate's configuration, so this is safe).
  const bool vote_request = m.type == MessageType::pre_vote || m.type == MessageType::vote;
  return vote_request && !in_lease();
}

bool Raft::step_term(const Message& m) {
  if (m.term > term_) {
    const bool vote_request = m.type == MessageType::pre_vote || m.type == MessageType::vote;
    if (vote_request && !m.transfer && in_lease()) {
      stats_.votes_ignored_in_lease++;
      return false;
    }
    // A pre-vote, and a granted pre-vote answer, carry a future term we have not entered.
    if (m.type == MessageType::pre_vote) return true;
    if (m.type == MessageType::pre_vote_response && !m.reject) return true;
    become_follower(m.term, is_append_like(m.type) ? m.from : kNoNode);
    return true;
  }
  if (m.term < term_) {
    stats_.stale_messages++;
    if ((check_quorum_ || pre_vote_) && is_append_like(m.type)) {
      // A leader cut off and left behind learns the newer term from this and steps down.
      Message reply;
      reply.type = MessageType::append_response;
      reply.to = m.from;
      reply.term = term_;
      send(std::move(reply));
    } else if (m.type == MessageType::pre_vote) {
      Message reply;
      reply.type = MessageType::pre_vote_response;
      reply.to = m.from;
      reply.term = term_;
      reply.reject = true;
      send(std::move(reply));
    }
    return false;
  }
  return true;
}

void Raft::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::pre_vote;
  // §5.2: at most one vote per term, first come first served. A pre-vote for a future term
  // commits to nothing, so it may be granted freely.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) ||
                  (pre && m.term > term_);
  if (mutants::active(mutants::vote_twice) && role_ == Role::follower) can_vote = true;
  Message reply;
  reply.type = pre ? MessageType::pre_vote_response : MessageType::vote_response;
  reply.to = m.from;
  // §5.4.1: only for a candidate whose log is at least as up to date as ours.
  const bool up_to_date = log_.is_up_to_date(m.index, m.log_term) ||
                          mutants::active(mutants::skip_up_to_date);
  const bool guarded = !pre && !m.transfer && lease_guard();
  if (guarded) stats_.lease_guarded++;
  const bool chain_refused = refuses_for_chain(m);
  if (chain_refused) stats_.chain_votes_refused++;
  if (can_vote && up_to_date && !guarded && !chain_refused) {
    reply.term = m.term;
    if (!pre) {
      ANYA_ASSERT(m.term == term_);
      vote_ = m.from;
      reset_election_timer();
    }
  } else {
    reply.term = term_;
    reply.reject = true;
  }
  send(std::move(reply));
}

void Raft::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::append:
    case MessageType::heartbeat:
    case MessageType::snapshot:
      set_leader(m.from);
      if (!ANYA_FAULT(hooks_, skip_election_reset)) reset_election_timer();
      if (m.type == MessageType::append) {
        handle_append(m);
      } else if (m.type == MessageType::snapshot) {
        handle_snapshot(m);
      } else {
        handle_heartbeat(m);
      }
      break;
    case MessageType::timeout_now:
      // Leadership transfer: campaign at once, without PreVote, and past leader stickiness.
      // Only our own leader may ask: anyone else could use it to depose a healthy leader.
      if (m.from != leader_) {
        stats_.invalid_messages++;
        break;
      }
      campaign(CampaignKind::transfer);
      break;
    default:
      break;  // responses to a role we no longer hold
  }
}

void Raft::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::append:
    case MessageType::heartbeat:
    case MessageType::snapshot:
      // §5.2: a candidate that hears a leader of its term returns to follower.
      become_follower(term_, m.from);
      step_follower(m);
      break;
    case MessageType::pre_vote_response:
      if (!m.reject && m.term != term_ + 1) break;  // an answer to an older pre-campaign
      poll(m.from, m.type, !m.reject);
      break;
    case MessageType::vote_response:
      poll(m.from, m.type, !m.reject);
      break;
    default:
      break;
  }
}

void Raft::handle_append(const Message& m) {
  // A leader of term T only sends entries of terms 1..T, in non-decreasing term order and
  // after an entry of a term no higher; anything else would corrupt our log. (An entry of term
  // 0 could replace one of ours and let a later entry reuse an (index, term) we already held
  // with a different log before it: Log Matching would no longer hold for our own log.)
  Term previous = m.log_term;
  for (const Entry& e : m.entries) {
    if (e.term == 0 || e.term < previous || e.term > m.term) {
      stats_.invalid_messages++;
      return;
    }
    previous = e.term;
  }
  leader_commit_ = std::max(leader_commit_, m.commit);
  Message reply;
  reply.type = MessageType::append_response;
  reply.to = m.from;
  reply.term = term_;
  if (m.index < log_.committed()) {
    reply.index = log_.committed();  // already have all of it
    send(std::move(reply));
    return;
  }
  const Index last_before = log_.last_index();
  const Index config_before = membership_history_.back().first;
  if (std::optional<Index> last = log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
    const bool touched_config =
        config_before > m.index ||
        std::any_of(m.entries.begin(), m.entries.end(),
                    [](const Entry& e) { return e.type == EntryType::config_change; });
    if (touched_config || log_.last_index() < last_before) refresh_membership(m.index + 1);
    reply.index = *last;
    send(std::move(reply));
    return;
  }
  // §5.3 with fast back-off: hint at the last entry that could match, skipping whole terms.
  reply.reject = true;
  reply.index = m.index;
  if (ANYA_FAULT(hooks_, no_reject_hint)) {
    send(std::move(reply));  // hint 0: the leader falls back to probing from its match
    return;
  }
  reply.reject_hint =
      log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
  reply.reject_hint_term = log_.term_at(reply.reject_hint).value_or(0);
  send(std::move(reply));
}

void Raft::handle_snapshot(const Message& m) {
  // A leader of term T snapshots only committed entries of terms <= T.
  if (m.index == 0 || m.log_term == 0 || m.log_term > m.term) {
    stats_.invalid_messages++;
    return;
  }
  Message reply;
  reply.type = MessageType::append_response;
  reply.to = m.from;
  reply.term = term_;
  if (m.index <= log_.committed()) {
    // Older than what we have committed (a late duplicate, or a leader that thought us further
    // behind): installing it would move the state machine back. Say how far we are.
    stats_.snapshots_stale++;
    reply.index = log_.committed();
    send(std::move(reply));
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    // Our log holds the snapshot's last entry, hence (log matching) everything it covers: the
    // entries will be applied from the log; only the commit index moves.
    log_.commit_to(m.index);
    reply.index = m.index;
    send(std::move(reply));
    return;
  }
  Result<Snapshot> snapshot = decode_snapshot_envelope(m.payload);
  if (!snapshot || snapshot->meta.membership.voters.empty()) {
    // (A committed index always has a configuration with voters: installing one without any
    // would leave this node unable ever to elect or follow a leader again.)
    stats_.invalid_messages++;
    return;
  }
  snapshot->meta.index = m.index;
  snapshot->meta.term = m.log_term;
  log_.restore_snapshot(m.index, m.log_term);
  membership_history_.assign(1, {m.index, snapshot->meta.membership});
  reset_tracker();
  snapshot_ = *snapshot;
  pending_install_ = std::move(snapshot).value();
  stats_.snapshots_installed++;
  // Leaves only once the snapshot is durable (Ready::snapshot is persisted first).
  reply.index = m.index;
  send(std::move(reply));
}

void Raft::handle_heartbeat(const Message& m) {
  // The leader sends min(match, commit), which is within our matching prefix, and in `index`
  // its own commit index (how far we are behind).
  log_.commit_to(std::min(m.commit, log_.last_index()));
  leader_commit_ = std::max(leader_commit_, m.index);
  // The leader's latest word on the chain replaces the last, "no quorum view" included.
  heard_chain_quorum_ = m.chain_quorum_height;
  heard_chain_quorum_ms_ = now_ms_;
  Message reply;
  reply.type = MessageType::heartbeat_response;
  reply.to = m.from;
  reply.term = term_;
  reply.context = m.context;
  reply.index = log_.last_index();  // lets the leader see a log that lost acknowledged entries
  send(std::move(reply));
}

void Raft::step_leader(const Message& m) {
  if (!tracker_.has(m.from)) return;  // not a member
  const std::optional<ChainView> view_before = tracker_.at(m.from).chain_view;
  switch (m.type) {
    case MessageType::append_response: handle_append_response(m); break;
    case MessageType::heartbeat_response: handle_heartbeat_response(m); break;
    default: break;
  }
  // A voter moving ahead can leave this leader behind: hand over now, not at the next tick.
  if (role_ == Role::leader && tracker_.has(m.from) &&
      tracker_.at(m.from).chain_view != view_before) {
    maybe_transfer_for_gating();
  }
}

void Raft::handle_append_response(const Message& m) {
  Progress& pr = tracker_.at(m.from);
  pr.last_active_ms = now_ms_;
  heard_from(m.from, std::nullopt);
  pr.healthy = !m.unhealthy;
  pr.chain_view = m.chain_view;
  if (m.reject) {
    Index hint = m.reject_hint;
    if (m.reject_hint_term > 0) hint = log_.find_conflict_by_term(hint, m.reject_hint_term);
    if (pr.maybe_decrease_to(m.index, hint)) {
      if (pr.state == ProgressState::replicate) pr.become_probe();
      send_append(m.from, true);
    }
    return;
  }
  if (m.index > log_.last_index()) return;  // cannot acknowledge what we never had
  if (!pr.maybe_update(m.index)) return;
  pr.match_round = heartbeat_round_;
  if (pr.state == ProgressState::probe) {
    pr.become_replicate();
  } else if (pr.state == ProgressState::snapshot) {
    // Installed (or found further along than we thought): feed it from the log once the log
    // reaches back to it; otherwise the snapshot's own answer, or the timeout, moves it on.
    if (pr.match >= log_.snapshot_index()) pr.become_replicate();
  } else {
    pr.inflights.free_le(m.index);
  }
  if (maybe_commit()) {
    broadcast_append();
    maybe_step_down_if_removed();
    if (role_ != Role::leader) return;
  } else {
    while (send_append(m.from, false)) {
    }
  }
  if (m.from == transfer_target_ && pr.match == log_.last_index()) send_timeout_now(m.from);
}

void Raft::handle_heartbeat_response(const Message& m) {
  Progress& pr = tracker_.at(m.from);
  pr.last_active_ms = now_ms_;
  // The first answer to a round times the round trip (later ones of the same round do not).
  std::optional<std::uint64_t> rtt_ms;
  if (m.context > pr.acked_round && m.context <= heartbeat_round_) {
    const auto sent = std::lower_bound(
        round_sent_ms_.begin(), round_sent_ms_.end(), std::make_pair(m.context, std::uint64_t{0}));
    if (sent != round_sent_ms_.end() && sent->first == m.context) rtt_ms = now_ms_ - sent->second;
  }
  heard_from(m.from, rtt_ms);
  pr.healthy = !m.unhealthy;
  pr.chain_view = m.chain_view;
  pr.probe_sent = false;
  if (m.context > heartbeat_round_) {
    stats_.invalid_messages++;  // a round we never sent
    return;
  }
  pr.acked_round = std::max(pr.acked_round, m.context);
  if (m.context > pr.match_round && m.index < pr.match) {
    // Sent after the follower acknowledged `match`, yet its log is shorter: it lost entries
    // (a cut WAL tail, a data directory restored from a backup). Without this the leader
    // would keep sending from `match` and the follower keep refusing, for ever.
    stats_.followers_regressed++;
    regressed_followers_.push_back(m.from);
    pr.regress_to(m.index);
    send_append(m.from, true);
    return;
  }
  if (pr.state == ProgressState::replicate && pr.inflights.full()) pr.inflights.free_first();
  // A snapshot unanswered for an election timeout from a follower that answers heartbeats was
  // lost (or refused): probe again, which sends it again if still needed.
  if (pr.state == ProgressState::snapshot &&
      now_ms_ - pr.snapshot_sent_ms >= election_timeout_ms_) {
    pr.become_probe();
  }
  if (pr.match < log_.last_index()) send_append(m.from, true);
}

// ---- sending -----------------------------------------------------------------------------

void Raft::send(Message m) {
  ANYA_ASSERT(m.to != id_);
  ANYA_ASSERT(m.to != kNoNode);
  m.from = id_;
  m.cluster_id = cluster_id_;
  m.unhealthy = !healthy_;
  // The chain view rides on what the leader counts (responses) and on what voters judge
  // (vote requests); the leader's own messages carry the quorum height instead.
  if (m.type == MessageType::append_response || m.type == MessageType::heartbeat_response ||
      m.type == MessageType::pre_vote || m.type == MessageType::vote) {
    m.chain_view = chain_view_;
  }
  outbox_.push_back(std::move(m));
}

bool Raft::send_append(NodeId to, bool send_if_empty) {
  Progress& pr = tracker_.at(to);
  if (pr.is_paused()) return false;
  if (pr.state == ProgressState::replicate && ANYA_FAULT(hooks_, inflight_stall)) return false;
  const bool tiny = ANYA_FAULT(hooks_, tiny_append_batch);
  ANYA_ASSERT(pr.next >= 1);
  ANYA_ASSERT(pr.next <= log_.last_index() + 1);
  const Index prev = pr.next - 1;
  const std::optional<Term> prev_term = log_.term_at(prev);
  if (!prev_term) {
    ANYA_ASSERT(prev < log_.snapshot_index());  // compacted away: only a snapshot will do
    return send_snapshot(to);
  }
  std::vector<Entry> entries =
      log_.slice(pr.next, log_.last_index() + 1, tiny ? 0 : max_append_bytes_,
                 tiny ? 1 : Limits::max_entries_per_message);
  if (entries.empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::append;
  m.to = to;
  m.term = term_;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  if (!entries.empty() && pr.state == ProgressState::replicate) {
    const Index last = entries.back().index;
    pr.optimistic_update(last);
    pr.inflights.add(last);
  } else if (pr.state == ProgressState::probe) {
    pr.probe_sent = true;
  }
  m.entries = std::move(entries);
  send(std::move(m));
  return true;
}

bool Raft::send_snapshot(NodeId to) {
  Progress& pr = tracker_.at(to);
  ANYA_ASSERT(snapshot_.has_value());  // the log is compacted only up to a snapshot
  const Snapshot& s = *snapshot_;
  ANYA_ASSERT(s.meta.index >= log_.snapshot_index());
  ANYA_ASSERT(s.meta.index > pr.match);
  if (snapshot_envelope_size(s.meta.membership, s.data.size()) >
      Limits::max_snapshot_payload_bytes) {
    stats_.snapshots_too_large++;  // no chunking: the follower stays in probe, retried later
    return false;
  }
  Message m;
  m.type = MessageType::snapshot;
  m.to = to;
  m.term = term_;
  m.index = s.meta.index;
  m.log_term = s.meta.term;
  m.commit = log_.committed();
  m.payload = encode_snapshot_envelope(s.meta.membership, s.data);
  pr.become_snapshot(s.meta.index, now_ms_);
  stats_.snapshots_sent++;
  send(std::move(m));
  return true;
}

Membership Raft::membership_at(Index index) const {
  for (auto it = membership_history_.rbegin(); it != membership_history_.rend(); ++it) {
    if (it->first <= index) return it->second;
  }
  ANYA_ASSERT(false);  // [0] is at or below every index the log still holds
  return {};
}

const Snapshot& Raft::record_snapshot(Index index, std::string data) {
  ANYA_ASSERT(index <= log_.applied());
  ANYA_ASSERT(index >= log_.snapshot_index());
  ANYA_ASSERT(!snapshot_ || index > snapshot_->meta.index);
  const std::optional<Term> term = log_.term_at(index);
  ANYA_ASSERT(term.has_value());
  snapshot_ = Snapshot{SnapshotMeta{index, *term, membership_at(index)}, std::move(data)};
  return *snapshot_;
}

void Raft::compact(Index index) {
  ANYA_ASSERT(snapshot_.has_value());
  ANYA_ASSERT(index <= snapshot_->meta.index);
  if (index <= log_.snapshot_index()) return;
  log_.compact(index);
  // Keep the membership in effect at the compaction point as the new base.
  while (membership_history_.size() >= 2 && membership_history_[1].first <= index) {
    membership_history_.erase(membership_history_.begin());
  }
  ANYA_ASSERT(membership_history_.front().first <= index);
}

void Raft::send_heartbeat(NodeId to, std::optional<std::uint64_t> chain_quorum_height) {
  const Progress& pr = tracker_.at(to);
  Message m;
  m.type = MessageType::heartbeat;
  m.to = to;
  m.term = term_;
  m.commit = std::min(pr.match, log_.committed());
  m.index = log_.committed();
  m.context = heartbeat_round_;
  m.chain_quorum_height = chain_quorum_height;
  send(std::move(m));
}

void Raft::broadcast_append() {
  for (const auto& [id, pr] : tracker_.all()) {
    if (id != id_) send_append(id, true);
  }
}

void Raft::broadcast_heartbeat() {
  heartbeat_round_++;
  round_sent_ms_.emplace_back(heartbeat_round_, now_ms_);
  if (round_sent_ms_.size() > kMaxRememberedRounds) round_sent_ms_.pop_front();
  const std::optional<std::uint64_t> quorum = chain_quorum_height();
  for (const auto& [id, pr] : tracker_.all()) {
    if (id != id_) send_heartbeat(id, quorum);
  }
}

void Raft::append_entries(std::vector<Entry> entries) {
  ANYA_ASSERT(role_ == Role::leader);
  Index index = log_.last_index();
  for (Entry& e : entries) {
    e.term = term_;
    e.index = ++index;
  }
  const Index first = log_.last_index() + 1;
  const bool changes_membership = std::any_of(entries.begin(), entries.end(), [](const Entry& e) {
    return e.type == EntryType::config_change;
  });
  log_.append(std::move(entries));
  if (changes_membership) refresh_membership(first);
  // The leader's own match advances only once the entries are durable (see advance()).
  if (tracker_.has(id_)) tracker_.at(id_).next = log_.last_index() + 1;
}

bool Raft::maybe_commit() {
  if (mutants::active(mutants::commit_old_term)) {
    const Index index = std::min(tracker_.committed(), log_.last_index());
    if (index <= log_.committed()) return false;
    log_.commit_to(index);
    return true;
  }
  // §5.4.2: count replicas only for an entry of the current term.
  return log_.maybe_commit(tracker_.committed(), term_);
}

// ---- output batches ----------------------------------------------------------------------

bool Raft::has_ready() const {
  return !outbox_.empty() || log_.has_unstable() || hard_state() != persisted_hard_state_ ||
         log_.has_next_committed() || pending_install_.has_value();
}

Ready Raft::ready() {
  ANYA_ASSERT(!ready_outstanding_);  // one batch at a time: advance() before the next
  Ready rd;
  rd.snapshot = std::move(pending_install_);
  pending_install_.reset();
  if (hard_state() != persisted_hard_state_) rd.hard_state = hard_state();
  rd.entries = log_.unstable_entries();
  rd.messages = std::move(outbox_);
  outbox_.clear();
  rd.committed_entries = log_.next_committed_entries(max_apply_batch_);
  ready_outstanding_ = true;
  return rd;
}

void Raft::advance(const Ready& rd) {
  ANYA_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  if (rd.hard_state) {
    ANYA_ASSERT(rd.hard_state->term >= persisted_hard_state_.term);
    persisted_hard_state_ = *rd.hard_state;
  }
  if (!rd.entries.empty()) log_.stable_to(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) log_.applied_to(rd.committed_entries.back().index);
  if (role_ == Role::leader && tracker_.has(id_) &&
      tracker_.at(id_).maybe_update(log_.stable_index()) && maybe_commit()) {
    broadcast_append();
  }
  maybe_step_down_if_removed();
  log_.check_invariants();
}

}  // namespace anya::engine
