#include "sim/simulation.hpp"
#include "sim/sim_node.hpp"

#include "engine/kv/kv.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace anya::sim {

// (Entry, Index, Message, NodeId, Role and Term: see sim_node.hpp.)

namespace {
constexpr std::uint64_t kMs = 1000;
constexpr std::uint64_t kLivenessCheckEveryUs = 20 * kMs;
constexpr std::uint64_t kMaxEvents = 50'000'000;  // a runaway run is a bug, not a long run
constexpr std::uint64_t kRaceStart = 2;  // EventKind::config_race param: begin a race
// How far back from a leader's last entry to look for the COMMIT it has just proposed.
constexpr Index kCommitSearchEntries = 16;

// Folds a word into the rolling event hash (a multiply-xorshift mixer: fast, order-sensitive).
std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 31);
}
}  // namespace

Simulation::Simulation(SimOptions options)
    : options_(std::move(options)),
      rng_(options_.seed),
      faults_on_(options_.faults_on),
      network_(options_.link) {
  ANYA_ASSERT(options_.nodes >= 1);
  ANYA_ASSERT(options_.nodes <= kMaxSimNodes);
  ANYA_ASSERT(options_.max_nodes <= kMaxSimNodes);
  ANYA_ASSERT(options_.nodes + options_.learners <= kMaxSimNodes);
  for (NodeId id = 1; id <= options_.nodes; id++) add_node();
  for (const ScriptStep& step : options_.script) {
    outage_steps_ += step.action == ScriptAction::crash_voter_majority;
  }
}

NodeId Simulation::add_node() {
  const NodeId id = max_id() + 1;
  auto node = std::make_unique<Node>(*this, id);
  const std::uint64_t offset_us = rng_.between(0, options_.clocks.max_offset_ms * kMs);
  const std::int64_t drift =
      static_cast<std::int64_t>(rng_.between(0, 2ull * options_.clocks.max_drift_ppm)) -
      static_cast<std::int64_t>(options_.clocks.max_drift_ppm);
  node->clock = SimClock(offset_us, drift);
  node->chain_height = chain_tip_;  // a new backend starts synced
  nodes_.emplace(id, std::move(node));
  return id;
}

Simulation::~Simulation() = default;

// ---- the event loop ----------------------------------------------------------------------

void Simulation::schedule(std::uint64_t at_us, Event event) {
  ANYA_ASSERT(at_us >= now_us_);
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(std::move(event));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(event);
  }
  heap_.push_back(QueueKey{at_us, seq_++, slot});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
}

void Simulation::hash_event(std::uint64_t at_us, const Event& e) {
  hash_ = mix(hash_, at_us);
  hash_ = mix(hash_, static_cast<std::uint64_t>(e.kind) << 32 | e.node);
  hash_ = mix(hash_, e.param);
  if (e.kind == EventKind::deliver) {
    const Message& m = e.message;
    hash_ = mix(hash_, static_cast<std::uint64_t>(m.type) << 48 | m.from << 24 | m.to);
    hash_ = mix(hash_, m.term);
    hash_ = mix(hash_, m.index ^ (m.commit << 20) ^ (m.entries.size() << 40));
  }
}

RunResult Simulation::run() {
  for (NodeId id = 1; id <= options_.nodes; id++) start_node(id);
  if (faults_on_) {
    for (int k = 0; k < static_cast<int>(FaultKind::count); k++) {
      schedule_fault(static_cast<FaultKind>(k), true);
    }
  }
  for (std::size_t i = 0; i < options_.script.size(); i++) {
    schedule(options_.script[i].at_ms * kMs, Event{EventKind::script, 0, i, {}});
  }
  schedule(options_.propose_every_ms * kMs, Event{EventKind::propose, 0, 0, {}});
  clients_.resize(options_.kv_clients);
  for (std::uint32_t c = 0; c < options_.kv_clients; c++) {
    clients_[c].target = static_cast<NodeId>(rng_.between(1, options_.nodes));
    schedule(rng_.between(1, 50) * kMs, Event{EventKind::client, 0, c, {}});
  }
  start_utxo_clients();
  schedule(options_.safety_ms * kMs, Event{EventKind::start_liveness, 0, 0, {}});
  if (chain_on()) {
    schedule(options_.chain_block_ms * kMs, Event{EventKind::chain_block, 0, 0, {}});
  }
  if (options_.membership_every_ms > 0) {
    schedule(rng_.between(1, 2 * options_.membership_every_ms) * kMs,
             Event{EventKind::membership, 0, 0, {}});
  }
  if (options_.config_every_ms > 0) {
    schedule(rng_.between(1, 2 * options_.config_every_ms) * kMs,
             Event{EventKind::config, 0, 0, {}});
  }
  if (options_.config_race_every_ms > 0) {
    schedule(rng_.between(1, 2 * options_.config_race_every_ms) * kMs,
             Event{EventKind::config_race, 0, kRaceStart, {}});
  }

  while (!done_ && !heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    const QueueKey key = heap_.back();
    heap_.pop_back();
    const std::uint64_t at = key.at_us;
    Event event = std::move(slots_[key.slot]);
    free_slots_.push_back(key.slot);
    ANYA_ASSERT(at >= now_us_);
    now_us_ = at;
    result_.stats.events++;
    hash_event(at, event);
    ANYA_ASSERT(result_.stats.events < kMaxEvents);
    dispatch(event);
  }
  if (result_.ok) check_history();
  if (result_.ok) check_scenario_proofs();
  finish_records();
  result_.hash = hash_;
  result_.stats.sim_time_us = now_us_;
  result_.stats.messages_dropped = network_.dropped();
  result_.stats.acked = acked_.size();
  std::uint64_t saved = 0;
  for (const auto& [id, n] : nodes_) {
    result_.stats.torn_records += n->disk.torn_records_dropped();
    saved += n->disk.snapshots_saved();
  }
  result_.stats.snapshots_taken = saved - std::min(saved, result_.stats.snapshots_installed);
  if (timeline_) timeline_->finish(now_us_);
  return result_;
}

