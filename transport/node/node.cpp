#include "transport/node/node.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <limits>
#include <random>

#include "engine/raft/membership.hpp"
#include "transport/node/node_metrics.hpp"
#include "transport/peer/peer_links.hpp"
#include "transport/tls/context.hpp"
#include "transport/wal/wal.hpp"

namespace anya::transport {

namespace asio = boost::asio;
using engine::Entry;
using engine::Index;
using engine::NodeId;

struct Node::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

namespace {
// Log entries kept below each snapshot (at most snapshot_entries).
constexpr std::uint64_t kKeepEntries = 512;

std::uint64_t steady_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
}  // namespace

Node::Node(asio::io_context& io, NodeConfig config, Logger log, NodeEvents events)
    : io_(io), config_(std::move(config)), log_(std::move(log)), events_(std::move(events)),
      metrics_(std::make_unique<NodeMetrics>()),
      tick_timer_(std::make_unique<Timer>(io)), shutdown_timer_(std::make_unique<Timer>(io)),
      failover_timer_(std::make_unique<Timer>(io)),
      clock_origin_us_(steady_us()) {
  ANYA_ASSERT(validate(config_).is_ok());
}

Node::~Node() = default;

std::uint64_t Node::now_ms() {
  // Starts at 1 s so that "0" never looks like a real time; monotonic by construction.
  return 1000 + (steady_us() - clock_origin_us_) / 1000;
}

Status Node::start(const std::string& admin_endpoint) {
  admin_endpoint_ = admin_endpoint;
  WalOptions wal_options;
  wal_options.dir = config_.data_dir / "wal";
  wal_options.segment_bytes = config_.segment_bytes;
  wal_options.fsync = config_.fsync;
  wal_options.on_fsync = [m = metrics_.get()](std::uint64_t micros) {
    m->wal_fsync_seconds->observe(static_cast<double>(micros) / 1e6);
  };
  Result<std::unique_ptr<Wal>> wal = Wal::open(wal_options);
  if (!wal) return wal.status();
  wal_ = std::move(*wal);
  if (wal_->recovery().torn_tail) {
    log_.warn("WAL recovery cut a torn tail: ", *wal_->recovery().torn_tail);
  }

  tls::TlsFiles files{config_.tls_ca, config_.tls_cert, config_.tls_key};
  auto server_tls = tls::make_context(files, tls::Side::server);
  if (!server_tls) return server_tls.status();
  auto client_tls = tls::make_context(files, tls::Side::client);
  if (!client_tls) return client_tls.status();

  PeerLinkOptions po;
  po.self = config_.node_id;
  po.cluster = config_.cluster;
  po.admin_endpoint = admin_endpoint;
  po.listen_host = config_.peer_listen.host;
  po.listen_port = config_.peer_listen.port;
  po.server_tls = *server_tls;
  po.client_tls = *client_tls;
  PeerLinkCallbacks callbacks;
  callbacks.on_message = [this](const engine::Message& m) {
    if (host_ == nullptr || fatal_) return;
    const std::uint64_t refused_before = host_->snapshots_refused();
    after_host_call(host_->receive(m));
    if (host_ != nullptr && host_->snapshots_refused() != refused_before) {
      warn_refused_snapshot(m.from);
    }
  };
  callbacks.on_peer_down = [this](NodeId peer, const std::string& reason) {
    on_peer_down(peer, reason);
  };
  peers_ = std::make_unique<PeerLinks>(io_, po, callbacks, log_.with("peer"));

  engine::RaftConfig rc;
  rc.id = config_.node_id;
  rc.cluster_id = config_.cluster_id();
  if (!config_.join) {
    for (const StaticMember& m : config_.members) {
      rc.voters.insert(m.id);
      rc.addresses[m.id] = m.peer_address.to_string();
    }
  }
  rc.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  rc.election_timeout_ms = config_.election_timeout_ms;
  rc.election_jitter_ms = config_.effective_election_jitter_ms();
  rc.pre_vote = config_.pre_vote;
  rc.check_quorum = config_.check_quorum;
  rc.random_seed = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  // A snapshot every storage.snapshot_entries applied entries; the log keeps the last
  // kKeepEntries of them, so a follower a little behind catches up without a snapshot.
  rc.snapshot_entries = config_.snapshot_entries;
  rc.snapshot_keep_entries = std::min<std::uint64_t>(kKeepEntries, config_.snapshot_entries);
  engine::ConfigOptions co;
  co.txn_deadline_ms = config_.config_txn_deadline_ms;
  co.observer = this;
  Result<std::unique_ptr<engine::Host>> host = engine::Host::open(rc, *wal_, *peers_, *this,
                                                                  *this, co);
  if (!host) return host.status();
  host_ = std::move(*host);
  if (Status s = peers_->start(); !s) return s;
  log_.info("started: cluster ", config_.cluster, ", term ", host_->raft().term(), ", log ",
            wal_->recovery().first_index, "..", wal_->recovery().last_index, ", peers on ",
            config_.peer_listen.to_string());
  sync_peers();
  schedule_tick();
  return {};
}

std::uint16_t Node::peer_port() const { return peers_ ? peers_->listen_port() : 0; }

// ---- the loop --------------------------------------------------------------------------------

void Node::schedule_tick() {
  // Ten ticks per heartbeat (at most 5 ms apart): timers fire at most that late, and an idle
  // node wakes a few hundred times a second at most, which costs well under 1% of a core.
  const std::uint64_t period_ms = std::clamp<std::uint64_t>(config_.heartbeat_interval_ms / 10,
                                                            1, 5);
  tick_timer_->timer.expires_after(std::chrono::milliseconds(period_ms));
  tick_timer_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || fatal_) return;
    on_tick();
    schedule_tick();
  });
}

