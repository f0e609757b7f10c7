// The simulator's KV clients and the checks over what they saw: linearizability of every key's
// history, lease exclusivity in true time, and a fenced resource.
//
// Each client runs one operation at a time against the node it believes leads: get (mostly
// linearizable, lease reads when the run keeps clocks within the lease's bound), put, compare-
// and-set against the revision it last saw, or delete, on a few shared keys. A request reaches
// the node at once unless the node is stopped (paused): then it waits there and is handled
// when the process wakes, before anything else, which is how a paused leader's queued reads
// once came to be answered stale. Replies come back through NodeCore's tickets. A client gives
// up after kv_timeout_ms: a write then has an unknown outcome (it may still take effect).
#include <algorithm>

#include "engine/kv/kv.hpp"
#include "sim/sim_node.hpp"
#include "sim/simulation.hpp"

namespace anya::sim {

using engine::NodeId;

namespace {
constexpr std::uint64_t kMs = 1000;
constexpr std::uint64_t kSeqBits = 40;
std::uint64_t timeout_param(std::uint32_t client, std::uint64_t seq) {
  ANYA_ASSERT(seq < (std::uint64_t{1} << kSeqBits));
  return (std::uint64_t{client} << kSeqBits) | seq;
}
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
  if (client.busy || done_) return;
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
  NodeId target = client.target;
  if (target < 1 || target > max_id() || !up(target)) {
    // Its port refuses the connection: nothing was asked; try another node shortly.
    client.target = static_cast<NodeId>(rng_.between(1, max_id()));
    schedule(now_us_ + 5 * kMs, Event{EventKind::client, 0, c, {}});
    return;
  }
  client.seq++;
  client.busy = true;
  client.op = history_.size();
  history_.push_back(op);
  history_dropped_.push_back(false);
  const Call call{c, client.seq, next_ticket_++};
  schedule(now_us_ + options_.kv_timeout_ms * kMs,
           Event{EventKind::client_timeout, 0, timeout_param(c, client.seq), {}});
  if (paused(target)) {
    result_.stats.kv_calls_while_paused++;
    inbox_[target].push_back({call, op});
    return;
  }
  submit_call(target, call);
  (void)nodes_.at(target)->core->flush();
  after_node_event(target);
}

void Simulation::submit_call(NodeId id, const Call& call) {
  Node& n = *nodes_.at(id);
  ANYA_ASSERT(n.core != nullptr);
  const KvClient& client = clients_.at(call.client);
  if (client.seq != call.seq || !client.busy) return;  // the client gave up meanwhile
  const KvOp& op = history_.at(client.op);
  calls_[id][call.ticket] = call;
  switch (op.kind) {
    case KvOp::Kind::get: {
      const bool lease = lease_reads_allowed() && (call.seq % 3 == 0);
      if (lease) result_.stats.kv_lease_reads++;
      n.core->submit_read(call.ticket, op.key,
                          lease ? engine::ReadMode::lease : engine::ReadMode::linearizable);
      return;
    }
    case KvOp::Kind::put:
      n.core->submit_write(call.ticket, engine::KvCommand::put(op.key, op.value));
      return;
    case KvOp::Kind::cas:
      n.core->submit_write(call.ticket, engine::KvCommand::cas(op.key, op.expected, op.value));
      return;
    case KvOp::Kind::del:
      n.core->submit_write(call.ticket,
                           engine::KvCommand::del(op.key, op.expected == 0
                                                              ? std::nullopt
                                                              : std::optional(op.expected)));
      return;
  }
}

void Simulation::client_reply(NodeId id, std::uint32_t c, std::uint64_t seq,
                              const engine::ClientReply& r) {
  KvClient& client = clients_.at(c);
  if (client.seq != seq || !client.busy) return;  // it gave up already: the outcome stays unknown
  KvOp& op = history_.at(client.op);
  const bool read = op.kind == KvOp::Kind::get;
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
      // Definitely did not happen (refused before proposing, or another leader's entry won
      // its index). Follow the hint, as a real client does.
      history_dropped_.at(client.op) = true;
      result_.stats.kv_refused++;
      client.target = r.leader != engine::kNoNode ? r.leader
                                                  : static_cast<NodeId>(rng_.between(1, max_id()));
      return client_done(c, 2);
    default:
      // busy (timed out waiting, outcome unknown) or the node failed: a read tells nothing, a
      // write may still take effect.
      if (read) {
        history_dropped_.at(client.op) = true;
      } else {
        result_.stats.kv_unknown++;
      }
      client.target = static_cast<NodeId>(rng_.between(1, max_id()));
      return client_done(c, 10);
  }
}

void Simulation::client_timeout(std::uint64_t param) {
  const auto c = static_cast<std::uint32_t>(param >> kSeqBits);
  const std::uint64_t seq = param & ((std::uint64_t{1} << kSeqBits) - 1);
  KvClient& client = clients_.at(c);
  if (client.seq != seq || !client.busy) return;
  if (history_.at(client.op).kind == KvOp::Kind::get) {
    history_dropped_.at(client.op) = true;  // an unanswered read constrains nothing
  } else {
    result_.stats.kv_unknown++;
  }
  client.target = static_cast<NodeId>(rng_.between(1, max_id()));
  client_done(c, 1);
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