void Simulation::dispatch(Event& event) {
  const NodeId id = event.node;
  // A paused process handles nothing until it resumes: its input waits, in order.
  if ((event.kind == EventKind::deliver || event.kind == EventKind::wakeup) && paused(id)) {
    schedule(nodes_.at(id)->paused_until_us, std::move(event));
    return;
  }
  switch (event.kind) {
    case EventKind::deliver: {
      network_.delivered(event.message.from, id);
      if (!up(id)) return;
      result_.stats.messages_delivered++;
      last_heard_us_[{id, event.message.from}] = now_us_;
      Node& n = *nodes_.at(id);
      if (faults_on_ && rng_.chance(options_.faults.crash_in_sync_ppm, 1'000'000)) {
        n.disk.fail_next_sync();
      }
      (void)n.core->receive(event.message);
      after_node_event(id);
      return;
    }
    case EventKind::wakeup: {
      Node& n = *nodes_.at(id);
      if (event.param != n.wakeup_generation || !up(id)) return;  // superseded
      n.wakeup_pending = false;
      (void)n.core->tick();
      after_node_event(id);
      return;
    }
    case EventKind::restart: start_node(id); return;
    case EventKind::resume:
      if (timeline_) timeline_->mark(now_us_, id, Timeline::Mark::resume, "");
      if (!up(id) || paused(id)) return;
      // What its chain probe posted while it was stopped comes first.
      if (chain_on()) push_chain_view(id);
      if (!up(id)) return;
      // Client requests that reached it while it was stopped are handled now, first thing,
      // as a woken process reads its sockets: before it has heard from anyone.
      for (auto& [call, op] : std::exchange(inbox_[id], {})) submit_call(id, call);
      if (nodes_.at(id)->core) (void)nodes_.at(id)->core->flush();
      after_node_event(id);
      return;
    case EventKind::peer_gone: {
      const NodeId gone = static_cast<NodeId>(event.param);
      if (!up(id) || up(gone)) return;  // restarted meanwhile: its port listens again
      if (paused(id)) return;           // a stopped process notices nothing
      const NodeId leader_before = nodes_.at(id)->host->raft().leader();
      (void)nodes_.at(id)->core->peer_gone(gone);
      if (leader_before == gone) result_.stats.fast_failovers++;
      after_node_event(id);
      return;
    }
    case EventKind::client: client_step(static_cast<std::uint32_t>(event.param)); return;
    case EventKind::client_timeout: client_timeout(event.param); return;
    case EventKind::utxo_client: utxo_step(static_cast<std::uint32_t>(event.param)); return;
    case EventKind::utxo_timeout: utxo_timeout(event.param); return;
    case EventKind::fault:
      if (!liveness_phase_) {
        inject(static_cast<FaultKind>(event.param));
        schedule_fault(static_cast<FaultKind>(event.param), false);
      }
      return;
    case EventKind::heal:
      if (network_.partitioned() && timeline_) {
        timeline_->partition(partition_started_us_, now_us_, network_.partition().describe);
      }
      network_.heal_partition();
      return;
    case EventKind::unflap:
      network_.heal_partition();
      return;
    case EventKind::config:
      if (!liveness_phase_) {
        write_config();
        schedule(now_us_ + rng_.between(1, 2 * options_.config_every_ms) * kMs,
                 Event{EventKind::config, 0, 0, {}});
      }
      return;
    case EventKind::membership:
      if (!liveness_phase_) {
        if (options_.learners > 0) {
          grow_learners();
        } else {
          change_membership();
        }
        schedule(now_us_ + rng_.between(1, 2 * options_.membership_every_ms) * kMs,
                 Event{EventKind::membership, 0, 0, {}});
      }
      return;
    case EventKind::crash:
      if (liveness_phase_ || !up(id)) return;
      crash_node(id, options_.faults.torn_write_ppm, "new leader crashed");
      schedule(now_us_ + rng_.between(options_.faults.down_min_ms, options_.faults.down_max_ms) *
                             kMs,
               Event{EventKind::restart, id, 0, {}});
      return;
    case EventKind::propose: propose(); return;
    case EventKind::start_liveness: start_liveness(); return;
    case EventKind::check_liveness: check_liveness(); return;
    case EventKind::script:
      if (liveness_phase_) return;
      if (options_.script[event.param].action == ScriptAction::crash_voter_majority) {
        crash_voter_majority(event.param);
      } else {
        run_script_step(options_.script[event.param]);
      }
      return;
    case EventKind::config_crash: config_crash(); return;
    case EventKind::config_race: config_race(event.param); return;
    case EventKind::chain_block: chain_block(); return;
    case EventKind::chain_seen: chain_seen(id, event.param); return;
    case EventKind::chain_restore: chain_restore(id, event.param); return;
    case EventKind::chain_check: chain_check(); return;
  }
}

// ---- nodes -------------------------------------------------------------------------------

bool Simulation::up(NodeId id) const { return nodes_.at(id)->host != nullptr; }

bool Simulation::paused(NodeId id) const { return nodes_.at(id)->paused_until_us > now_us_; }

void Simulation::start_node(NodeId id) {
  Node& n = *nodes_.at(id);
  if (n.dead || n.host) return;
  const bool restart = n.disk.syncs() > 0 || n.disk.durable_bytes() > 0;
  // Flip a bit (the node then stays down for good) only if every configuration any node holds
  // keeps a live majority of voters without it, so liveness remains demandable.
  if (restart && faults_on_ && can_lose_for_good(id) &&
      rng_.chance(options_.faults.bit_flip_ppm, 1'000'000)) {
    n.disk.flip_bit(rng_);
  }
  engine::RaftConfig config;
  config.id = id;
  // Bootstrap nodes share the initial configuration; a node added later starts with none and
  // learns it from the log (its own add_learner entry carries the whole membership).
  for (NodeId v = 1; id <= options_.nodes && v <= options_.nodes; v++) config.voters.insert(v);
  config.heartbeat_interval_ms = options_.heartbeat_ms;
  config.election_timeout_ms = options_.election_timeout_ms;
  config.snapshot_entries = options_.snapshot_entries;
  config.snapshot_keep_entries = options_.snapshot_keep_entries;
  config.random_seed = rng_.next();
  config.fault_hooks = options_.faults.fault_hook_ppm > 0 ? &n : nullptr;
  engine::ConfigOptions config_options;
  config_options.validator = &n;
  config_options.txn_deadline_ms = 10 * options_.election_timeout_ms;
  config.leases = true;
  config.max_clock_drift_ppm = options_.lease_drift_bound_ppm;
  config.max_blocks_behind = options_.max_blocks_behind;
  engine::NodeOptions node_options;
  node_options.write_timeout_ms = 2 * options_.kv_timeout_ms;
  node_options.read_timeout_ms = options_.kv_timeout_ms;
  node_options.failover_step_ms = std::max<std::uint64_t>(options_.heartbeat_ms / 2, 5);
  node_options.failover_retry_ms = 2 * options_.heartbeat_ms;
  auto core = engine::NodeCore::open(config, node_options, n.disk, n, n, config_options, &n);
  if (!core) {
    // The disk failed its checksums: the node refuses to start, as it must.
    n.dead = true;
    result_.stats.disks_corrupted++;
    if (timeline_) timeline_->mark(now_us_, id, Timeline::Mark::dead, core.status().message());
    return;
  }
  n.core = std::move(core).value();
  n.host = &n.core->host();
  if (chain_on()) {
    // A new process knows nothing of the chain until its probe reports: at once, here.
    const Status s = n.host->set_chain_view(chain_view_of(id));
    ANYA_ASSERT(s.is_ok() || n.host->failed());
  }
  if (options_.learners > 0 && id > options_.nodes && id % 2 == 0) {
    (void)n.host->set_healthy(false);  // many-learners: the leader must report it
  }
  n.wakeup_pending = false;
  n.last_config_version = 0;  // a new process replays the log from the start
  n.last_staged_version = 0;
  if (restart) {
    result_.stats.restarts++;
    const engine::HardState hs = n.host->raft().hard_state();
    checker_.on_restart(id, hs.term, hs.commit);
    if (timeline_) timeline_->mark(now_us_, id, Timeline::Mark::restart, "");
  }
  observe(id);
  schedule_wakeup(id);
}

void Simulation::crash_node(NodeId id, std::uint32_t torn_ppm, const char* why) {
  Node& n = *nodes_.at(id);
  if (!n.host) return;
  n.host = nullptr;
  n.core.reset();
  n.disk.crash(rng_, torn_ppm);
  n.paused_until_us = 0;
  // Requests in flight at it die with it: their clients time out, not knowing the outcome.
  proposals_.erase(id);
  calls_.erase(id);
  inbox_.erase(id);
  result_.stats.crashes++;
  // Its peer port refuses connections now: the others learn it is gone within a few ms, as
  // a redial tells them in production (a pause or a partition tells them nothing).
  for (NodeId other = 1; other <= max_id(); other++) {
    if (other != id && up(other)) {
      schedule(now_us_ + rng_.between(1, 5) * kMs, Event{EventKind::peer_gone, other, id, {}});
    }
  }
  if (timeline_) {
    timeline_->mark(now_us_, id, Timeline::Mark::crash, why);
    timeline_->role(now_us_, id, Role::follower, n.last_term);
  }
}

void Simulation::after_node_event(NodeId id) {
  Node& n = *nodes_.at(id);
  if (n.host && n.host->failed()) {
    result_.stats.storage_failures++;
    crash_node(id, options_.faults.torn_write_ppm, "storage failed: fail-stop");
    schedule(now_us_ + rng_.between(options_.faults.down_min_ms, options_.faults.down_max_ms) * kMs,
             Event{EventKind::restart, id, 0, {}});
    return;
  }
  if (!n.host) return;
  drain_replies(id);
  observe(id);
  schedule_wakeup(id);
}

