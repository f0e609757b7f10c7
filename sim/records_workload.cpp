// The UTXO clients, and the records checker's hooks into the run (sim/records_checker.hpp).
//
// Each UTXO client is a wallet that reserves, renews, releases and spends a small shared set of
// outpoints (SimOptions::utxo_outpoints of them, a fresh set every utxo_generation_ms; now and
// then one of the previous set, mostly spent or released by then). Every request goes in the
// wallet's client session, which it opens first when it has none (records_workload.hpp); now_ms
// in the command, the session and the open is the clock of the node the attempt reaches, as the
// admin API stamps it in production. It sends to the node it believes
// leads, follows not_leader hints, sometimes picks any node, and retries an unknown or refused
// attempt with the same (client id, seq) there or elsewhere, through crashes, pauses,
// partitions and failovers. Its own view (which outpoints it holds) only steers what it asks
// next: correctness is judged by the checker against the committed log, never by the clients.
#include <algorithm>

#include "engine/kv/kv.hpp"
#include "sim/records_workload.hpp"
#include "sim/sim_node.hpp"
#include "sim/simulation.hpp"

namespace anya::sim {

namespace {
constexpr std::uint64_t kMs = 1000;
constexpr std::uint64_t kMinTtlMs = 20;  // reservations live 20 ms .. utxo_ttl_max_ms
// A wallet's pause between requests: often enough to contend, not so often that the run is
// all session bookkeeping.
constexpr std::uint64_t kMinThinkMs = 5;
constexpr std::uint64_t kMaxThinkMs = 60;

// The client's current request in its session; now_ms 0 until a node stamps an attempt.
engine::Command utxo_request(const UtxoClient& client) {
  ANYA_ASSERT(client.session.id != 0 && !client.session.opening);
  engine::Command command(client.command);
  command.session = engine::ClientSession{client.session.id, client.session.seq, 0};
  return command;
}

// Whether a reply or timeout is for the client's current attempt (`request`: Call::seq).
bool current(const UtxoClient& client, std::uint64_t request, std::uint32_t attempt) {
  return client.busy && client.in_flight && client.request == request &&
         client.attempt == attempt;
}
}  // namespace

// ---- shared by the session clients ---------------------------------------------------------

std::uint64_t attempt_param(std::uint32_t client, std::uint32_t attempt, std::uint64_t seq) {
  ANYA_ASSERT(seq < (std::uint64_t{1} << kAttemptSeqBits));
  ANYA_ASSERT(attempt < (1u << kAttemptBits));
  ANYA_ASSERT(client < (1u << (64 - kAttemptSeqBits - kAttemptBits)));
  return (std::uint64_t{client} << (kAttemptSeqBits + kAttemptBits)) |
         (std::uint64_t{attempt} << kAttemptSeqBits) | seq;
}

AttemptParam unpack_attempt(std::uint64_t param) {
  AttemptParam p;
  p.client = static_cast<std::uint32_t>(param >> (kAttemptSeqBits + kAttemptBits));
  p.attempt = static_cast<std::uint32_t>((param >> kAttemptSeqBits) & ((1u << kAttemptBits) - 1));
  p.seq = param & ((std::uint64_t{1} << kAttemptSeqBits) - 1);
  return p;
}

bool session_expired(const Status& status) {
  return status.code() == Errc::conflict && status.message().starts_with("session expired");
}

std::uint64_t Simulation::not_leader_retry_ms(const engine::ClientReply& reply) const {
  // With a hint, at once; with none, an election is likely under way: give it time.
  if (reply.leader != engine::kNoNode) return 2;
  return std::max<std::uint64_t>(5, options_.election_timeout_ms / 2);
}

engine::Outpoint sim_outpoint(std::uint64_t generation, std::uint32_t vout) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string txid;
  std::uint64_t x = generation;
  for (int word = 0; word < 4; word++) {
    // splitmix64 steps: distinct generations give unrelated txids.
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int i = 0; i < 16; i++) txid.push_back(kHex[(z >> (4 * i)) & 15]);
  }
  ANYA_ASSERT(txid.size() == engine::kTxidHexChars);
  return engine::Outpoint{txid, vout};
}

