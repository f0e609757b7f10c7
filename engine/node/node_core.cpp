#include "engine/node/node_core.hpp"

#include <algorithm>

#include "engine/base/mutants.hpp"
#include "engine/raft/membership.hpp"

namespace anya::engine {

Result<std::unique_ptr<NodeCore>> NodeCore::open(const RaftConfig& raft, NodeOptions options,
                                                 StoragePort& storage, NetworkPort& network,
                                                 ClockPort& clock, ConfigOptions config,
                                                 ApplyObserver* observer) {
  if (options.max_write_batch == 0 || options.max_pending_writes == 0 ||
      options.max_pending_reads == 0) {
    return Status(Errc::invalid_argument, "node options: batch and queue limits must be positive");
  }
  std::unique_ptr<NodeCore> core(new NodeCore(options, observer, clock));
  Result<std::unique_ptr<Host>> host =
      Host::open(raft, storage, network, *core, clock, config);
  if (!host) return host.status();
  core->host_ = std::move(host).value();
  return core;
}

NodeCore::NodeCore(NodeOptions options, ApplyObserver* observer, ClockPort& clock)
    : options_(options), observer_(observer), clock_(clock), kv_(options.kv_limits) {}

NodeCore::~NodeCore() = default;

// ---- the state machine -------------------------------------------------------------------

void NodeCore::apply(const Entry& entry) {
  ANYA_ASSERT(entry.type == EntryType::normal);
  KvResult result = kv_.apply(entry.index, entry.data);
  if (observer_ != nullptr) observer_->on_applied(entry, result, kv_);
  if (waiters_.count(entry.index) != 0) results_[entry.index] = std::move(result);
}

std::string NodeCore::snapshot() { return kv_.snapshot(); }

Status NodeCore::restore(std::string_view data) {
  Result<KvStore> restored = KvStore::restore(data, kv_.limits());
  if (!restored) return restored.status();
  kv_ = std::move(restored).value();
  // The results of writes the snapshot covers are not known here (settle_writes).
  results_.clear();
  // Null while Host::open runs: a restart from the disk; otherwise installed from a leader.
  if (observer_ != nullptr) observer_->on_restored(kv_, host_ != nullptr);
  return {};
}

Status NodeCore::check_snapshot(std::string_view data) {
  return KvStore::restore(data, kv_.limits()).status();
}

// ---- inputs ------------------------------------------------------------------------------

Status NodeCore::tick() {
  if (host_->failed()) return settle(host_->failure());
  Status s = host_->tick();
  if (s) {
    drive_failover(now());
    try_promotions();
  }
  expire(now());
  return settle(std::move(s));
}

Status NodeCore::receive(const Message& message) { return settle(host_->receive(message)); }

Status NodeCore::peer_gone(NodeId peer) {
  const Raft& raft = host_->raft();
  if (host_->failed() || raft.is_leader() || peer != raft.leader()) return settle({});
  Status s = host_->leader_unreachable();
  if (!s || options_.failover_step_ms == 0 || !raft.promotable()) return settle(std::move(s));
  // Voters go one after another by rank among the voters left, so two followers that saw the
  // same death do not split the vote; later ones retry only while no leader is known.
  std::uint64_t rank = 0;
  for (NodeId v : raft.membership().voters) {
    if (v != peer && v < raft.id()) rank++;
  }
  failover_from_ = peer;
  failover_due_ms_ = now() + rank * options_.failover_step_ms;
  failover_attempts_ = 0;
  events_.push_back({NodeEvent::Kind::fast_failover, peer});
  drive_failover(now());
  return settle(std::move(s));
}

void NodeCore::drive_failover(std::uint64_t now_ms) {
  if (failover_from_ == kNoNode) return;
  const Raft& raft = host_->raft();
  const bool someone_leads = raft.leader() != kNoNode && raft.leader() != failover_from_;
  if (raft.is_leader() || someone_leads || failover_attempts_ >= kMaxFailoverAttempts) {
    failover_from_ = kNoNode;
    return;
  }
  if (now_ms < failover_due_ms_) return;
  // A first attempt while the gone leader is still the one we know; retries only while none is.
  if (failover_attempts_ > 0 && raft.leader() != kNoNode) return;
  failover_attempts_++;
  failover_due_ms_ = now_ms + options_.failover_retry_ms;
  (void)host_->campaign_now();  // a failure is fail-stop and reported by settle()
}

namespace {
// What a client is told about its applied write.
Status write_status(const KvResult& kv) {
  switch (kv.outcome) {
    case KvOutcome::ok: return Status::ok();
    case KvOutcome::conflict:
      if (!kv.message.empty()) return Status(Errc::conflict, kv.message);
      return Status(Errc::conflict, "revision mismatch: the key's current revision is " +
                                        std::to_string(kv.revision));
    case KvOutcome::not_found:
      return Status(Errc::not_found, kv.message.empty() ? "key not found" : kv.message);
    case KvOutcome::invalid: return Status(Errc::invalid_argument, kv.message);
    case KvOutcome::expired: return Status(Errc::conflict, "session expired: " + kv.message);
  }
  return Status(Errc::invalid_argument, "unknown outcome");
}
}  // namespace

void NodeCore::submit_write(Ticket ticket, Command command) {
  if (Status s = check_command(command); !s) return reply_error(ticket, std::move(s));
  if (host_->failed()) return reply_error(ticket, host_->failure());
  if (!host_->raft().is_leader()) return reply_not_leader(ticket);
  if (pending_writes() >= options_.max_pending_writes) {
    return reply_error(ticket, Status(Errc::busy, "too many writes waiting to commit; slow down"));
  }
  queued_writes_.push_back({ticket, encode_command(command)});
}

void NodeCore::submit_read(Ticket ticket, std::string key, ReadMode mode) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return reply_error(ticket, Status(Errc::invalid_argument,
                                      "key: must be 1 to " + std::to_string(kMaxKeyBytes) +
                                          " bytes"));
  }
  if (host_->failed()) return reply_error(ticket, host_->failure());
  const Raft& raft = host_->raft();
  const std::uint64_t now_ms = now();
  if (mode == ReadMode::serializable) return serve_read(ticket, key, /*stale_possible=*/true);
  if (!raft.is_leader()) return reply_not_leader(ticket);
  if (mutants::active(mutants::stale_read) && raft.has_quorum() && raft.committed_in_term() &&
      raft.log().applied() >= raft.log().committed()) {
    return serve_read(ticket, key, false);
  }
  if (raft.transfer_target() != kNoNode || raft.lease_revoked()) {
    return reply_not_leader(ticket, transfer_message());
  }
  if (reads_.size() >= options_.max_pending_reads) {
    return reply_error(ticket, Status(Errc::busy, "too many reads waiting; slow down"));
  }
  PendingRead r{ticket, std::move(key), raft.term(), 0, 0, now_ms + options_.read_timeout_ms};
  if (mode == ReadMode::lease && raft.committed_in_term() && raft.lease_until_ms() > now_ms) {
    // No other leader can exist before the lease ends, so the commit index now is current.
    r.read_index = raft.log().committed();
    if (raft.log().applied() >= r.read_index) return serve_read(ticket, r.key, false);
    r.round = raft.confirmed_round();  // already confirmed: wait for the apply only
    ANYA_ASSERT(r.round > 0);
  }
  reads_.push_back(std::move(r));
}