void Simulation::schedule_wakeup(NodeId id) {
  Node& n = *nodes_.at(id);
  const std::uint64_t deadline_ms = n.core->next_deadline_ms();
  std::uint64_t at = n.clock.virtual_when(deadline_ms, now_us_);
  if (at <= now_us_) at = now_us_ + kMs;  // due already: tick again shortly, never in a loop
  if (n.wakeup_pending && n.wakeup_at_us <= at) return;  // an earlier wakeup will re-plan
  n.wakeup_generation++;
  n.wakeup_pending = true;
  n.wakeup_at_us = at;
  schedule(at, Event{EventKind::wakeup, id, n.wakeup_generation, {}});
}

void Simulation::send_from(NodeId from, const Message& m) {
  ANYA_ASSERT(m.from == from);
  if (nodes_.count(m.to) == 0) return;
  for (std::uint64_t at : network_.route(from, m.to, now_us_, rng_, faults_on_)) {
    schedule(at, Event{EventKind::deliver, m.to, 0, m});
  }
}

void Simulation::check_digest(NodeId id, Index index, std::uint64_t digest, const char* how) {
  auto [it, inserted] = digest_at_.emplace(index, digest);
  if (!inserted && it->second != digest) {
    violation("state machine agreement: node " + std::to_string(id) + " " + how + " index " +
                  std::to_string(index) + " holding another state than the first node that "
                  "applied it",
              id);
  }
}

void Simulation::drain_replies(NodeId id) {
  Node& n = *nodes_.at(id);
  if (!n.core) return;
  for (const engine::ClientReply& r : n.core->take_replies()) {
    auto& proposals = proposals_[id];
    if (auto p = proposals.find(r.ticket); p != proposals.end()) {
      const std::string data = std::move(p->second);
      proposals.erase(p);
      on_proposal_reply(id, r, data);
      continue;
    }
    auto& calls = calls_[id];
    auto c = calls.find(r.ticket);
    ANYA_ASSERT(c != calls.end());  // every ticket is answered once, by the node it went to
    const Call call = c->second;
    calls.erase(c);
    if (call.utxo) {
      utxo_reply(id, call, r);
    } else {
      client_reply(id, call, r);
    }
  }
}

void Simulation::on_proposal_reply(NodeId id, const engine::ClientReply& r,
                                   const std::string& data) {
  (void)id;
  if (!r.status.is_ok()) return;
  // Acknowledged: the entry applied at its index with the term it was proposed in.
  acked_[r.revision] = data;
  if (liveness_phase_ && liveness_target_ == 0) liveness_target_ = r.revision;
}

NodeId Simulation::believed_leader() const {
  // The client's view: the leader of the highest term among live nodes that think they lead.
  NodeId best = engine::kNoNode;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n->host && n->host->raft().is_leader() && n->host->raft().term() >= best_term) {
      best = id;
      best_term = n->host->raft().term();
    }
  }
  return best;
}

// The leader a client can call: a paused (stopped) process takes no call.
NodeId Simulation::callable_leader() const {
  const NodeId leader = believed_leader();
  return leader != engine::kNoNode && paused(leader) ? engine::kNoNode : leader;
}

// ---- the client --------------------------------------------------------------------------

void Simulation::propose() {
  // After healing the client keeps writing at least every 100 ms: liveness needs a new commit.
  const std::uint64_t every_ms =
      liveness_phase_ ? std::min<std::uint64_t>(options_.propose_every_ms, 100)
                      : options_.propose_every_ms;
  schedule(now_us_ + every_ms * kMs, Event{EventKind::propose, 0, 0, {}});
  if (!up(client_target_) || paused(client_target_)) {
    client_target_ = rng_.between(1, max_id());
    return;
  }
  Node& n = *nodes_.at(client_target_);
  // A put of a unique value to one of a few keys of its own (the KV clients use others).
  const std::uint64_t k = ++client_counter_;
  const std::string data = engine::encode_command(engine::KvCommand::put(
      "p" + std::to_string(k % 4), "s" + std::to_string(options_.seed) + "-" + std::to_string(k)));
  result_.stats.proposals++;
  if (!n.host->raft().is_leader()) {
    // Follow the leader hint, as a real client would; otherwise try someone else.
    const NodeId hint = n.host->raft().leader();
    client_target_ = hint != engine::kNoNode ? hint : rng_.between(1, max_id());
    return;
  }
  const engine::Ticket t = next_ticket_++;
  proposals_[n.id][t] = data;
  n.core->submit_write(t, *engine::decode_command(data));
  (void)n.core->flush();
  after_node_event(n.id);
}

// ---- faults ------------------------------------------------------------------------------

void Simulation::schedule_fault(FaultKind kind, bool first) {
  const FaultProfile& f = options_.faults;
  std::uint64_t every = 0;
  switch (kind) {
    case FaultKind::crash: every = f.crash_every_ms; break;
    case FaultKind::pause: every = f.pause_every_ms; break;
    case FaultKind::partition: every = f.partition_every_ms; break;
    case FaultKind::clog: every = f.clog_every_ms; break;
    case FaultKind::clock_jump: every = f.clock_jump_every_ms; break;
    case FaultKind::transfer: every = f.transfer_every_ms; break;
    case FaultKind::chain_stall: every = chain_on() ? options_.chain_stall_every_ms : 0; break;
    case FaultKind::count: return;
  }
  if (every == 0) return;
  const std::uint64_t delay_ms = rng_.between(first ? 0 : 1, 2 * every);
  schedule(now_us_ + delay_ms * kMs,
           Event{EventKind::fault, 0, static_cast<std::uint64_t>(kind), {}});
}

void Simulation::inject(FaultKind kind) {
  const FaultProfile& f = options_.faults;
  // Half the time the fault hits the leader: its failures are the ones that test the protocol.
  const NodeId leader = believed_leader();
  const NodeId target = leader != engine::kNoNode && rng_.chance(1, 2)
                            ? leader
                            : rng_.between(1, max_id());
  Node& n = *nodes_.at(target);
  switch (kind) {
    case FaultKind::crash:
      if (!n.host) return;
      crash_node(target, f.torn_write_ppm, "injected crash");
      schedule(now_us_ + rng_.between(f.down_min_ms, f.down_max_ms) * kMs,
               Event{EventKind::restart, target, 0, {}});
      return;
    case FaultKind::pause: {
      if (!n.host || paused(target)) return;
      n.paused_until_us = now_us_ + rng_.between(f.pause_min_ms, f.pause_max_ms) * kMs;
      result_.stats.pauses++;
      if (timeline_) timeline_->mark(now_us_, target, Timeline::Mark::pause, "");
      schedule(n.paused_until_us, Event{EventKind::resume, target, 0, {}});
      return;
    }
    case FaultKind::partition: {
      if (network_.partitioned() || max_id() < 2) return;
      const auto shape = static_cast<PartitionKind>(
          rng_.below(static_cast<std::uint64_t>(PartitionKind::count)));
      network_.set_partition(make_partition(shape, max_id(), rng_, leader));
      partition_started_us_ = now_us_;
      result_.stats.partitions++;
      schedule(now_us_ + rng_.between(f.partition_min_ms, f.partition_max_ms) * kMs,
               Event{EventKind::heal, 0, 0, {}});
      return;
    }
    case FaultKind::clog: {
      if (max_id() < 2) return;
      NodeId to = rng_.between(1, max_id() - 1);
      if (to >= target) to++;
      network_.clog(target, to, now_us_ + rng_.between(f.clog_min_ms, f.clog_max_ms) * kMs);
      return;
    }
    case FaultKind::clock_jump: {
      const std::uint64_t jump_ms = rng_.between(1, f.clock_jump_max_ms);
      n.clock.jump_forward(jump_ms * kMs);
      last_clock_jump_us_ = now_us_;
      result_.stats.clock_jumps++;
      if (timeline_) {
        timeline_->mark(now_us_, target, Timeline::Mark::clock_jump,
                        "+" + std::to_string(jump_ms) + " ms");
      }
      if (n.host) schedule_wakeup(target);
      return;
    }
    case FaultKind::transfer: {
      const NodeId from = callable_leader();
      if (from == engine::kNoNode) return;
      Result<NodeId> to = nodes_.at(from)->core->transfer_leadership(std::nullopt);
      if (to) {
        result_.stats.transfers++;
        if (timeline_) {
          timeline_->mark(now_us_, from, Timeline::Mark::membership,
                          "transfer to " + std::to_string(*to));
        }
      }
      after_node_event(from);
      return;
    }
    case FaultKind::chain_stall:
      chain_stall(target, rng_.between(options_.chain_stall_min_ms, options_.chain_stall_max_ms));
      return;
    case FaultKind::count: return;
  }
}