// ---- the UTXO clients ----------------------------------------------------------------------

void Simulation::start_utxo_clients() {
  utxo_clients_.resize(options_.utxo_clients);
  for (std::uint32_t u = 0; u < options_.utxo_clients; u++) {
    utxo_clients_[u].owner = "wallet-" + std::to_string(u);
    utxo_clients_[u].target = static_cast<NodeId>(rng_.between(1, options_.nodes));
    schedule(rng_.between(1, 50) * kMs, Event{EventKind::utxo_client, 0, u, {}});
  }
}

void Simulation::utxo_step(std::uint32_t u) {
  UtxoClient& client = utxo_clients_.at(u);
  if (done_ || client.in_flight) return;
  if (!client.busy) utxo_begin(u);
  utxo_attempt(u);
}

// A new request: mostly on the current set of outpoints; renew, release or spend one it holds,
// or try to reserve (rarely release or spend) one it does not.
void Simulation::utxo_begin(std::uint32_t u) {
  UtxoClient& client = utxo_clients_.at(u);
  ANYA_ASSERT(!client.busy);
  const std::uint64_t generation = now_us_ / (options_.utxo_generation_ms * kMs);
  const bool older = generation > 0 && rng_.chance(1, 8);
  engine::UtxoCommand& r = client.command;
  r = engine::UtxoCommand{};
  r.outpoint = sim_outpoint(generation - (older ? 1 : 0),
                            static_cast<std::uint32_t>(rng_.below(options_.utxo_outpoints)));
  // A wallet that knows a coin is spent looks for another, but not always: asking about a
  // spent one now and then is how the rule that spent is final gets exercised.
  if (client.spent.count(r.outpoint.text()) != 0 && rng_.chance(7, 8)) {
    r.outpoint = sim_outpoint(generation,
                              static_cast<std::uint32_t>(rng_.below(options_.utxo_outpoints)));
  }
  r.owner = client.owner;
  const bool held = client.held.count(r.outpoint.text()) != 0;
  const std::uint64_t pick = rng_.below(100);
  using Op = engine::UtxoOp;
  if (held) {
    r.op = pick < 60 ? Op::reserve : pick < 92 ? Op::release : Op::spend;
  } else {
    r.op = pick < 85 ? Op::reserve : pick < 98 ? Op::release : Op::spend;
  }
  if (r.op == Op::reserve) r.ttl_ms = rng_.between(kMinTtlMs, options_.utxo_ttl_max_ms);
  client.busy = true;
  client.request++;
  client.session.seq++;
  // No session (never opened, or expired): open one first; this request becomes its seq 1.
  client.session.opening = client.session.id == 0;
  ANYA_ASSERT(!client.session.opening || client.session.seq == 1);
  client.attempt = 0;
  client.maybe_applied = false;
  result_.stats.records.session_writes++;
  // Now and then a wallet asks any node, as one with a stale list of endpoints would.
  if (rng_.chance(1, 10)) client.target = static_cast<NodeId>(rng_.between(1, max_id()));
}

void Simulation::utxo_attempt(std::uint32_t u) {
  UtxoClient& client = utxo_clients_.at(u);
  ANYA_ASSERT(client.busy && !client.in_flight);
  const NodeId target = client.target;
  if (target < 1 || target > max_id() || !up(target)) {
    // Its port refuses the connection: nothing was asked; try another node shortly.
    client.target = static_cast<NodeId>(rng_.between(1, max_id()));
    schedule(now_us_ + 5 * kMs, Event{EventKind::utxo_client, 0, u, {}});
    return;
  }
  client.attempt++;
  client.in_flight = true;
  if (client.attempt > 1 && !client.session.opening) result_.stats.records.session_retries++;
  const Call call{u, client.request, next_ticket_++, client.attempt, true};
  schedule(now_us_ + options_.kv_timeout_ms * kMs,
           Event{EventKind::utxo_timeout, 0, attempt_param(u, call.attempt, call.seq), {}});
  if (paused(target)) {
    result_.stats.kv_calls_while_paused++;
    inbox_[target].push_back({call, KvOp{}});
    return;
  }
  submit_utxo_call(target, call);
  (void)nodes_.at(target)->core->flush();
  after_node_event(target);
}