Status NodeCore::flush() {
  if (host_->failed()) return settle(host_->failure());
  // The clock first: a leader that slept through its CheckQuorum deadline steps down here,
  // before it proposes or asks anything.
  Status s = host_->tick();
  const Raft& raft = host_->raft();
  std::vector<QueuedWrite> writes = std::move(queued_writes_);
  queued_writes_.clear();
  for (std::size_t at = 0; s && at < writes.size(); at += options_.max_write_batch) {
    const std::size_t end = std::min(writes.size(), at + options_.max_write_batch);
    if (!raft.is_leader()) {
      for (std::size_t i = at; i < end; i++) reply_not_leader(writes[i].ticket);
      continue;
    }
    std::vector<Ticket> tickets;
    std::vector<std::string> data;
    for (std::size_t i = at; i < end; i++) {
      tickets.push_back(writes[i].ticket);
      data.push_back(std::move(writes[i].command));
    }
    // Waiters first: a single-voter cluster applies the batch inside propose_batch.
    const Index first = raft.log().last_index() + 1;
    expect(tickets, true);
    Result<Index> proposed = host_->propose_batch(std::move(data));
    if (!proposed) {
      unexpect(first, tickets.size());
      for (Ticket t : tickets) {
        if (proposed.status().code() == Errc::not_leader) {
          reply_not_leader(t);
        } else {
          reply_error(t, proposed.status());
        }
      }
      if (host_->failed()) s = host_->failure();
      continue;
    }
    ANYA_ASSERT(*proposed == first);
  }
  // One heartbeat round for every read that arrived since the last one.
  const bool unsent = std::any_of(reads_.begin(), reads_.end(),
                                  [](const PendingRead& r) { return r.round == 0; });
  if (s && unsent && raft.is_leader()) {
    Result<std::uint64_t> round = host_->request_read_round();
    if (!round) {
      s = round.status();
    } else {
      for (PendingRead& r : reads_) {
        if (r.round == 0) r.round = *round;
      }
    }
  }
  return settle(std::move(s));
}