void Simulation::run_script_step(const ScriptStep& step) {
  const NodeId leader = believed_leader();
  switch (step.action) {
    case ScriptAction::crash_leader:
    case ScriptAction::crash_leader_torn:
      if (leader == engine::kNoNode) return;
      crash_node(leader, step.action == ScriptAction::crash_leader_torn ? 1'000'000 : 0,
                 "scripted crash of the leader");
      schedule(now_us_ + step.param * kMs, Event{EventKind::restart, leader, 0, {}});
      return;
    case ScriptAction::isolate_follower: {
      std::vector<NodeId> followers;
      for (NodeId other = 1; other <= max_id(); other++) {
        if (other != leader && up(other)) followers.push_back(other);
      }
      if (leader == engine::kNoNode || followers.empty()) return;
      const NodeId f = followers[rng_.below(followers.size())];
      Partition p;
      p.kind = PartitionKind::isolate_one;
      for (NodeId other = 1; other <= max_id(); other++) {
        if (other == f) continue;
        p.blocked.insert({f, other});
        p.blocked.insert({other, f});
      }
      p.describe = "isolate follower " + std::to_string(f);
      network_.set_partition(std::move(p));
      partition_started_us_ = now_us_;
      result_.stats.partitions++;
      schedule(now_us_ + step.param * kMs, Event{EventKind::heal, 0, 0, {}});
      return;
    }
    case ScriptAction::isolate_leader:
      if (leader == engine::kNoNode || max_id() < 2) return;
      {
        Partition p;
        p.kind = PartitionKind::isolate_one;
        for (NodeId other = 1; other <= max_id(); other++) {
          if (other == leader) continue;
          p.blocked.insert({leader, other});
          p.blocked.insert({other, leader});
        }
        p.describe = "isolate leader " + std::to_string(leader);
        network_.set_partition(std::move(p));
      }
      partition_started_us_ = now_us_;
      result_.stats.partitions++;
      schedule(now_us_ + step.param * kMs, Event{EventKind::heal, 0, 0, {}});
      return;
    case ScriptAction::partition:
      network_.set_partition(
          make_partition(static_cast<PartitionKind>(step.param), max_id(), rng_));
      partition_started_us_ = now_us_;
      result_.stats.partitions++;
      schedule(now_us_ + step.param2 * kMs, Event{EventKind::heal, 0, 0, {}});
      return;
    case ScriptAction::pause_leader:
      if (leader == engine::kNoNode) return;
      nodes_.at(leader)->paused_until_us = now_us_ + step.param * kMs;
      result_.stats.pauses++;
      if (timeline_) timeline_->mark(now_us_, leader, Timeline::Mark::pause, "scripted");
      schedule(now_us_ + step.param * kMs, Event{EventKind::resume, leader, 0, {}});
      return;
    case ScriptAction::clock_jump_all:
      last_clock_jump_us_ = now_us_;
      for (auto& [id, n] : nodes_) {
        n->clock.jump_forward(step.param * kMs);
        result_.stats.clock_jumps++;
        if (timeline_) timeline_->mark(now_us_, id, Timeline::Mark::clock_jump, "scripted");
        if (n->host) schedule_wakeup(id);
      }
      return;
    case ScriptAction::restart_node:
      if (step.param < 1 || step.param > max_id()) return;
      crash_node(step.param, 0, "scripted restart");
      schedule(now_us_ + step.param2 * kMs, Event{EventKind::restart, step.param, 0, {}});
      return;
    case ScriptAction::remove_leader: {
      if (callable_leader() == engine::kNoNode) return;  // no leader, or a paused one
      const engine::Membership& m = nodes_.at(leader)->host->raft().membership();
      if (m.voters.size() <= 1) return;
      auto r = conf_change(leader, {engine::ConfChangeOp::remove, leader, ""});
      if (r) result_.stats.membership_changes++;
      if (r && timeline_) {
        timeline_->mark(now_us_, leader, Timeline::Mark::membership, "leader removes itself");
      }
      after_node_event(leader);
      return;
    }
    case ScriptAction::arm_config_crash:
      ANYA_ASSERT(step.param == 1 || step.param == 2);
      config_crash_armed_ = step.param;
      config_crash_down_ms_ = step.param2;
      config_crash_arms_[step.param]++;
      return;
    case ScriptAction::crash_voter_majority: return;  // dispatched apart: it retries
    case ScriptAction::chain_stall_leader:
      if (chain_on() && leader != engine::kNoNode) chain_stall(leader, step.param);
      return;
    case ScriptAction::chain_stall_follower:
    case ScriptAction::chain_blind_follower: {
      if (!chain_on()) return;  // without chain views there is nothing to stall
      std::vector<NodeId> followers;
      for (NodeId other = 1; other <= max_id(); other++) {
        if (other != leader && up(other)) followers.push_back(other);
      }
      if (followers.empty()) return;
      const NodeId f = followers[rng_.below(followers.size())];
      if (step.action == ScriptAction::chain_stall_follower) {
        chain_stall(f, step.param);
      } else {
        chain_blind(f, step.param);
      }
      return;
    }
    case ScriptAction::flap_link: {
      Partition p;
      p.kind = PartitionKind::one_way;
      p.blocked.insert({step.param, step.param2});
      p.blocked.insert({step.param2, step.param});
      p.describe = "link " + std::to_string(step.param) + "-" + std::to_string(step.param2) +
                   " down";
      if (!network_.partitioned()) network_.set_partition(std::move(p));
      schedule(now_us_ + 100 * kMs, Event{EventKind::unflap, 0, 0, {}});
      return;
    }
  }
}

// ---- phases ------------------------------------------------------------------------------

void Simulation::start_liveness() {
  liveness_phase_ = true;
  faults_on_ = false;
  liveness_started_us_ = now_us_;
  if (network_.partitioned() && timeline_) {
    timeline_->partition(partition_started_us_, now_us_, network_.partition().describe);
  }
  network_.heal_partition();
  network_.unclog_all();
  if (timeline_) timeline_->mark(now_us_, engine::kNoNode, Timeline::Mark::liveness, "");
  for (auto& [id, n] : nodes_) {
    if (paused(id)) {
      n->paused_until_us = now_us_;
      schedule(now_us_, Event{EventKind::resume, id, 0, {}});
    }
    if (!n->host && !n->dead) schedule(now_us_, Event{EventKind::restart, id, 0, {}});
    // Healed: every backend catches up and every probe works again; the views converge.
    if (chain_on() && n->chain_stalled_until_us != 0) {
      n->chain_stalled_until_us = now_us_;
      schedule(now_us_, Event{EventKind::chain_restore, id, 0, {}});
    }
    if (chain_on() && n->chain_blind) schedule(now_us_, Event{EventKind::chain_restore, id, 1, {}});
  }
  schedule(now_us_ + kLivenessCheckEveryUs, Event{EventKind::check_liveness, 0, 0, {}});
  schedule(now_us_ + kMs, Event{EventKind::propose, 0, 0, {}});
}