void Node::on_tick() {
  after_host_call(host_->tick());
  try_promotions();
  const std::uint64_t now = now_ms();
  // Writes that did not apply in time: their entries may still commit later, but the client
  // must not wait forever (the leader may be on the other side of a partition).
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    kv_results_.erase(it->first);
    it = waiters_.erase(it);
    ApiError e{Status(Errc::busy, "not applied within " + std::to_string(kWriteTimeoutMs) +
                                      " ms; it may still commit: check before retrying")};
    done(&e);
  }
  for (auto it = config_waiters_.begin(); it != config_waiters_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    auto reply = std::move(it->second.reply);
    it = config_waiters_.erase(it);
    reply(ApiError{Status(Errc::busy, "the configuration transaction did not finish in time")});
  }
}

void Node::warn_refused_snapshot(NodeId leader) {
  // The leader resends it with every heartbeat round; once per kRepeatWarningMs is enough.
  const std::uint64_t now = now_ms();
  if (last_snapshot_warning_ms_ != 0 && now - last_snapshot_warning_ms_ < kRepeatWarningMs) return;
  last_snapshot_warning_ms_ = now;
  log_.warn("refused a snapshot from node ", leader, ": its data would not restore here, so "
            "nothing was changed; this node cannot catch up until the leader sends one that "
            "does (", host_->snapshots_refused(), " refused so far)");
}