void NodeCore::submit_member_add(Ticket ticket, NodeId id, std::string address, bool learner) {
  // On the leader only: a follower's membership may lag, and it answers not_leader anyway.
  if (host_->raft().is_leader()) {
    if (Status s = check_new_member(id, address); !s) return reply_error(ticket, std::move(s));
  }
  submit_conf_change(ticket, ConfChange{ConfChangeOp::add_learner, id, std::move(address)},
                     learner ? kNoNode : id);
}

Status NodeCore::check_new_member(NodeId id, const std::string& address) const {
  if (id == kNoNode || id > kMaxNodeId) {
    return {Errc::invalid_argument, "id: " + std::to_string(id) + " is outside 1.." +
                                        std::to_string(kMaxNodeId)};
  }
  const Membership& m = host_->raft().membership();
  if (m.contains(id)) {
    return {Errc::conflict, "id: node " + std::to_string(id) + " is already a member"};
  }
  for (const auto& [member, member_address] : m.addresses) {
    if (member_address == address) {
      return {Errc::conflict, "address: " + address + " is already the address of node " +
                                  std::to_string(member)};
    }
  }
  return Status::ok();
}

void NodeCore::submit_member_remove(Ticket ticket, NodeId id) {
  submit_conf_change(ticket, ConfChange{ConfChangeOp::remove, id, ""}, kNoNode);
}

void NodeCore::submit_conf_change(Ticket ticket, const ConfChange& change, NodeId promote) {
  if (host_->failed()) return reply_error(ticket, host_->failure());
  if (!host_->raft().is_leader()) return reply_not_leader(ticket);
  const Index first = host_->raft().log().last_index() + 1;
  expect({ticket}, false, promote);
  Result<Index> index = host_->propose_conf_change(change);
  if (!index) {
    unexpect(first, 1);
    reply_error(ticket, index.status());
  }
  (void)settle({});
}

Result<NodeId> NodeCore::transfer_leadership(std::optional<NodeId> to) {
  const Raft& raft = host_->raft();
  if (!raft.is_leader()) {
    return Status(Errc::not_leader, "only the leader can transfer leadership");
  }
  NodeId target = to.value_or(kNoNode);
  if (target == kNoNode) {
    Index best = 0;
    for (const MemberStatus& m : raft.members()) {
      // Raft refuses a target behind the Bitcoin chain; never pick one.
      if (m.id == raft.id() || !m.voter || !m.healthy || !m.reachable || m.chain_behind) {
        continue;
      }
      if (target == kNoNode || m.match > best) {
        target = m.id;
        best = m.match;
      }
    }
    if (target == kNoNode) {
      return Status(Errc::busy, "no other healthy, reachable voter that is not behind the "
                                "chain to hand leadership to");
    }
  }
  Status s = host_->transfer_leadership(target);
  if (Status settled = settle(s); !settled) return settled;
  return target;
}

LeaseStatus NodeCore::lease() {
  (void)tick();  // a paused leader that woke learns the time before it claims anything
  const Raft& raft = host_->raft();
  LeaseStatus out;
  out.holder = raft.leader();
  out.fencing_token = raft.leader() == kNoNode ? 0 : raft.term();
  if (!raft.is_leader() || host_->failed()) return out;
  const std::uint64_t until = raft.lease_until_ms();
  const std::uint64_t now_ms = now();
  if (until > now_ms) {
    out.valid = true;
    out.valid_until_ms = until;
    out.remaining_ms = until - now_ms;
  }
  return out;
}