void Simulation::check_liveness() {
  const NodeId leader = believed_leader();
  bool converged = leader != engine::kNoNode && liveness_target_ != 0;
  if (converged) {
    const Term term = nodes_.at(leader)->host->raft().term();
    const engine::Membership& members = nodes_.at(leader)->host->raft().membership();
    for (const auto& [id, n] : nodes_) {
      if (n->dead || !members.contains(id)) continue;  // removed nodes are not waited for
      if (!n->host || n->host->raft().term() != term || n->host->raft().leader() != leader ||
          n->host->raft().log().applied() < liveness_target_) {
        converged = false;
        break;
      }
    }
  }
  if (converged) {
    // Every live member runs the same configuration version once the cluster has settled.
    const engine::ConfigState& lead = nodes_.at(leader)->host->config_state();
    const engine::Membership& members = nodes_.at(leader)->host->raft().membership();
    for (const auto& [id, n] : nodes_) {
      if (n->dead || !members.contains(id) || lead.staged().has_value()) continue;
      if (n->host->config_state().active_version() != lead.active_version()) {
        converged = false;  // still applying; the bound below decides
        break;
      }
    }
  }
  // A compare-and-set race still running must end, one way or the other, once healed; and in
  // many-learners the leader must report every learner reachable, caught up and as healthy as
  // it says it is.
  if (converged && race_) converged = false;
  if (converged && options_.learners > 0 && !learners_reported_ok(leader)) converged = false;
  if (converged) {
    result_.stats.liveness_recovery_ms = (now_us_ - liveness_started_us_) / kMs;
    // Every write acknowledged to the client, during faults or after, is still there.
    const auto& log = nodes_.at(leader)->host->raft().log();
    for (const auto& [index, data] : acked_) {
      // Compacted away: folded into the state every node agrees on (check_digest), and the
      // ack was given when this data was applied at this index.
      if (index < log.first_index()) continue;
      if (index > log.last_index() || log.at(index).data != data) {
        violation("acknowledged write lost: index " + std::to_string(index) + " (" + data +
                      ") is not in the final leader's log",
                  leader);
        return;
      }
    }
    done_ = true;
    return;
  }
  if (now_us_ - liveness_started_us_ >= options_.liveness_ms * kMs) {
    std::string state;
    for (const auto& [id, n] : nodes_) {
      state += " n" + std::to_string(id) + "=";
      if (n->dead) { state += "dead"; continue; }
      if (!n->host) { state += "down"; continue; }
      const auto& r = n->host->raft();
      state += std::string(engine::role_name(r.role())) + "/t" + std::to_string(r.term()) +
               "/lead" + std::to_string(r.leader()) + "/applied" +
               std::to_string(r.log().applied()) + "/voters";
      for (NodeId v : r.membership().voters) state += "." + std::to_string(v);
    }
    if (race_) {
      state += " race" + std::to_string(race_->number) + ":expects" +
               std::to_string(race_->expected_version) + ",won" +
               std::to_string(race_->clients[0].won_version) + "/" +
               std::to_string(race_->clients[1].won_version);
    }
    if (options_.learners > 0) state += " learners_reported=" +
                                        std::to_string(result_.stats.learners_reported);
    violation("liveness: no leader with a new commit on every live node " +
                  std::to_string(options_.liveness_ms) + " ms after healing;" + state +
                  " target=" + std::to_string(liveness_target_),
              engine::kNoNode);
    return;
  }
  schedule(now_us_ + kLivenessCheckEveryUs, Event{EventKind::check_liveness, 0, 0, {}});
}

// ---- membership --------------------------------------------------------------------------

bool Simulation::can_lose_for_good(NodeId id) const {
  for (const auto& [other, n] : nodes_) {
    const std::set<NodeId>& voters = n->last_voters;
    if (voters.count(id) == 0) continue;
    std::size_t live = 0;
    for (NodeId v : voters) live += (v != id && !nodes_.at(v)->dead);
    if (2 * live <= voters.size()) return false;
  }
  return true;
}

void Simulation::change_membership() {
  const NodeId leader = callable_leader();
  if (leader == engine::kNoNode) return;
  const engine::Raft& raft = nodes_.at(leader)->host->raft();
  const engine::Membership& m = raft.membership();
  engine::ConfChange change;
  if (!m.learners.empty() && rng_.chance(2, 3)) {
    change = {engine::ConfChangeOp::promote, *m.learners.begin(), ""};
  } else if (max_id() < options_.max_nodes && rng_.chance(1, 2)) {
    const NodeId id = add_node();
    start_node(id);
    change = {engine::ConfChangeOp::add_learner, id, "sim:" + std::to_string(id)};
  } else {
    // Remove a member, the leader included, while enough live voters would remain.
    std::vector<NodeId> members(m.voters.begin(), m.voters.end());
    members.insert(members.end(), m.learners.begin(), m.learners.end());
    const NodeId victim = members[rng_.below(members.size())];
    std::size_t live_voters_after = 0;
    for (NodeId v : m.voters) live_voters_after += (v != victim && !nodes_.at(v)->dead);
    const std::size_t voters_after = m.voters.size() - m.voters.count(victim);
    if (voters_after == 0 || 2 * live_voters_after <= voters_after) return;
    // Nor may a configuration arise whose only live voters are down for good.
    for (const auto& [id, n] : nodes_) {
      if (n->dead && m.voters.count(id) != 0) return;  // remove the dead first, one at a time
    }
    change = {engine::ConfChangeOp::remove, victim, ""};
  }
  Result<Index> index = conf_change(leader, change);
  if (index) {
    result_.stats.membership_changes++;
    if (timeline_) {
      timeline_->mark(now_us_, change.node, Timeline::Mark::membership,
                      std::string(engine::conf_change_op_name(change.op)) + " proposed");
    }
  }
  after_node_event(leader);
}

// ---- configuration 2PC -------------------------------------------------------------------

void Simulation::write_config() {
  const NodeId leader = callable_leader();
  if (leader == engine::kNoNode) return;
  engine::Host& host = *nodes_.at(leader)->host;
  const std::uint64_t active = host.config_state().active_version();
  // Mostly a compare-and-set on the version the client last saw; sometimes a stale one (a
  // concurrent writer lost), sometimes none; sometimes a rollback to an older version.
  std::optional<std::uint64_t> if_version = active;
  if (rng_.chance(1, 5)) if_version = active > 0 ? active - 1 : 1;
  if (rng_.chance(1, 5)) if_version.reset();
  Result<std::uint64_t> version = Status(Errc::busy, "");
  const auto& history = host.config_state().history();
  if (!history.empty() && rng_.chance(1, 6)) {
    version = host.rollback_config(history[rng_.below(history.size())].version, if_version);
  } else {
    std::string doc = "{\"seed\":" + std::to_string(options_.seed) + ",\"n\":" +
                      std::to_string(++client_counter_) + ",\"note\":\"";
    if (rng_.chance(options_.config_reject_ppm, 1'000'000)) {
      doc += "reject:" + std::to_string(rng_.between(1, max_id())) + ";";
    }
    doc += "\"}";
    version = host.put_config(std::move(doc), if_version);
  }
  if (version) {
    result_.stats.config_writes++;
    config_begun_us_[*version] = now_us_;
    if (config_crash_armed_ == 1) arm_prepare_crash(leader, *version);
    // A leader crashing mid-transaction is the case the protocol must survive.
    if (faults_on_ && rng_.chance(options_.faults.crash_new_leader_ppm, 1'000'000)) {
      schedule(now_us_ + rng_.between(0, 3 * options_.link.latency_max_us),
               Event{EventKind::crash, leader, 0, {}});
    }
  }
  after_node_event(leader);
}

