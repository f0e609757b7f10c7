// The simulator's KV clients and the checks over what they saw: linearizability of every key's
// history, lease exclusivity in true time, and a fenced resource.
//
// Each client runs one operation at a time against the node it believes leads: get (mostly
// linearizable, lease reads when the run keeps clocks within the lease's bound), put, compare-
// and-set against the revision it last saw, or delete, on a few shared keys. A request reaches
// the node at once unless the node is stopped (paused): then it waits there and is handled
// when the process wakes, before anything else, which is how a paused leader's queued reads
// once came to be answered stale. Replies come back through NodeCore's tickets. A read not
// answered within kv_timeout_ms is dropped. Every write goes in the client's session (one seq
// per write), which a client without one opens first (records_workload.hpp); an attempt that
// times out, fails or is refused with not_leader is retried with the same (client id, seq), up
// to kMaxSessionAttempts, so the store applies it at most once; a write given up after an
// unknown attempt stays in the history with an unknown outcome (it may still take effect).
#include <algorithm>

#include "engine/kv/kv.hpp"
#include "sim/records_workload.hpp"
#include "sim/sim_node.hpp"
#include "sim/simulation.hpp"

namespace anya::sim {

using engine::NodeId;

namespace {
constexpr std::uint64_t kMs = 1000;
}  // namespace

bool Simulation::lease_reads_allowed() const {
  // A lease read is only as good as the clocks: no forward jumps, drift within the bound.
  if (options_.faults.clock_jump_every_ms != 0) return false;
  for (const ScriptStep& step : options_.script) {
    if (step.action == ScriptAction::clock_jump_all) return false;
  }
  return options_.clocks.max_drift_ppm <= options_.lease_drift_bound_ppm;
}

void Simulation::client_step(std::uint32_t c) {
  ANYA_ASSERT(c < clients_.size());
  KvClient& client = clients_[c];
  if (done_ || client.in_flight) return;
  if (client.busy) return client_attempt(c);  // a retry of its current write
  const std::string key = "k" + std::to_string(rng_.below(options_.kv_keys));
  KvOp op;
  op.key = key;
  op.client = c;
  op.invoke_us = now_us_;
  const std::uint64_t pick = rng_.below(100);
  const auto seen = client.seen_revision.find(key);
  const engine::Index known = seen == client.seen_revision.end() ? 0 : seen->second;
  if (pick < 45) {
    op.kind = KvOp::Kind::get;
  } else if (pick < 70) {
    op.kind = KvOp::Kind::put;
  } else if (pick < 88) {
    op.kind = KvOp::Kind::cas;
    op.expected = known;
  } else {
    op.kind = KvOp::Kind::del;
    op.expected = rng_.chance(1, 2) ? known : 0;
  }
  if (op.kind == KvOp::Kind::put || op.kind == KvOp::Kind::cas) {
    op.value = "c" + std::to_string(c) + "-" + std::to_string(client.seq + 1);
  }
  client.seq++;
  client.busy = true;
  client.attempt = 0;
  client.maybe_applied = false;
  client.op = history_.size();
  if (op.kind != KvOp::Kind::get) {
    client.session.seq++;
    result_.stats.records.session_writes++;
    // No session (never opened, or expired): open one first; this write becomes its seq 1.
    client.session.opening = client.session.id == 0;
    ANYA_ASSERT(!client.session.opening || client.session.seq == 1);
  }
  history_.push_back(std::move(op));
  history_dropped_.push_back(false);
  client_attempt(c);
}

void Simulation::client_attempt(std::uint32_t c) {
  KvClient& client = clients_.at(c);
  ANYA_ASSERT(client.busy && !client.in_flight);
  const NodeId target = client.target;
  if (target < 1 || target > max_id() || !up(target)) {
    // Its port refuses the connection: nothing was asked; try another node shortly.
    client.target = static_cast<NodeId>(rng_.between(1, max_id()));
    schedule(now_us_ + 5 * kMs, Event{EventKind::client, 0, c, {}});
    return;
  }
  client.attempt++;
  client.in_flight = true;
  if (client.attempt > 1 && !client.session.opening) result_.stats.records.session_retries++;
  const Call call{c, client.seq, next_ticket_++, client.attempt, false};
  schedule(now_us_ + options_.kv_timeout_ms * kMs,
           Event{EventKind::client_timeout, 0, attempt_param(c, call.attempt, call.seq), {}});
  if (paused(target)) {
    result_.stats.kv_calls_while_paused++;
    inbox_[target].push_back({call, history_.at(client.op)});
    return;
  }
  submit_call(target, call);
  (void)nodes_.at(target)->core->flush();
  after_node_event(target);
}

void Simulation::submit_call(NodeId id, const Call& call) {
  if (call.utxo) return submit_utxo_call(id, call);
  Node& n = *nodes_.at(id);
  ANYA_ASSERT(n.core != nullptr);
  const KvClient& client = clients_.at(call.client);
  // The client gave up on this attempt meanwhile.
  if (client.seq != call.seq || client.attempt != call.attempt || !client.in_flight) return;
  const KvOp& op = history_.at(client.op);
  calls_[id][call.ticket] = call;
  if (op.kind == KvOp::Kind::get) {
    const bool lease = lease_reads_allowed() && (call.seq % 3 == 0);
    if (lease) result_.stats.kv_lease_reads++;
    n.core->submit_read(call.ticket, op.key,
                        lease ? engine::ReadMode::lease : engine::ReadMode::linearizable);
    return;
  }
  // Stamped with this node's clock, as the admin API stamps a session.
  if (client.session.opening) {
    n.core->submit_write(call.ticket, engine::Command(engine::SessionOpen{n.now_ms()}));
    return;
  }
  engine::Command command = kv_write_command(call.client);
  command.session->now_ms = n.now_ms();
  n.core->submit_write(call.ticket, std::move(command));
}

engine::Command Simulation::kv_write_command(std::uint32_t c) const {
  const KvClient& client = clients_.at(c);
  const KvOp& op = history_.at(client.op);
  engine::Command command;
  switch (op.kind) {
    case KvOp::Kind::get: ANYA_ASSERT(false); break;  // reads carry no session
    case KvOp::Kind::put: command = engine::KvCommand::put(op.key, op.value); break;
    case KvOp::Kind::cas: command = engine::KvCommand::cas(op.key, op.expected, op.value); break;
    case KvOp::Kind::del:
      command = engine::KvCommand::del(
          op.key, op.expected == 0 ? std::nullopt : std::optional(op.expected));
      break;
  }
  ANYA_ASSERT(client.session.id != 0 && !client.session.opening);
  command.session = engine::ClientSession{client.session.id, client.session.seq, 0};
  return command;
}

void Simulation::client_reply(NodeId id, const Call& call, const engine::ClientReply& r) {
  const std::uint32_t c = call.client;
  KvClient& client = clients_.at(c);
  // An attempt it gave up on: whatever it says, the client has moved on.
  if (client.seq != call.seq || client.attempt != call.attempt || !client.in_flight) return;
  client.in_flight = false;
  if (client.session.opening) return client_opened(id, c, r);
  KvOp& op = history_.at(client.op);
  const bool read = op.kind == KvOp::Kind::get;
  if (!read && session_expired(r.status)) {
    // The store no longer holds the session, so whether this request applied is as unknown as
    // after a timeout. The next write opens a new session.
    result_.stats.records.session_expired++;
    result_.stats.kv_unknown++;
    client.session = SessionState{};
    return client_done(c, 10);
  }
  switch (r.status.code()) {
    case Errc::ok:
    case Errc::not_found:
    case Errc::conflict:
      op.complete_us = now_us_;
      op.outcome = r.status.code() == Errc::ok          ? KvOp::Outcome::ok
                   : r.status.code() == Errc::not_found ? KvOp::Outcome::not_found
                                                        : KvOp::Outcome::conflict;
      if (read) check_not_cut_off(id, "answered a read");
      if (read && r.value) {
        op.value = r.value->value;
        op.revision = r.value->mod_revision;
      } else if (!read) {
        op.revision = r.revision;
        result_.stats.records.session_replays += r.replayed;
        if (op.outcome == KvOp::Outcome::ok) {
          records_acknowledged(id, kv_write_command(c), r.revision);
        }
      }
      if (op.outcome == KvOp::Outcome::not_found) op.revision = 0;
      if (op.kind == KvOp::Kind::del && op.outcome == KvOp::Outcome::ok) {
        client.seen_revision.erase(op.key);
      } else {
        client.seen_revision[op.key] = op.revision;
      }
      result_.stats.kv_ops++;
      result_.stats.kv_reads += read;
      return client_done(c, rng_.between(1, 10));
    case Errc::not_leader:
      // This attempt definitely did not happen (refused before proposing, or another leader's
      // entry won its index). Follow the hint, as a real client does.
      client.target = r.leader != engine::kNoNode ? r.leader
                                                  : static_cast<NodeId>(rng_.between(1, max_id()));
      // An earlier attempt of a write may still have applied: the same (client, seq) again.
      if (!read) return client_retry(c, not_leader_retry_ms(r));
      history_dropped_.at(client.op) = true;
      result_.stats.kv_refused++;
      return client_done(c, 2);
    default:
      // busy (timed out waiting, outcome unknown) or the node failed: a read tells nothing, a
      // write may still take effect.
      client.target = static_cast<NodeId>(rng_.between(1, max_id()));
      if (!read) {
        client.maybe_applied = true;
        return client_retry(c, 10);
      }
      history_dropped_.at(client.op) = true;
      return client_done(c, 10);
  }
}

void Simulation::client_opened(NodeId id, std::uint32_t c, const engine::ClientReply& r) {
  KvClient& client = clients_.at(c);
  ANYA_ASSERT(client.busy && client.session.opening);
  switch (r.status.code()) {
    case Errc::ok:
      // The session's id is the index of the open's entry. The write is a new request (its own
      // attempts), sent at once.
      ANYA_ASSERT(r.revision != 0);
      records_acknowledged(id, engine::Command(engine::SessionOpen{}), r.revision);
      result_.stats.records.sessions_opened++;
      client.session.id = r.revision;
      client.session.opening = false;
      client.seq++;
      client.attempt = 0;
      client.maybe_applied = false;
      schedule(now_us_, Event{EventKind::client, 0, c, {}});
      return;
    case Errc::not_leader:
      client.target = r.leader != engine::kNoNode ? r.leader
                                                  : static_cast<NodeId>(rng_.between(1, max_id()));
      return client_retry(c, not_leader_retry_ms(r));
    default:
      // Busy or failed: it may still open a session, which nobody will use. Open again.
      client.target = static_cast<NodeId>(rng_.between(1, max_id()));
      return client_retry(c, 10);
  }
}

void Simulation::client_timeout(std::uint64_t param) {
  const AttemptParam p = unpack_attempt(param);
  KvClient& client = clients_.at(p.client);
  if (client.seq != p.seq || client.attempt != p.attempt || !client.in_flight) return;
  client.in_flight = false;
  client.target = static_cast<NodeId>(rng_.between(1, max_id()));
  if (history_.at(client.op).kind == KvOp::Kind::get) {
    history_dropped_.at(client.op) = true;  // an unanswered read constrains nothing
    return client_done(p.client, 1);
  }
  client.maybe_applied = true;
  client_retry(p.client, 1);
}

void Simulation::client_retry(std::uint32_t c, std::uint64_t delay_ms) {
  KvClient& client = clients_.at(c);
  if (client.attempt < kMaxSessionAttempts) {
    schedule(now_us_ + delay_ms * kMs, Event{EventKind::client, 0, c, {}});
    return;
  }
  // Given up. If an attempt may have applied, the write's outcome stays unknown (it is in the
  // history without a completion); if every attempt was refused, or it never got a session to
  // go in, it surely did not happen.
  if (client.maybe_applied && !client.session.opening) {
    result_.stats.kv_unknown++;
  } else {
    history_dropped_.at(client.op) = true;
    result_.stats.kv_refused++;
    client.session.seq--;  // never applied anywhere: the next write takes its seq
  }
  client.session.opening = false;
  client_done(c, delay_ms);
}

void Simulation::client_done(std::uint32_t c, std::uint64_t next_in_ms) {
  clients_.at(c).busy = false;
  schedule(now_us_ + next_in_ms * kMs, Event{EventKind::client, 0, c, {}});
}

bool Simulation::clock_jumped_recently() const {
  // A forward clock jump breaks the drift bound leases and CheckQuorum rest on: what clocks
  // decide within a few election timeouts of one is the jump's doing, not the protocol's.
  const std::uint64_t window_us = 4 * options_.election_timeout_ms * kMs;
  return last_clock_jump_us_ && now_us_ - *last_clock_jump_us_ < window_us;
}

void Simulation::check_not_cut_off(NodeId id, const char* what) {
  const engine::Raft& raft = nodes_.at(id)->host->raft();
  const std::set<NodeId>& voters = raft.membership().voters;
  if (voters.count(id) == 0) return;
  // CheckQuorum steps a leader down once no quorum was heard for an election timeout on its
  // own clock; on a clock running slow by the most the run allows, that is this long in true
  // time. Any message counts as heard here (the engine counts only answers to itself), so
  // this bound is never tighter than the engine's.
  const std::uint64_t slow_ppm = 1'000'000 - std::min<std::uint64_t>(
                                                  options_.clocks.max_drift_ppm, 900'000);
  const std::uint64_t bound_us =
      options_.election_timeout_ms * kMs * 1'000'000 / slow_ppm + 2 * kMs;
  std::size_t heard = 0;
  for (NodeId v : voters) {
    const auto it = last_heard_us_.find({id, v});
    heard += v == id || (it != last_heard_us_.end() && now_us_ - it->second <= bound_us);
  }
  if (heard * 2 > voters.size()) return;
  if (clock_jumped_recently()) return;  // a jump breaks the clock bound this rests on
  violation("cut off: node " + std::to_string(id) + " " + what + " after hearing from only " +
                std::to_string(heard) + " of its " + std::to_string(voters.size()) +
                " voters within " + std::to_string(bound_us / kMs) + " ms",
            id);
}

void Simulation::check_history() {
  std::vector<KvOp> kept;
  for (std::size_t i = 0; i < history_.size(); i++) {
    // A read still unanswered when the run ended constrains nothing, like a dropped one.
    const bool unanswered_read = history_[i].kind == KvOp::Kind::get && !history_[i].complete_us;
    if (!history_dropped_[i] && !unanswered_read) kept.push_back(history_[i]);
  }
  const LinearizabilityResult r = check_linearizable(kept);
  result_.stats.linearizability_steps = r.steps;
  result_.stats.linearizability_inconclusive = r.inconclusive;
  if (!r.ok) {
    violation("linearizability: the history of key " + r.key +
                  " has no order consistent with real time and the KV store's rules:\n" +
                  r.explanation,
              engine::kNoNode);
  }
}

void Simulation::check_leases() {
  // Who holds a valid lease right now, each on its own clock.
  NodeId holder = engine::kNoNode;
  for (const auto& [id, n] : nodes_) {
    if (!n->core || !n->host->raft().is_leader()) continue;
    const engine::Raft& raft = n->host->raft();
    const bool holds = raft.lease_until_ms() > n->clock.local_ms(now_us_);
    // The fenced resource: every node that believes it leads acts on it now; a request with an
    // older token than one accepted is refused, as the resource's fencing must do.
    const bool clocks_broke = clock_jumped_recently();
    if (raft.term() < fence_token_) {
      result_.stats.fence_refused++;
      if (holds && !clocks_broke) {
        violation("fencing: node " + std::to_string(id) + " holds a valid lease with token " +
                      std::to_string(raft.term()) + " after the resource accepted token " +
                      std::to_string(fence_token_),
                  id);
      }
    } else {
      fence_token_ = raft.term();
    }
    if (!holds) continue;
    result_.stats.lease_checks++;
    check_not_cut_off(id, "holds a valid lease");
    if (holder == engine::kNoNode) {
      holder = id;
      continue;
    }
    if (clocks_broke) continue;
    violation("lease exclusivity: nodes " + std::to_string(holder) + " (term " +
                  std::to_string(nodes_.at(holder)->host->raft().term()) + ") and " +
                  std::to_string(id) + " (term " + std::to_string(raft.term()) +
                  ") both hold a valid lease",
              id);
  }
}

}  // namespace anya::sim