void Node::after_host_call(const Status& status) {
  if (fatal_) return;
  if (!status.is_ok() && host_->failed()) {
    fatal_ = true;
    log_.error("stopping: ", host_->failure().message());
    fail_all_waiters(ApiError{host_->failure()});
    tick_timer_->timer.cancel();
    if (peers_) peers_->stop();
    if (events_.on_fatal) events_.on_fatal(host_->failure());
    return;
  }
  resolve_waiters();
  sync_peers();
  const engine::Raft& raft = host_->raft();
  if (raft.leader() != last_leader_) {
    last_leader_ = raft.leader();
    if (last_leader_ == config_.node_id) {
      log_.info("became leader in term ", raft.term());
    } else if (last_leader_ != engine::kNoNode) {
      log_.info("following node ", last_leader_, " in term ", raft.term());
    }
    if (events_.on_leader_change) events_.on_leader_change(last_leader_, raft.term());
  }
  if (last_role_ == engine::Role::leader && !raft.is_leader()) {
    // Our proposals may still commit under the next leader; their waiters resolve by index and
    // term when they apply, or time out.
    pending_promotions_.clear();
  }
  if (raft.role() != last_role_ && (raft.role() == engine::Role::pre_candidate ||
                                    raft.role() == engine::Role::candidate)) {
    log_.info(raft.role() == engine::Role::candidate ? "election" : "pre-vote", " for term ",
              raft.role() == engine::Role::candidate ? raft.term() : raft.term() + 1);
  }
  last_role_ = raft.role();
}

void Node::resolve_waiters() {
  const engine::RaftLog& log = host_->raft().log();
  while (!waiters_.empty() && waiters_.begin()->first <= log.applied()) {
    const Index index = waiters_.begin()->first;
    Waiter w = std::move(waiters_.begin()->second);
    waiters_.erase(waiters_.begin());
    const std::optional<engine::Term> term = log.term_at(index);
    if (term && *term == w.term) {
      w.done(nullptr);
    } else if (!term) {
      // Compacted into a snapshot (installed from a new leader) before this node saw whether
      // its entry survived: the write may or may not have taken effect.
      ApiError e{Status(Errc::busy, "the outcome of the write is unknown (the log was "
                                    "replaced by the leader's snapshot); read the key to check"),
                 host_->raft().leader(), admin_of(host_->raft().leader())};
      w.done(&e);
    } else {
      ApiError e{Status(Errc::not_leader, "leadership changed before the write committed; "
                                          "it did not take effect"),
                 host_->raft().leader(), admin_of(host_->raft().leader())};
      w.done(&e);
    }
    kv_results_.erase(index);
  }
}

void Node::fail_all_waiters(const ApiError& error) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  kv_results_.clear();
  for (auto& [index, w] : waiters) w.done(&error);
  auto config_waiters = std::move(config_waiters_);
  config_waiters_.clear();
  for (auto& [version, w] : config_waiters) w.reply(error);
}

void Node::sync_peers() {
  std::map<NodeId, std::string> addresses = host_->raft().membership().addresses;
  if (addresses.empty()) {
    // Joining: no membership yet, so link to the seed members until the leader reaches us.
    for (const StaticMember& m : config_.members) addresses[m.id] = m.peer_address.to_string();
  }
  if (addresses == linked_members_) return;
  linked_members_ = addresses;
  peers_->set_members(addresses);
}

void Node::on_peer_down(NodeId peer, const std::string& reason) {
  if (host_ == nullptr || fatal_ || stopping_) return;
  const engine::Raft& raft = host_->raft();
  if (peer != raft.leader() || raft.is_leader()) return;
  // The leader's process is gone (the kernel closed its socket): stop honouring its lease
  // now, then campaign in turn. Voters go one after another, by rank of id among the voters
  // left, so two followers that saw the same drop do not split the vote; the first whose log is
  // up to date wins, and the next one's turn comes only if it did not.
  after_host_call(host_->leader_unreachable());
  if (!raft.promotable()) return;
  std::uint64_t rank = 0;
  for (NodeId v : raft.membership().voters) {
    if (v != peer && v < config_.node_id) rank++;
  }
  const std::uint64_t step_ms = std::max<std::uint64_t>(config_.heartbeat_interval_ms / 2, 5);
  log_.info("link to leader node ", peer, " dropped (", reason, "): pre-vote in ",
            rank * step_ms, " ms");
  failover_timer_->timer.expires_after(std::chrono::milliseconds(rank * step_ms));
  failover_timer_->timer.async_wait([this, peer](const boost::system::error_code& ec) {
    if (ec || fatal_ || stopping_) return;
    const engine::Raft& r = host_->raft();
    if (r.is_leader() || (r.leader() != peer && r.leader() != engine::kNoNode)) return;
    metrics_->fast_failovers->inc();
    after_host_call(host_->campaign_now());
  });
}