void Simulation::check_config(NodeId id) {
  Node& n = *nodes_.at(id);
  const engine::ConfigState& st = n.host->config_state();
  // A leader that has just proposed its COMMIT (or ABORT) sometimes dies before it commits.
  const engine::ConfigCoordinator& coordinator = n.host->config_coordinator();
  if (config_crash_armed_ == 2 && n.host->raft().is_leader() && coordinator.decided()) {
    arm_commit_crash(id);
  }
  if (faults_on_ && n.host->raft().is_leader() && coordinator.decided() &&
      coordinator.open_version() != commit_crash_considered_) {
    commit_crash_considered_ = coordinator.open_version();
    if (rng_.chance(options_.faults.crash_new_leader_ppm, 1'000'000)) {
      schedule(now_us_ + rng_.between(0, 2 * options_.link.latency_max_us),
               Event{EventKind::crash, id, 0, {}});
    }
  }
  auto same_document = [&](std::uint64_t version, const std::string& doc) {
    const std::uint64_t h = mix(0x51ed, std::hash<std::string>{}(doc));
    auto [it, inserted] = config_doc_hash_.emplace(version, h);
    if (!inserted && it->second != h) {
      violation("config: two different documents share version " + std::to_string(version),
                id);
    }
  };
  const std::uint64_t staged = st.staged() ? st.staged()->version : 0;
  if (st.staged()) same_document(staged, st.staged()->document);
  if (n.last_staged_version != 0 && n.last_staged_version != staged &&
      st.find_in_history(n.last_staged_version) == nullptr &&
      st.active_version() < n.last_staged_version + 1 &&
      config_activated_.count(n.last_staged_version) == 0) {
    // It left the staging area without being activated here: it was aborted.
    if (config_aborted_.insert(n.last_staged_version).second) result_.stats.config_aborted++;
  }
  n.last_staged_version = staged;
  const std::uint64_t active = st.active_version();
  if (active < n.last_config_version) {
    violation("config: active version went back from " + std::to_string(n.last_config_version) +
                  " to " + std::to_string(active), id);
  }
  if (active != n.last_config_version && active != 0) {
    same_document(active, st.active_document());
    race_note_activation(id, active, st.active_document());
    auto begun = config_begun_us_.find(active);
    if (begun != config_begun_us_.end()) {
      // Converged when every member of the current configuration runs it.
      auto& on = config_active_on_[active];
      on.insert(id);
      const engine::Membership& members = n.host->raft().membership();
      const bool all = std::all_of(members.voters.begin(), members.voters.end(),
                                   [&](NodeId v) { return on.count(v) != 0; }) &&
                       std::all_of(members.learners.begin(), members.learners.end(),
                                   [&](NodeId v) { return on.count(v) != 0; });
      if (all) {
        result_.stats.config_converge_ms.push_back((now_us_ - begun->second) / kMs);
        config_begun_us_.erase(begun);
      }
    }
    config_activated_.insert(active);
    result_.stats.config_activated = std::max(result_.stats.config_activated, active);
  }
  for (const auto& h : st.history()) {
    config_activated_.insert(h.version);
    if (config_aborted_.count(h.version) != 0) {
      violation("config: version " + std::to_string(h.version) + " activated after an abort",
                id);
    }
  }
  n.last_config_version = active;
}

// ---- forced crashes in a configuration phase ---------------------------------------------

// The PREPARE that put_config has just appended is the leader's last entry: crash the leader
// before any follower's ack can come back (two one-way latencies), so it cannot have committed.
void Simulation::arm_prepare_crash(NodeId leader, std::uint64_t version) {
  const engine::RaftLog& log = nodes_.at(leader)->host->raft().log();
  schedule_config_crash(leader, log.last_index(), engine::ConfigRecordKind::prepare, version);
}

// The coordinator has decided: if what it proposed is a COMMIT still uncommitted in the
// leader's log tail, crash the leader before the COMMIT can commit. An ABORT does not count.
void Simulation::arm_commit_crash(NodeId leader) {
  const engine::Host& host = *nodes_.at(leader)->host;
  const engine::RaftLog& log = host.raft().log();
  const std::uint64_t version = host.config_coordinator().open_version();
  const Index lowest = std::max({log.committed() + 1, log.first_index(),
                                 log.last_index() > kCommitSearchEntries
                                     ? log.last_index() - kCommitSearchEntries
                                     : Index{1}});
  for (Index i = log.last_index(); i >= lowest && i > 0; i--) {
    if (uncommitted_config_record(leader, i, engine::ConfigRecordKind::commit, version)) {
      schedule_config_crash(leader, i, engine::ConfigRecordKind::commit, version);
      return;
    }
  }
}

void Simulation::schedule_config_crash(NodeId leader, Index index, engine::ConfigRecordKind kind,
                                       std::uint64_t version) {
  config_crash_armed_ = 0;  // one crash per arm; re-armed if the situation is gone by then
  pending_config_crash_ = PendingConfigCrash{leader, index, kind, version};
  schedule(now_us_ + rng_.between(0, 2 * options_.link.latency_min_us),
           Event{EventKind::config_crash, leader, 0, {}});
}

bool Simulation::uncommitted_config_record(NodeId id, Index index, engine::ConfigRecordKind kind,
                                           std::uint64_t version) const {
  const Node& n = *nodes_.at(id);
  if (!n.host) return false;
  const engine::RaftLog& log = n.host->raft().log();
  if (index < log.first_index() || index > log.last_index() || index <= log.committed()) {
    return false;
  }
  const Entry& e = log.at(index);
  if (e.type != engine::EntryType::config_txn) return false;
  Result<engine::ConfigRecord> record = engine::decode_config_record(e.data);
  return record && record->kind == kind && record->version == version;
}

void Simulation::config_crash() {
  if (!pending_config_crash_) return;
  const PendingConfigCrash p = *pending_config_crash_;
  pending_config_crash_.reset();
  const std::uint64_t phase = p.kind == engine::ConfigRecordKind::prepare ? 1 : 2;
  if (liveness_phase_) return;
  if (!uncommitted_config_record(p.node, p.index, p.kind, p.version)) {
    if (config_crash_armed_ == 0) config_crash_armed_ = phase;  // try the next transaction
    return;
  }
  const bool prepare = phase == 1;
  crash_node(p.node, options_.faults.torn_write_ppm,
             prepare ? "forced crash: PREPARE proposed, not committed"
                     : "forced crash: COMMIT proposed, not committed");
  (prepare ? result_.stats.config_crashes_in_prepare : result_.stats.config_crashes_in_commit)++;
  schedule(now_us_ + config_crash_down_ms_ * kMs, Event{EventKind::restart, p.node, 0, {}});
}

// ---- compare-and-set races ---------------------------------------------------------------

void Simulation::config_race(std::uint64_t param) {
  if (param != kRaceStart) {
    race_attempt(static_cast<std::size_t>(param));
    return;
  }
  if (liveness_phase_) return;  // no new race once healed; the one running still ends
  schedule(now_us_ + rng_.between(1, 2 * options_.config_race_every_ms) * kMs,
           Event{EventKind::config_race, 0, kRaceStart, {}});
  const NodeId leader = callable_leader();
  if (race_ || leader == engine::kNoNode) return;
  // A client reads the version from a leader that has applied every activation; a new leader
  // still catching up would hand both clients a stale one.
  const std::uint64_t applied = nodes_.at(leader)->host->config_state().active_version();
  if (!config_activated_.empty() && applied < *config_activated_.rbegin()) return;
  // Both clients read the same version, then write at (nearly) the same moment.
  Race race;
  race.number = ++races_begun_;
  race.expected_version = applied;
  for (std::size_t c = 0; c < 2; c++) {
    race.clients[c].document = "{\"seed\":" + std::to_string(options_.seed) + ",\"race\":" +
                               std::to_string(race.number) + ",\"client\":" +
                               std::to_string(c) + "}";
  }
  race_ = std::move(race);
  schedule(now_us_, Event{EventKind::config_race, 0, 0, {}});
  schedule(now_us_ + rng_.between(0, options_.link.latency_max_us),
           Event{EventKind::config_race, 0, 1, {}});
}