std::vector<ClientReply> NodeCore::take_replies() {
  std::vector<ClientReply> out = std::move(replies_);
  replies_.clear();
  return out;
}

std::vector<NodeEvent> NodeCore::take_events() {
  std::vector<NodeEvent> out = std::move(events_);
  events_.clear();
  return out;
}

bool NodeCore::ready() const {
  const Raft& raft = host_->raft();
  if (host_->failed() || raft.leader() == kNoNode || !raft.has_quorum()) return false;
  return raft.log().applied() >= raft.log().committed() &&
         raft.log().applied() >= raft.leader_commit();
}

std::uint64_t NodeCore::next_deadline_ms() const {
  std::uint64_t next = host_->raft().next_deadline_ms();
  if (failover_from_ != kNoNode) next = std::min(next, failover_due_ms_);
  // Deadlines are set at arrival, so the oldest request has the earliest.
  if (!waiters_.empty()) next = std::min(next, waiters_.begin()->second.deadline_ms);
  if (!reads_.empty()) next = std::min(next, reads_.front().deadline_ms);
  return next;
}

// ---- settling ----------------------------------------------------------------------------

Status NodeCore::settle(Status status) {
  if (host_->failed()) {
    // Fail-stop: nothing more will apply here.
    for (auto& [index, w] : waiters_) reply_error(w.ticket, host_->failure());
    waiters_.clear();
    results_.clear();
    for (const PendingRead& r : reads_) reply_error(r.ticket, host_->failure());
    reads_.clear();
    for (const QueuedWrite& w : queued_writes_) reply_error(w.ticket, host_->failure());
    queued_writes_.clear();
    return host_->failure();
  }
  settle_writes();
  settle_reads();
  for (NodeId f : host_->take_regressed_followers()) {
    events_.push_back({NodeEvent::Kind::follower_lost_entries, f});
  }
  return status;
}

void NodeCore::settle_writes() {
  const RaftLog& log = host_->raft().log();
  while (!waiters_.empty() && waiters_.begin()->first <= log.applied()) {
    const Index index = waiters_.begin()->first;
    const Waiter w = waiters_.begin()->second;
    waiters_.erase(waiters_.begin());
    auto result = results_.find(index);
    const std::optional<Term> term = log.term_at(index);
    ClientReply r;
    r.ticket = w.ticket;
    if (term && *term != w.term) {
      r.status = Status(Errc::not_leader, "leadership changed before the write committed; it "
                                          "did not take effect");
      r.leader = host_->raft().leader();
    } else if (!term || (w.kv && result == results_.end())) {
      // Covered by a snapshot installed from a new leader before this node saw its fate.
      r.status = Status(Errc::busy, "the outcome of the write is unknown (the log was replaced "
                                    "by the leader's snapshot); read the key to check");
      r.leader = host_->raft().leader();
    } else if (!w.kv) {
      r.revision = index;
      if (w.promote != kNoNode) pending_promotions_.insert(w.promote);
    } else {
      const KvResult& kv = result->second;
      r.revision = kv.revision;
      r.replayed = kv.replayed;
      r.status = write_status(kv);
    }
    if (result != results_.end()) results_.erase(result);
    replies_.push_back(std::move(r));
  }
}

void NodeCore::settle_reads() {
  if (reads_.empty()) return;
  const Raft& raft = host_->raft();
  const bool transferring = raft.transfer_target() != kNoNode || raft.lease_revoked();
  std::vector<PendingRead> waiting;
  for (PendingRead& r : reads_) {
    if (!raft.is_leader() || raft.term() != r.term) {
      reply_not_leader(r.ticket, "leadership changed before the read was confirmed");
      continue;
    }
    if (transferring) {
      reply_not_leader(r.ticket, transfer_message());
      continue;
    }
    if (r.read_index == 0 && raft.committed_in_term()) r.read_index = raft.log().committed();
    const bool confirmed = r.round != 0 && raft.confirmed_round() >= r.round;
    if (confirmed && r.read_index != 0 && raft.log().applied() >= r.read_index) {
      serve_read(r.ticket, r.key, false);
      continue;
    }
    waiting.push_back(std::move(r));
  }
  reads_ = std::move(waiting);
}