// ---- state machine ---------------------------------------------------------------------------

void Node::apply(const Entry& entry) {
  ANYA_ASSERT(entry.type == engine::EntryType::normal);
  engine::KvResult result = kv_.apply(entry.index, entry.data);
  if (waiters_.count(entry.index) != 0 || entry.index >= capture_results_from_) {
    kv_results_[entry.index] = std::move(result);
  }
}

std::string Node::snapshot() { return kv_.snapshot(); }

Status Node::restore(std::string_view data) {
  Result<engine::KvStore> restored = engine::KvStore::restore(data, kv_.limits());
  if (!restored) return restored.status();
  kv_ = std::move(restored).value();
  // Results of writes a snapshot covers are not known here; their waiters learn the outcome
  // from the log's terms (resolve_waiters).
  kv_results_.clear();
  return {};
}

Status Node::check_snapshot(std::string_view data) {
  return engine::KvStore::restore(data, kv_.limits()).status();
}

void Node::on_config_effects(const engine::ConfigEffects& effects) {
  if (effects.activated != 0) {
    log_.info("configuration version ", effects.activated, " active");
    auto it = config_waiters_.find(effects.activated);
    if (it != config_waiters_.end()) {
      auto reply = std::move(it->second.reply);
      config_waiters_.erase(it);
      reply(ConfigView{effects.activated, host_->config_state().active_document()});
    }
  }
  if (effects.dropped != 0) {
    log_.warn("configuration version ", effects.dropped, " aborted: ", effects.reason);
    auto it = config_waiters_.find(effects.dropped);
    if (it != config_waiters_.end()) {
      auto reply = std::move(it->second.reply);
      config_waiters_.erase(it);
      reply(ApiError{Status(Errc::conflict, "configuration version " +
                                                std::to_string(effects.dropped) +
                                                " was aborted: " + effects.reason)});
    }
  }
}

// ---- errors ----------------------------------------------------------------------------------

std::string Node::admin_of(NodeId node) const {
  if (node == engine::kNoNode) return {};
  if (node == config_.node_id) return admin_endpoint_;
  auto it = peers_->stats().find(node);
  return it == peers_->stats().end() ? std::string() : it->second.admin_endpoint;
}

ApiError Node::not_leader_error() const {
  const NodeId leader = host_->raft().leader();
  std::string message = leader == engine::kNoNode
                            ? "this node is not the leader and knows no leader yet; retry"
                            : "this node is not the leader; the leader is node " +
                                  std::to_string(leader);
  return ApiError{Status(Errc::not_leader, std::move(message)), leader, admin_of(leader)};
}

ApiError Node::error_from(const Status& status) const {
  if (status.code() == Errc::not_leader) return not_leader_error();
  return ApiError{status};
}

void Node::propose_and_wait(Result<Index> index, std::function<void(const ApiError*)> done) {
  after_host_call(index.status());
  if (!index) {
    ApiError e = error_from(index.status());
    return done(&e);
  }
  propose_and_wait(*index, std::move(done));
}

void Node::propose_and_wait(Index index, std::function<void(const ApiError*)> done) {
  if (waiters_.size() >= kMaxPendingWrites) {
    // The entry is in the log and will commit; the client just cannot wait for it here.
    ApiError e{Status(Errc::busy, "too many writes waiting to commit; slow down")};
    return done(&e);
  }
  if (index <= host_->raft().log().applied()) {
    // Already applied (a single-node cluster commits at once): answer by its term now.
    waiters_[index] = Waiter{host_->raft().log().term_at(index).value_or(0),
                             now_ms() + kWriteTimeoutMs, std::move(done)};
    resolve_waiters();
    return;
  }
  waiters_[index] = Waiter{host_->raft().term(), now_ms() + kWriteTimeoutMs, std::move(done)};
}