// One client's try: write with the version both read; on busy or no leader, try again soon,
// as a real client would; a write that began polls until its document wins or is refused.
void Simulation::race_attempt(std::size_t client) {
  if (!race_ || race_->clients[client].done()) return;
  const auto retry = [&] {
    schedule(now_us_ + rng_.between(10, 30) * kMs,
             Event{EventKind::config_race, 0, client, {}});
  };
  const NodeId leader = callable_leader();
  if (leader == engine::kNoNode) return retry();
  const std::string document = race_->clients[client].document;
  Result<std::uint64_t> version =
      nodes_.at(leader)->host->put_config(document, race_->expected_version);
  if (version) {
    result_.stats.config_writes++;
    config_begun_us_[*version] = now_us_;
  } else if (version.status().code() == Errc::conflict) {
    // With one voter, put_config first finishes the other writer's open transaction, which
    // commits inside the same call: note that win before judging the refusal it explains.
    const engine::ConfigState& st = nodes_.at(leader)->host->config_state();
    if (st.active_version() != 0) {
      race_note_activation(leader, st.active_version(), st.active_document());
    }
    race_conflict(client, leader, version.status());
  }
  after_node_event(leader);
  if (!race_ || done_) return;
  if (race_->clients[0].done() && race_->clients[1].done()) return race_finish();
  if (!race_->clients[client].done()) retry();
}

void Simulation::race_conflict(std::size_t client, NodeId leader, const Status& status) {
  // The refusal must name the current version: the one the other client's document took.
  const std::string& message = status.message();
  const std::string prefix = "config version is ";
  std::uint64_t named = 0;
  std::size_t at = prefix.size();
  const bool names = message.compare(0, prefix.size(), prefix) == 0 && message.size() > at &&
                     std::isdigit(static_cast<unsigned char>(message[at]));
  while (names && at < message.size() && std::isdigit(static_cast<unsigned char>(message[at]))) {
    named = named * 10 + static_cast<std::uint64_t>(message[at++] - '0');
  }
  const std::uint64_t current = nodes_.at(leader)->host->config_state().active_version();
  const RaceClient& other = race_->clients[1 - client];
  const std::string who = "config race " + std::to_string(race_->number) + ": client " +
                          std::to_string(client) + " (expecting version " +
                          std::to_string(race_->expected_version) + ")";
  if (!names || named != current) {
    return violation(who + " was refused with a conflict that does not name the current "
                               "version " + std::to_string(current) + ": \"" + message + "\"",
                     leader);
  }
  // Its own write, begun by an earlier try, won in the same call that refused this poll.
  if (race_->clients[client].won_version == named) return;
  if (other.won_version != named) {
    return violation(who + " was refused: version " + std::to_string(named) +
                         " is current, but that is not the other writer's document (it won "
                         "version " + std::to_string(other.won_version) + ")",
                     leader);
  }
  race_->clients[client].conflict = true;
}

void Simulation::race_note_activation(NodeId id, std::uint64_t version, const std::string& doc) {
  if (!race_) return;
  for (std::size_t c = 0; c < 2; c++) {
    RaceClient& rc = race_->clients[c];
    if (doc != rc.document) continue;
    if (rc.conflict) {
      return violation("config race " + std::to_string(race_->number) + ": client " +
                           std::to_string(c) + " was refused, yet its document became version " +
                           std::to_string(version),
                       id);
    }
    if (rc.won_version == 0) rc.won_version = version;
  }
  if (race_->clients[0].won_version != 0 && race_->clients[1].won_version != 0) {
    violation("config race " + std::to_string(race_->number) + ": both writers expecting " +
                  "version " + std::to_string(race_->expected_version) + " won (versions " +
                  std::to_string(race_->clients[0].won_version) + " and " +
                  std::to_string(race_->clients[1].won_version) + ")",
              id);
  }
}

void Simulation::race_finish() {
  // race_conflict and race_note_activation already refuse two winners and a conflict without
  // a winner, so a finished race has exactly one of each.
  const std::size_t winner = race_->clients[0].won_version != 0 ? 0 : 1;
  ANYA_ASSERT(race_->clients[winner].won_version != 0 && race_->clients[1 - winner].conflict);
  result_.stats.config_races++;
  result_.stats.config_race_wins++;
  result_.stats.config_race_conflicts++;
  race_.reset();
}

// ---- learners and quorum outages ---------------------------------------------------------

// Add the next learner (or re-add one whose add_learner entry was lost with a leader).
void Simulation::grow_learners() {
  const NodeId leader = callable_leader();
  if (leader == engine::kNoNode) return;
  const engine::Membership& m = nodes_.at(leader)->host->raft().membership();
  NodeId id = engine::kNoNode;
  for (NodeId candidate = options_.nodes + 1; candidate <= max_id(); candidate++) {
    if (!m.contains(candidate)) {
      id = candidate;
      break;
    }
  }
  const bool fresh = id == engine::kNoNode;
  if (fresh && max_id() >= options_.nodes + options_.learners) return;
  if (fresh) id = max_id() + 1;
  Result<Index> index =
      conf_change(leader, {engine::ConfChangeOp::add_learner, id, "sim:" + std::to_string(id)});
  if (index) {
    result_.stats.membership_changes++;
    if (fresh) {
      ANYA_ASSERT(add_node() == id);
      start_node(id);
    }
    if (timeline_) timeline_->mark(now_us_, id, Timeline::Mark::membership, "learner joins");
  }
  after_node_event(leader);
}

void Simulation::crash_voter_majority(std::size_t step_index) {
  const NodeId leader = believed_leader();
  if (leader == engine::kNoNode || outage_active_) {
    schedule(now_us_ + 100 * kMs, Event{EventKind::script, 0, step_index, {}});
    return;
  }
  const ScriptStep& step = options_.script[step_index];
  const engine::Membership& m = nodes_.at(leader)->host->raft().membership();
  std::uint64_t live_learners = 0;
  for (NodeId l : m.learners) live_learners += up(l);
  // Every voter set some node holds may be the one in effect (a change may be uncommitted, or
  // committed without every node knowing): the outage must leave a minority of each one up.
  std::set<std::set<NodeId>> configs;
  std::set<NodeId> all_voters;
  for (const auto& [id, n] : nodes_) {
    if (n->last_voters.empty()) continue;
    configs.insert(n->last_voters);
    all_voters.insert(n->last_voters.begin(), n->last_voters.end());
  }
  configs.insert(m.voters);
  all_voters.insert(m.voters.begin(), m.voters.end());
  std::vector<NodeId> others;
  for (NodeId v : all_voters) {
    if (v != leader && up(v)) others.push_back(v);
  }
  for (std::size_t i = others.size(); i > 1; i--) {
    std::swap(others[i - 1], others[rng_.below(i)]);
  }
  // The leader goes down (acks in flight to it die with it), then voters until a minority of
  // every configuration is up.
  std::set<NodeId> down{leader};
  auto majority_up = [&](const std::set<NodeId>& voters) {
    std::size_t n_up = 0;
    for (NodeId v : voters) n_up += up(v) && down.count(v) == 0;
    return 2 * n_up > voters.size();
  };
  for (NodeId v : others) {
    if (std::none_of(configs.begin(), configs.end(), majority_up)) break;
    down.insert(v);
  }
  for (NodeId v : down) {
    crash_node(v, 0, "quorum outage: a majority of the voters is down");
    schedule(now_us_ + step.param * kMs, Event{EventKind::restart, v, 0, {}});
  }
  outage_active_ = true;
  outage_configs_ = configs;
  // An entry a majority already holds may still be found committed during the outage: the acks
  // that prove it can be in flight, or queued at a paused leader that wakes up still leading.
  // Only an index past every such entry would be a commit without a quorum.
  Index held = 0;
  for (const std::set<NodeId>& voters : configs) held = std::max(held, majority_held_index(voters));
  outage_commit_mark_ = std::max(result_.stats.max_commit, held);
  result_.stats.quorum_outages++;
  result_.stats.outage_live_learners += live_learners;
}

// The highest index that a majority of `voters` held when last observed (an upper bound: a
// crash may since have lost unsynced entries, or a new leader overwritten them).
Index Simulation::majority_held_index(const std::set<NodeId>& voters) const {
  std::vector<Index> ends;
  for (NodeId v : voters) ends.push_back(nodes_.at(v)->last_index);
  std::sort(ends.begin(), ends.end(), std::greater<>());
  return ends.empty() ? 0 : ends[voters.size() / 2];
}