void Simulation::submit_utxo_call(NodeId id, const Call& call) {
  Node& n = *nodes_.at(id);
  ANYA_ASSERT(n.core != nullptr);
  const UtxoClient& client = utxo_clients_.at(call.client);
  if (!current(client, call.seq, call.attempt)) return;  // it gave up on this attempt
  calls_[id][call.ticket] = call;
  // The proposer's clock: expiry is decided by it, identically on every replica.
  const std::uint64_t now_ms = n.now_ms();
  if (client.session.opening) {
    n.core->submit_write(call.ticket, engine::Command(engine::SessionOpen{now_ms}));
    return;
  }
  engine::Command command = utxo_request(client);
  std::get<engine::UtxoCommand>(command.body).now_ms = now_ms;
  command.session->now_ms = now_ms;
  n.core->submit_write(call.ticket, std::move(command));
}

void Simulation::utxo_reply(NodeId id, const Call& call, const engine::ClientReply& r) {
  UtxoClient& client = utxo_clients_.at(call.client);
  if (!current(client, call.seq, call.attempt)) return;  // an attempt it gave up on
  client.in_flight = false;
  if (client.session.opening) return utxo_opened(id, call.client, r);
  RecordStats& stats = result_.stats.records;

  const std::string outpoint = client.command.outpoint.text();
  if (session_expired(r.status)) {
    // The store no longer holds the session: whether the request applied is unknown. The next
    // request opens a new session.
    stats.session_expired++;
    stats.utxo_unknown++;
    client.session = SessionState{};
    return utxo_done(call.client, 10);
  }
  switch (r.status.code()) {
    case Errc::ok:
      stats.session_replays += r.replayed;
      records_acknowledged(id, utxo_request(client), r.revision);
      if (client.command.op == engine::UtxoOp::reserve) {
        client.held.insert(outpoint);
        stats.utxo_reserved++;
      } else if (client.command.op == engine::UtxoOp::release) {
        client.held.erase(outpoint);
        stats.utxo_released++;
      } else {
        client.held.erase(outpoint);
        client.spent.insert(outpoint);
        stats.utxo_spent++;
      }
      return utxo_done(call.client, rng_.between(kMinThinkMs, kMaxThinkMs));
    case Errc::conflict:
    case Errc::not_found:
      stats.session_replays += r.replayed;
      stats.utxo_refused++;
      client.held.erase(outpoint);
      if (r.status.message().find(" was spent by ") != std::string::npos) {
        client.spent.insert(outpoint);
      }
      return utxo_done(call.client, rng_.between(kMinThinkMs, kMaxThinkMs));
    case Errc::not_leader:
      // This attempt did not apply; another may have. Follow the hint.
      client.target = r.leader != engine::kNoNode
                          ? r.leader
                          : static_cast<NodeId>(rng_.between(1, max_id()));
      return utxo_retry(call.client, not_leader_retry_ms(r));
    default:
      // busy (not applied in time) or the node failed: it may still apply.
      client.maybe_applied = true;
      client.target = static_cast<NodeId>(rng_.between(1, max_id()));
      return utxo_retry(call.client, 10);
  }
}