// ---- NodeApi ---------------------------------------------------------------------------------

StatusView Node::status() {
  const engine::Raft& raft = host_->raft();
  StatusView v;
  v.node_id = config_.node_id;
  v.cluster = config_.cluster;
  v.role = engine::role_name(raft.role());
  v.term = raft.term();
  v.leader = raft.leader();
  v.leader_admin = admin_of(raft.leader());
  v.commit_index = raft.log().committed();
  v.applied_index = raft.log().applied();
  v.quorum = raft.has_quorum();
  v.ready = v.quorum && v.applied_index >= v.commit_index && !fatal_;
  v.config_version = host_->config_state().active_version();
  v.fencing_token = raft.leader() == engine::kNoNode ? 0 : raft.term();
  for (const engine::MemberStatus& m : raft.members()) {
    MemberView mv;
    mv.id = m.id;
    mv.address = m.address;
    mv.voter = m.voter;
    mv.healthy = m.healthy;
    mv.reachable = m.reachable;
    mv.last_seen_ms = m.last_contact_age_ms;
    mv.match_index = m.match;
    if (m.id == config_.node_id) {
      mv.reachable = true;
      mv.last_seen_ms = 0;
    }
    v.members.push_back(std::move(mv));
  }
  return v;
}

std::string Node::metrics_text() {
  metrics_->update(*host_, *peers_);
  return metrics_->registry.render();
}

void Node::kv_get(const std::string& key, Reply<KvEntryView> reply) {
  const engine::Raft& raft = host_->raft();
  // Served by the leader only, while it holds a quorum (CheckQuorum) and has applied everything
  // it knows committed: never a silent stale answer from a deposed or lagging node.
  if (!raft.is_leader()) return reply(not_leader_error());
  if (!raft.has_quorum()) {
    return reply(ApiError{Status(Errc::busy, "the leader cannot reach a quorum; retry")});
  }
  if (raft.log().term_at(raft.log().applied()) != raft.term()) {
    return reply(ApiError{Status(Errc::busy, "the new leader is still applying its log; retry")});
  }
  const engine::KeyValue* kv = kv_.get(key);
  if (kv == nullptr) {
    return reply(ApiError{Status(Errc::not_found, "key not found: " + key)});
  }
  reply(KvEntryView{key, kv->value, kv->create_revision, kv->mod_revision, kv->version});
}

void Node::kv_write(KvWrite write, Reply<KvWriteResult> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  engine::KvCommand command;
  switch (write.op) {
    case KvWrite::Op::put:
      command = engine::KvCommand::put(std::move(write.key), std::move(write.value));
      break;
    case KvWrite::Op::cas:
      command = engine::KvCommand::cas(std::move(write.key), write.expected_revision.value_or(0),
                                       std::move(write.value));
      break;
    case KvWrite::Op::del:
      command = engine::KvCommand::del(std::move(write.key), write.expected_revision);
      break;
  }
  if (Status s = engine::check_command(command); !s) return reply(ApiError{s});
  if (!host_->raft().is_leader()) return reply(not_leader_error());
  // Writes that arrive together are proposed together (flush_writes, posted once): one fsync
  // and one append per follower then carry all of them.
  pending_writes_.push_back({engine::encode_command(command), std::move(reply)});
  if (pending_writes_.size() >= kMaxWriteBatch) return flush_writes();
  if (!flush_posted_) {
    flush_posted_ = true;
    asio::post(io_, [this] { flush_writes(); });
  }
}