// While a majority of the voters is down, nothing commits: learners are not a quorum.
void Simulation::check_outage(NodeId id) {
  if (!outage_active_) return;
  std::string counts;
  for (const std::set<NodeId>& voters : outage_configs_) {
    std::size_t up_voters = 0;
    for (NodeId v : voters) up_voters += up(v);
    if (2 * up_voters > voters.size()) {
      outage_active_ = false;  // a majority of some configuration is back
      return;
    }
    counts += (counts.empty() ? "" : ", ") + std::to_string(up_voters) + " of " +
              std::to_string(voters.size());
  }
  const Index committed = nodes_.at(id)->host->raft().log().committed();
  if (committed > outage_commit_mark_) {
    violation("quorum: commit index " + std::to_string(committed) + " passed " +
                  std::to_string(outage_commit_mark_) + " with only " + counts +
                  " voters up in each configuration (learners must not count toward a quorum)",
              id);
  }
}

// The final leader reports every live learner reachable, caught up and with its own health.
bool Simulation::learners_reported_ok(NodeId leader) {
  std::uint64_t reported = 0;
  bool ok = true;
  for (const engine::MemberStatus& m : nodes_.at(leader)->host->raft().members()) {
    if (m.voter || nodes_.at(m.id)->dead) continue;
    const bool healthy = m.id % 2 != 0;
    if (m.reachable && m.match >= liveness_target_ && m.healthy == healthy) {
      reported++;
    } else {
      ok = false;
    }
  }
  result_.stats.learners_reported = reported;
  return ok;
}

// A scenario that scripts a situation must show it happened, or the run proves nothing.
Result<Index> Simulation::conf_change(NodeId leader, const engine::ConfChange& change) {
  engine::Host& host = *nodes_.at(leader)->host;
  const engine::Raft& raft = host.raft();
  // A new leader may change the membership only once an entry of its own term has committed:
  // before that, an older leader's change may still be in flight (the single-server change
  // bug Raft's authors found, fixed by the new leader's no-op).
  const bool term_committed = raft.log().term_at(raft.log().committed()) == raft.term();
  Result<Index> index = host.propose_conf_change(change);
  if (index && !term_committed) {
    violation("membership: node " + std::to_string(leader) + " accepted a membership change " +
                  "in term " + std::to_string(raft.term()) + " before any entry of that term " +
                  "committed (commit " + std::to_string(raft.log().committed()) + ")",
              leader);
  }
  return index;
}

void Simulation::check_scenario_proofs() {
  const RunStats& s = result_.stats;
  if (options_.scenario == "follower-returns" && s.max_term > first_leader_term_) {
    violation("a follower returning from a partition raised the term of a healthy cluster from " +
                  std::to_string(first_leader_term_) + " to " + std::to_string(s.max_term),
              engine::kNoNode);
  }
  if (s.snapshots_installed < options_.min_snapshots_installed) {
    violation("scenario: " + std::to_string(s.snapshots_installed) + " snapshots installed, " +
                  "expected at least " + std::to_string(options_.min_snapshots_installed),
              engine::kNoNode);
  }
  if (config_crash_arms_[1] > 0 && s.config_crashes_in_prepare == 0) {
    violation("scenario: no leader was ever crashed with its PREPARE uncommitted",
              engine::kNoNode);
  }
  if (config_crash_arms_[2] > 0 && s.config_crashes_in_commit == 0) {
    violation("scenario: no leader was ever crashed with its COMMIT uncommitted",
              engine::kNoNode);
  }
  if (options_.config_race_every_ms > 0 && s.config_races == 0) {
    violation("scenario: no compare-and-set race was ever resolved", engine::kNoNode);
  }
  if (outage_steps_ > 0 && s.quorum_outages == 0) {
    violation("scenario: a majority of the voters was never down", engine::kNoNode);
  }
  const bool leader_stalls =
      std::any_of(options_.script.begin(), options_.script.end(), [](const ScriptStep& step) {
        return step.action == ScriptAction::chain_stall_leader;
      });
  if (leader_stalls && s.chain_handoffs == 0) {
    violation("scenario: no leader ever stopped leading while behind the chain",
              engine::kNoNode);
  }
  if (options_.learners > 0 && s.learners_reported < options_.learners) {
    violation("scenario: only " + std::to_string(s.learners_reported) + " of " +
                  std::to_string(options_.learners) + " learners joined and were reported",
              engine::kNoNode);
  }
}

// ---- checking ----------------------------------------------------------------------------

void Simulation::checker_observe(NodeId id) {
  Node& n = *nodes_.at(id);
  const engine::Raft& r = n.host->raft();
  checker_.observe(engine::NodeView{id, r.term(), r.role(), r.log().committed(),
                                    r.log().first_index(), r.log().entries(),
                                    n.disk.take_changed_from(), r.persisted_hard_state().term,
                                    r.persisted_hard_state().commit, r.log().snapshot_term()});
  if (!checker_.ok()) violation(checker_.violations().front().to_string(), id);
}

void Simulation::check_follower_commit(NodeId id) {
  // A follower commits only what it has verified to match its leader (§5.3: min(leader commit,
  // last new entry)): its commit index lies within the leader's log, on the same entry.
  const engine::Raft& f = nodes_.at(id)->host->raft();
  const NodeId leader = f.leader();
  if (leader == engine::kNoNode || leader == id || !up(leader)) return;
  const engine::Raft& l = nodes_.at(leader)->host->raft();
  if (!l.is_leader() || l.term() != f.term()) return;
  const Index commit = f.log().committed();
  if (commit == 0) return;
  const std::optional<Term> mine = f.log().term_at(commit);
  const std::optional<Term> theirs = l.log().term_at(commit);
  const bool beyond = commit > l.log().last_index();
  if (beyond || (mine && theirs && *mine != *theirs)) {
    violation("follower commit: node " + std::to_string(id) + " committed index " +
                  std::to_string(commit) + (beyond ? ", beyond its leader's log (last " +
                                                         std::to_string(l.log().last_index()) + ")"
                                                   : ", holding another entry than its leader") +
                  " in term " + std::to_string(f.term()),
              id);
  }
}

void Simulation::observe(NodeId id) {
  Node& n = *nodes_.at(id);
  const engine::Raft& r = n.host->raft();
  checker_observe(id);
  check_follower_commit(id);
  result_.stats.max_term = std::max(result_.stats.max_term, r.term());
  result_.stats.max_commit = std::max(result_.stats.max_commit, r.log().committed());
  if (r.leader() != n.last_leader && r.leader() != engine::kNoNode && r.leader() == id) {
    result_.stats.leader_changes++;
    if (first_leader_term_ == 0) first_leader_term_ = r.term();
    if (faults_on_ && rng_.chance(options_.faults.crash_new_leader_ppm, 1'000'000)) {
      schedule(now_us_ + rng_.between(0, 3 * options_.link.latency_max_us),
               Event{EventKind::crash, id, 0, {}});
    }
  }
  n.last_leader = r.leader();
  n.last_voters = r.membership().voters;
  check_config(id);
  check_chain(id);
  if (timeline_) {
    if (r.role() != n.last_role || r.term() != n.last_term) {
      timeline_->role(now_us_, id, r.role(), r.term());
    }
    if (r.log().committed() != n.last_commit) timeline_->commit(now_us_, id, r.log().committed());
  }
  n.last_role = r.role();
  n.last_term = r.term();
  n.last_commit = r.log().committed();
  n.last_index = r.log().last_index();
  check_outage(id);
  check_leases();
}

void Simulation::violation(const std::string& what, NodeId node) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.violation = what + " [seed " + std::to_string(options_.seed) + ", event " +
                      std::to_string(result_.stats.events) + ", t=" +
                      std::to_string(now_us_ / kMs) + " ms" +
                      (node != engine::kNoNode ? ", node " + std::to_string(node) : "") + "]";
  if (timeline_) timeline_->mark(now_us_, node, Timeline::Mark::violation, what);
  done_ = true;
}

}  // namespace anya::sim