void Simulation::utxo_opened(NodeId id, std::uint32_t u, const engine::ClientReply& r) {
  UtxoClient& client = utxo_clients_.at(u);
  ANYA_ASSERT(client.busy && client.session.opening);
  switch (r.status.code()) {
    case Errc::ok:
      // The session's id is the index of the open's entry. The reservation request is a new
      // request (its own attempts), sent at once.
      ANYA_ASSERT(r.revision != 0);
      records_acknowledged(id, engine::Command(engine::SessionOpen{}), r.revision);
      result_.stats.records.sessions_opened++;
      client.session.id = r.revision;
      client.session.opening = false;
      client.request++;
      client.attempt = 0;
      client.maybe_applied = false;
      schedule(now_us_, Event{EventKind::utxo_client, 0, u, {}});
      return;
    case Errc::not_leader:
      client.target = r.leader != engine::kNoNode
                          ? r.leader
                          : static_cast<NodeId>(rng_.between(1, max_id()));
      return utxo_retry(u, not_leader_retry_ms(r));
    default:
      // Busy or failed: it may still open a session, which nobody will use. Open again.
      client.target = static_cast<NodeId>(rng_.between(1, max_id()));
      return utxo_retry(u, 10);
  }
}

void Simulation::utxo_timeout(std::uint64_t param) {
  const AttemptParam p = unpack_attempt(param);
  UtxoClient& client = utxo_clients_.at(p.client);
  if (!current(client, p.seq, p.attempt)) return;
  client.in_flight = false;
  client.maybe_applied = true;
  client.target = static_cast<NodeId>(rng_.between(1, max_id()));
  utxo_retry(p.client, 1);
}

void Simulation::utxo_retry(std::uint32_t u, std::uint64_t delay_ms) {
  UtxoClient& client = utxo_clients_.at(u);
  if (client.attempt < kMaxSessionAttempts) {
    schedule(now_us_ + delay_ms * kMs, Event{EventKind::utxo_client, 0, u, {}});
    return;
  }
  if (client.maybe_applied && !client.session.opening) {
    result_.stats.records.utxo_unknown++;  // it never learns whether the request took effect
  } else {
    // Every attempt refused, or it never got a session to go in: it surely did not happen.
    result_.stats.records.utxo_refused++;
    client.session.seq--;  // never applied anywhere: the next request takes its seq
  }
  client.session.opening = false;
  utxo_done(u, delay_ms);
}

void Simulation::utxo_done(std::uint32_t u, std::uint64_t next_in_ms) {
  utxo_clients_.at(u).busy = false;
  schedule(now_us_ + next_in_ms * kMs, Event{EventKind::utxo_client, 0, u, {}});
}

// ---- the checker's hooks -------------------------------------------------------------------

void Simulation::records_applied(NodeId id, const Entry& e, const engine::KvResult& result,
                                 const engine::KvStore& kv) {
  records_.on_applied(id, e, result, kv);
  report_records(id);
}

void Simulation::records_restored(NodeId id, const engine::KvStore& kv) {
  records_.on_restored(id, kv);
  report_records(id);
}

void Simulation::records_acknowledged(NodeId id, const engine::Command& request,
                                      Index revision) {
  records_.on_acknowledged(id, request, revision);
  report_records(id);
}

void Simulation::report_records(NodeId id) {
  if (std::optional<std::string> v = records_.take_violation()) violation(*v, id);
}

// End of the run: every live replica against the model; then the checker's counts.
void Simulation::finish_records() {
  for (const auto& [id, n] : nodes_) {
    if (!result_.ok) break;
    if (!n->core || n->host->failed()) continue;
    records_.check_final(id, n->core->kv(), n->host->raft().log());
    report_records(id);
  }
  RecordStats& stats = result_.stats.records;
  const RecordStats& counts = records_.counts();
  stats.checked_entries = counts.checked_entries;
  stats.checked_sessions = counts.checked_sessions;
  stats.checked_utxo = counts.checked_utxo;
  stats.checked_acks = counts.checked_acks;
  stats.checked_snapshots = counts.checked_snapshots;
  stats.checked_final_replicas = counts.checked_final_replicas;
}

}  // namespace anya::sim