void Node::flush_writes() {
  flush_posted_ = false;
  if (pending_writes_.empty() || fatal_) return;
  std::vector<PendingWrite> batch = std::move(pending_writes_);
  pending_writes_.clear();
  std::vector<std::string> data;
  data.reserve(batch.size());
  for (PendingWrite& w : batch) data.push_back(std::move(w.command));
  // A single-node cluster applies the batch inside propose_batch, before its waiters exist:
  // keep the results of whatever applies from here on until they do.
  capture_results_from_ = host_->raft().log().last_index() + 1;
  Result<Index> first = host_->propose_batch(std::move(data));
  capture_results_from_ = std::numeric_limits<Index>::max();
  after_host_call(first.status());
  if (!first) {
    const ApiError e = error_from(first.status());
    for (PendingWrite& w : batch) w.reply(e);
    return;
  }
  for (std::size_t i = 0; i < batch.size(); i++) {
    wait_for_write(*first + i, std::move(batch[i].reply));
  }
  for (auto it = kv_results_.begin(); it != kv_results_.end();) {
    it = waiters_.count(it->first) != 0 ? std::next(it) : kv_results_.erase(it);
  }
}

void Node::wait_for_write(Index at, Reply<KvWriteResult> reply) {
  propose_and_wait(at, [this, reply, at](const ApiError* error) {
    if (error != nullptr) return reply(*error);
    auto it = kv_results_.find(at);
    if (it == kv_results_.end()) return reply(KvWriteResult{at});
    const engine::KvResult r = it->second;
    switch (r.outcome) {
      case engine::KvOutcome::ok: return reply(KvWriteResult{r.revision});
      case engine::KvOutcome::conflict:
        return reply(ApiError{Status(Errc::conflict, "revision mismatch: the key's current "
                                                     "revision is " +
                                                         std::to_string(r.revision))});
      case engine::KvOutcome::not_found:
        return reply(ApiError{Status(Errc::not_found, "key not found")});
      case engine::KvOutcome::invalid:
        return reply(ApiError{Status(Errc::invalid_argument, r.message)});
    }
  });
}

void Node::members_add(NodeId id, std::string address, bool learner, Reply<Empty> reply) {
  if (Result<HostPort> hp = parse_host_port(address); !hp) {
    return reply(ApiError{Status(Errc::invalid_argument, "address: " + hp.status().message())});
  }
  if (!host_->raft().is_leader()) return reply(not_leader_error());
  engine::ConfChange change{engine::ConfChangeOp::add_learner, id, address};
  Result<Index> index = host_->propose_conf_change(change);
  propose_and_wait(std::move(index), [this, id, learner, reply](const ApiError* error) {
    if (error != nullptr) return reply(*error);
    if (!learner) pending_promotions_.insert(id);  // promoted once caught up (try_promotions)
    reply(Empty{});
  });
}

void Node::try_promotions() {
  if (pending_promotions_.empty() || !host_->raft().is_leader()) return;
  for (auto it = pending_promotions_.begin(); it != pending_promotions_.end();) {
    const NodeId id = *it;
    if (host_->raft().membership().learners.count(id) == 0) {
      it = pending_promotions_.erase(it);
      continue;
    }
    engine::ConfChange change{engine::ConfChangeOp::promote, id, ""};
    Result<Index> index = host_->propose_conf_change(change);
    after_host_call(index.status());
    if (index) {
      log_.info("promoting node ", id, " to voter (log index ", *index, ")");
      it = pending_promotions_.erase(it);
    } else {
      ++it;  // not caught up yet, or another change is in flight: try on a later tick
    }
  }
}

void Node::members_remove(NodeId id, Reply<Empty> reply) {
  if (!host_->raft().is_leader()) return reply(not_leader_error());
  engine::ConfChange change{engine::ConfChangeOp::remove, id, ""};
  Result<Index> index = host_->propose_conf_change(change);
  propose_and_wait(std::move(index), [reply](const ApiError* error) {
    if (error != nullptr) return reply(*error);
    reply(Empty{});
  });
}

void Node::config_get(Reply<ConfigView> reply) {
  const engine::ConfigState& st = host_->config_state();
  reply(ConfigView{st.active_version(), st.active_document()});
}