void NodeCore::expire(std::uint64_t now_ms) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    reply_error(it->second.ticket,
                Status(Errc::busy, "not applied within " +
                                       std::to_string(options_.write_timeout_ms) +
                                       " ms; it may still commit: check before retrying"));
    results_.erase(it->first);
    it = waiters_.erase(it);
  }
  std::vector<PendingRead> waiting;
  for (PendingRead& r : reads_) {
    if (r.deadline_ms > now_ms) {
      waiting.push_back(std::move(r));
    } else {
      reply_error(r.ticket, Status(Errc::busy, "the leader could not confirm it still leads "
                                               "within " +
                                                   std::to_string(options_.read_timeout_ms) +
                                                   " ms; retry"));
    }
  }
  reads_ = std::move(waiting);
}

void NodeCore::try_promotions() {
  if (pending_promotions_.empty()) return;
  if (!host_->raft().is_leader()) {
    pending_promotions_.clear();  // the next leader's operator asks again
    return;
  }
  for (auto it = pending_promotions_.begin(); it != pending_promotions_.end();) {
    const NodeId id = *it;
    if (host_->raft().membership().learners.count(id) == 0) {
      it = pending_promotions_.erase(it);
      continue;
    }
    Result<Index> index = host_->propose_conf_change(ConfChange{ConfChangeOp::promote, id, ""});
    if (index) {
      events_.push_back({NodeEvent::Kind::promoted, id});
      it = pending_promotions_.erase(it);
    } else {
      ++it;  // not caught up yet, or another change is in flight: try on a later tick
    }
  }
}

void NodeCore::expect(const std::vector<Ticket>& tickets, bool kv, NodeId promote) {
  const Raft& raft = host_->raft();
  ANYA_ASSERT(raft.is_leader());
  Index index = raft.log().last_index();
  for (Ticket t : tickets) {
    auto [it, fresh] = waiters_.try_emplace(++index, Waiter{t, raft.term(),
                                                            now() + options_.write_timeout_ms,
                                                            kv, promote});
    if (fresh) continue;
    // A waiter from an earlier leadership of this node, whose entry a later leader's log
    // replaced: this node now leads without it, so (leader completeness) it never committed.
    ANYA_ASSERT(it->second.term < raft.term());
    ClientReply lost;
    lost.ticket = it->second.ticket;
    lost.status = Status(Errc::not_leader, "leadership changed before the write committed; "
                                           "it did not take effect");
    replies_.push_back(std::move(lost));
    results_.erase(index);
    it->second = Waiter{t, raft.term(), now() + options_.write_timeout_ms, kv, promote};
  }
}

void NodeCore::unexpect(Index first, std::size_t count) {
  for (std::size_t i = 0; i < count; i++) {
    ANYA_ASSERT(waiters_.erase(first + i) == 1);
  }
}

void NodeCore::reply_error(Ticket ticket, Status status) {
  ANYA_ASSERT(!status.is_ok());
  ClientReply r;
  r.ticket = ticket;
  r.status = std::move(status);
  replies_.push_back(std::move(r));
}

void NodeCore::reply_not_leader(Ticket ticket, std::string why) {
  const Raft& raft = host_->raft();
  ClientReply r;
  r.ticket = ticket;
  r.leader = raft.transfer_target() != kNoNode ? raft.transfer_target() : raft.leader();
  if (r.leader == raft.id()) r.leader = kNoNode;
  if (why.empty()) {
    why = r.leader == kNoNode ? "this node is not the leader and knows no leader yet; retry"
                              : "this node is not the leader; the leader is node " +
                                    std::to_string(r.leader);
  }
  r.status = Status(Errc::not_leader, std::move(why));
  replies_.push_back(std::move(r));
}

std::string NodeCore::transfer_message() const {
  const NodeId target = host_->raft().transfer_target();
  if (target == kNoNode) {
    return "this leader handed leadership away in this term and answers no more reads; retry";
  }
  return "leadership is being handed to node " + std::to_string(target) + "; retry there";
}

void NodeCore::serve_read(Ticket ticket, const std::string& key, bool stale_possible) {
  ClientReply r;
  r.ticket = ticket;
  r.revision = host_->raft().log().applied();
  r.stale_possible = stale_possible;
  if (const KeyValue* kv = kv_.get(key)) {
    r.value = *kv;
  } else {
    r.status = Status(Errc::not_found, "key not found: " + key);
  }
  replies_.push_back(std::move(r));
}

}  // namespace anya::engine