void Node::config_put(std::string document, std::optional<std::uint64_t> if_version,
                      Reply<ConfigView> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  Result<std::uint64_t> version = host_->put_config(std::move(document), if_version);
  after_host_call(version.status());
  if (!version) return reply(error_from(version.status()));
  config_waiters_[*version] =
      ConfigWaiter{now_ms() + 2 * config_.config_txn_deadline_ms, std::move(reply)};
}

void Node::config_rollback(std::uint64_t version, std::optional<std::uint64_t> if_version,
                           Reply<ConfigView> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  Result<std::uint64_t> next = host_->rollback_config(version, if_version);
  after_host_call(next.status());
  if (!next) return reply(error_from(next.status()));
  config_waiters_[*next] =
      ConfigWaiter{now_ms() + 2 * config_.config_txn_deadline_ms, std::move(reply)};
}

void Node::config_history(Reply<std::vector<ConfigView>> reply) {
  std::vector<ConfigView> out;
  for (const engine::ConfigHistoryEntry& h : host_->config_state().history()) {
    out.push_back(ConfigView{h.version, h.document});
  }
  reply(std::move(out));
}

void Node::leader_transfer(std::optional<NodeId> to, Reply<NodeId> reply) {
  const engine::Raft& raft = host_->raft();
  if (!raft.is_leader()) return reply(not_leader_error());
  NodeId target = to.value_or(engine::kNoNode);
  if (target == engine::kNoNode) {
    // The most caught-up healthy voter other than us.
    Index best = 0;
    for (const engine::MemberStatus& m : raft.members()) {
      if (m.id == config_.node_id || !m.voter || !m.healthy || !m.reachable) continue;
      if (target == engine::kNoNode || m.match > best) {
        target = m.id;
        best = m.match;
      }
    }
    if (target == engine::kNoNode) {
      return reply(ApiError{Status(Errc::busy, "no other healthy, reachable voter to hand to")});
    }
  }
  Status s = host_->transfer_leadership(target);
  after_host_call(s);
  if (!s) return reply(error_from(s));
  reply(target);
}

void Node::lease(Reply<LeaseView> reply) {
  const engine::Raft& raft = host_->raft();
  if (!raft.is_leader()) return reply(not_leader_error());
  LeaseView v;
  v.holder = config_.node_id;
  v.fencing_token = raft.term();
  v.valid = raft.has_quorum();
  reply(v);
}

// ---- shutdown --------------------------------------------------------------------------------

void Node::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  const std::uint64_t give_up_ms = now_ms() + 2 * config_.election_timeout_ms;
  if (host_ != nullptr && !fatal_ && host_->raft().is_leader()) {
    leader_transfer(std::nullopt, [this](ApiResult<NodeId> r) {
      if (r.ok()) log_.info("shutting down: handing leadership to node ", *r.value);
      else log_.warn("shutting down as leader: ", r.error.status.message());
    });
  }
  continue_shutdown(give_up_ms, std::move(done));
}

void Node::continue_shutdown(std::uint64_t give_up_ms, std::function<void()> done) {
  const bool leading = host_ != nullptr && !fatal_ && host_->raft().is_leader();
  if (leading && now_ms() < give_up_ms) {
    shutdown_timer_->timer.expires_after(std::chrono::milliseconds(5));
    shutdown_timer_->timer.async_wait(
        [this, give_up_ms, done = std::move(done)](const boost::system::error_code&) mutable {
          continue_shutdown(give_up_ms, std::move(done));
        });
    return;
  }
  fail_all_waiters(ApiError{Status(Errc::busy, "the node is shutting down")});
  tick_timer_->timer.cancel();
  failover_timer_->timer.cancel();
  if (peers_) peers_->stop();
  log_.info("stopped", leading ? " (leadership transfer did not finish in time)" : "");
  asio::post(io_, std::move(done));
}

}  // namespace anya::transport
