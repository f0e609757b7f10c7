#include "transport/node/node.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "engine/raft/membership.hpp"
#include "transport/discovery/discovery.hpp"
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
      clock_origin_us_(steady_us()) {
  ANYA_ASSERT(validate(config_).is_ok());
}

Node::~Node() = default;

std::uint64_t Node::now_ms() {
  // Starts at 1 s so that "0" never looks like a real time; monotonic by construction.
  return 1000 + (steady_us() - clock_origin_us_) / 1000;
}

Status prepare_data_dir(const std::filesystem::path& dir, Logger& log) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return {Errc::io_error, "data_dir: cannot stat " + dir.string() + ": " +
                                  std::strerror(errno)};
    }
    std::error_code ec;
    if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec || (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      return {Errc::io_error, "data_dir: cannot create " + dir.string() + ": " +
                                  (ec ? ec.message() : std::string(std::strerror(errno)))};
    }
    return {};
  }
  if (!S_ISDIR(st.st_mode)) {
    return {Errc::invalid_argument, "data_dir: " + dir.string() + " is not a directory"};
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return {Errc::invalid_argument,
            "data_dir: " + dir.string() + " is writable by group or others (mode " + mode +
                "): another user could replace the log; chmod 700 " + dir.string()};
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    log.warn("data_dir: ", dir.string(), " is readable by group or others (mode ", mode,
             ") and holds every value stored; chmod 700 ", dir.string());
  }
  return {};
}

metrics::Registry& Node::metrics_registry() { return metrics_->registry; }

std::map<NodeId, std::string> Node::member_admin_endpoints() const {
  std::map<NodeId, std::string> out;
  if (core_ == nullptr || peers_ == nullptr) return out;
  for (const auto& [id, address] : core_->raft().membership().addresses) {
    const std::string admin = id == config_.node_id ? std::string() : admin_of(id);
    if (!admin.empty()) out[id] = admin;
  }
  return out;
}

void Node::set_tls(std::shared_ptr<boost::asio::ssl::context> server_tls,
                   std::shared_ptr<boost::asio::ssl::context> client_tls) {
  if (peers_) peers_->set_tls(std::move(server_tls), std::move(client_tls));
}

Status Node::start(const std::string& admin_endpoint,
                   std::shared_ptr<boost::asio::ssl::context> server_tls,
                   std::shared_ptr<boost::asio::ssl::context> client_tls) {
  ANYA_ASSERT(server_tls != nullptr);
  ANYA_ASSERT(client_tls != nullptr);
  admin_endpoint_ = admin_endpoint;
  if (Status s = prepare_data_dir(config_.data_dir, log_); !s) return s;
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

  PeerLinkOptions po;
  po.self = config_.node_id;
  po.cluster = config_.cluster;
  po.admin_endpoint = admin_endpoint;
  po.listen_host = config_.peer_listen.host;
  po.listen_port = config_.peer_listen.port;
  po.server_tls = std::move(server_tls);
  po.client_tls = std::move(client_tls);
  // A silent link is noticed within about an election timeout (pings every third of one keep
  // idle links heard; four missed in a row close it), and a healed one is redialled within
  // half a second, a connect that hangs given up after one election timeout.
  po.ping_interval_ms = std::max<std::uint64_t>(config_.election_timeout_ms / 3, 10);
  po.dead_after_ms = config_.election_timeout_ms + po.ping_interval_ms;
  po.dial_backoff_max_ms = 500;
  po.handshake_timeout_ms = std::max<std::uint64_t>(config_.election_timeout_ms, 1000);
  PeerLinkCallbacks callbacks;
  callbacks.on_message = [this](const engine::Message& m) {
    if (core_ == nullptr || fatal_) return;
    const std::uint64_t refused_before = host().snapshots_refused();
    after_host_call(core_->receive(m));
    if (core_ != nullptr && host().snapshots_refused() != refused_before) {
      warn_refused_snapshot(m.from);
    }
  };
  callbacks.on_peer_down = [this](NodeId peer, const std::string& reason) {
    if (core_ != nullptr && peer == core_->raft().leader()) {
      log_.info("link to leader node ", peer, " down: ", reason);
    }
  };
  callbacks.on_peer_gone = [this](NodeId peer) {
    on_peer_gone(peer, "its peer port refuses connections");
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
  rc.leases = true;
  rc.max_clock_drift_ppm = config_.max_clock_drift_ppm;
  rc.max_blocks_behind = config_.bitcoin.max_blocks_behind;
  rc.random_seed = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
  // A snapshot every storage.snapshot_entries applied entries; the log keeps the last
  // kKeepEntries of them, so a follower a little behind catches up without a snapshot.
  rc.snapshot_entries = config_.snapshot_entries;
  rc.snapshot_keep_entries = std::min<std::uint64_t>(kKeepEntries, config_.snapshot_entries);
  engine::ConfigOptions co;
  co.txn_deadline_ms = config_.config_txn_deadline_ms;
  co.observer = this;
  engine::NodeOptions no;
  no.write_timeout_ms = kWriteTimeoutMs;
  no.failover_step_ms = std::max<std::uint64_t>(config_.heartbeat_interval_ms / 2, 5);
  no.failover_retry_ms = 2 * config_.heartbeat_interval_ms;
  Result<std::unique_ptr<engine::NodeCore>> core =
      engine::NodeCore::open(rc, no, *wal_, *peers_, *this, co);
  if (!core) return core.status();
  core_ = std::move(*core);
  if (Status s = start_health(); !s) return s;
  if (Status s = peers_->start(); !s) return s;
  if (Status s = start_discovery(); !s) return s;
  log_.info("started: cluster ", config_.cluster, ", term ", core_->raft().term(), ", log ",
            wal_->recovery().first_index, "..", wal_->recovery().last_index, ", peers on ",
            config_.peer_listen.to_string(), ", reads ", engine::read_mode_name(config_.reads));
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
  after_host_call(core_->tick());
  if (!fatal_) note_chain_state();
  const std::uint64_t now = now_ms();
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

void Node::on_chain_probe(Result<engine::ChainView> result) {
  if (core_ == nullptr || fatal_) return;
  chain_probing_ = true;
  std::optional<engine::ChainView> view;
  if (result) {
    if (chain_probe_error_) {
      log_.info("chain probe works again: height ", result->height);
      chain_probe_error_.reset();
    }
    view = *result;
  } else {
    metrics_->chain_probe_failures->inc();
    // Once per new reason: a backend that stays down is one line, not one per probe.
    if (chain_probe_error_ != result.status().message()) {
      log_.warn("chain probe failed: ", result.status().message(), "; this node's view of the "
                "chain is unknown, so it will not lead while a quorum of voters has one");
      chain_probe_error_ = result.status().message();
    }
  }
  if (view == core_->raft().chain_view()) return;
  after_host_call(core_->host().set_chain_view(view));
}

void Node::note_chain_state() {
  const engine::Raft& raft = core_->raft();
  const bool behind = raft.chain_behind();
  if (behind == chain_behind_logged_) return;
  chain_behind_logged_ = behind;
  const std::optional<std::uint64_t> quorum = raft.chain_quorum_height();
  const std::string height = raft.chain_view() ? std::to_string(raft.chain_view()->height)
                                               : std::string("unknown");
  if (behind) {
    log_.warn("behind the Bitcoin chain: height ", height, ", a quorum of voters holds ",
              quorum ? std::to_string(*quorum) : std::string("?"), " (max_blocks_behind ",
              raft.max_blocks_behind(), "): this node will not lead until it catches up");
  } else {
    log_.info("caught up with the Bitcoin chain: height ", height);
  }
}

void Node::warn_refused_snapshot(NodeId leader) {
  // The leader resends it with every heartbeat round; once per kRepeatWarningMs is enough.
  const std::uint64_t now = now_ms();
  if (last_snapshot_warning_ms_ != 0 && now - last_snapshot_warning_ms_ < kRepeatWarningMs) return;
  last_snapshot_warning_ms_ = now;
  log_.warn("refused a snapshot from node ", leader, ": its data would not restore here, so "
            "nothing was changed; this node cannot catch up until the leader sends one that "
            "does (", host().snapshots_refused(), " refused so far)");
}

void Node::after_host_call(const Status& status) {
  if (fatal_) return;
  route_replies();
  if (!status.is_ok() && host().failed()) {
    fatal_ = true;
    log_.error("stopping: ", host().failure().message());
    fail_all_waiters(ApiError{host().failure()});
    tick_timer_->timer.cancel();
    if (discovery_) discovery_->stop();
    if (peers_) peers_->stop();
    if (events_.on_fatal) events_.on_fatal(host().failure());
    return;
  }
  log_events();
  note_membership();
  sync_peers();
  const engine::Raft& raft = core_->raft();
  if (raft.leader() != last_leader_) {
    last_leader_ = raft.leader();
    if (last_leader_ == config_.node_id) {
      log_.info("became leader in term ", raft.term());
    } else if (last_leader_ != engine::kNoNode) {
      log_.info("following node ", last_leader_, " in term ", raft.term());
    }
    if (events_.on_leader_change) events_.on_leader_change(last_leader_, raft.term());
  }
  if (raft.role() != last_role_ && (raft.role() == engine::Role::pre_candidate ||
                                    raft.role() == engine::Role::candidate)) {
    log_.info(raft.role() == engine::Role::candidate ? "election" : "pre-vote", " for term ",
              raft.role() == engine::Role::candidate ? raft.term() : raft.term() + 1);
  }
  last_role_ = raft.role();
}

void Node::route_replies() {
  // A reply's callback may call back into the node (and the core): take them all first.
  for (const engine::ClientReply& r : core_->take_replies()) {
    auto it = tickets_.find(r.ticket);
    ANYA_ASSERT(it != tickets_.end());  // every ticket is answered exactly once
    auto done = std::move(it->second);
    tickets_.erase(it);
    done(r);
  }
}

void Node::log_events() {
  for (const engine::NodeEvent& e : core_->take_events()) {
    switch (e.kind) {
      case engine::NodeEvent::Kind::follower_lost_entries:
        log_.warn("node ", e.node, " lost log entries it had acknowledged (a cut WAL tail or a "
                  "data directory restored from a backup); sending them again");
        break;
      case engine::NodeEvent::Kind::fast_failover:
        metrics_->fast_failovers->inc();
        log_.info("leader node ", e.node, " is gone (its peer port refuses connections): "
                  "campaigning without waiting out the election timeout");
        break;
      case engine::NodeEvent::Kind::promoted:
        log_.info("promoting node ", e.node, " to voter");
        break;
    }
  }
}

void Node::fail_all_waiters(const ApiError& error) {
  auto tickets = std::move(tickets_);
  tickets_.clear();
  engine::ClientReply r;
  r.status = error.status;
  for (auto& [ticket, done] : tickets) {
    r.ticket = ticket;
    done(r);
  }
  auto config_waiters = std::move(config_waiters_);
  config_waiters_.clear();
  for (auto& [version, w] : config_waiters) w.reply(error);
}

void Node::sync_peers() {
  std::map<NodeId, std::string> addresses = core_->raft().membership().addresses;
  std::map<NodeId, std::string> seeds;
  for (const StaticMember& m : config_.members) seeds[m.id] = m.peer_address.to_string();
  if (discovery_ != nullptr && discovery_->follows()) {
    // Members where discovery last saw them; joining: the seeds and every discovered peer
    // (engine/discovery decides). Every link still proves its node id by certificate.
    addresses = discovery_->peers().dial_addresses(addresses, seeds, config_.node_id);
  } else if (addresses.empty()) {
    // Joining: no membership yet, so link to the seed members until the leader reaches us.
    addresses = std::move(seeds);
  }
  if (addresses == linked_members_) return;
  linked_members_ = addresses;
  peers_->set_members(addresses);
}

Status Node::start_discovery() {
  discovery::DiscoveryOptions o;
  o.self = config_.node_id;
  o.cluster = config_.cluster;
  o.advertise = config_.peer_advertise;
  o.members = config_.members;
  o.config = config_.discovery;
  discovery_ = std::make_unique<discovery::Discovery>(io_, std::move(o), log_.with("discovery"),
                                                      &metrics_->registry);
  return discovery_->start([this](const std::vector<engine::discovery::PeerChange>&) {
    if (core_ != nullptr && !fatal_ && !stopping_) sync_peers();
  });
}

void Node::note_membership() {
  const engine::Membership& now = core_->raft().membership();
  if (last_membership_ && *last_membership_ == now) return;
  if (last_membership_ && events_.on_cluster_change) {
    const engine::Membership& was = *last_membership_;
    const auto report = [this](const char* action, NodeId id) {
      events_.on_cluster_change(action, "node " + std::to_string(id));
    };
    for (NodeId id : now.learners) {
      if (!was.contains(id)) report("member.added", id);
    }
    for (NodeId id : now.voters) {
      if (!was.contains(id)) report("member.added", id);
      else if (was.learners.count(id) != 0) report("member.promoted", id);
    }
    for (const auto& [id, address] : was.addresses) {
      if (!now.contains(id)) report("member.removed", id);
    }
  }
  last_membership_ = now;
}

void Node::on_peer_gone(NodeId peer, const std::string& reason) {
  if (core_ == nullptr || fatal_ || stopping_) return;
  if (peer != core_->raft().leader() || core_->raft().is_leader()) return;
  log_.debug("node ", peer, " gone: ", reason);
  after_host_call(core_->peer_gone(peer));
}

// ---- state machine ---------------------------------------------------------------------------

void Node::on_config_effects(const engine::ConfigEffects& effects) {
  if (effects.activated != 0) {
    log_.info("configuration version ", effects.activated, " active");
    if (events_.on_cluster_change) {
      events_.on_cluster_change("config.activated",
                                "version " + std::to_string(effects.activated));
    }
    auto it = config_waiters_.find(effects.activated);
    if (it != config_waiters_.end()) {
      auto reply = std::move(it->second.reply);
      config_waiters_.erase(it);
      reply(ConfigView{effects.activated, host().config_state().active_document()});
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
  const NodeId leader = core_->raft().leader();
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

ApiError Node::error_from(const engine::ClientReply& reply) const {
  return ApiError{reply.status, reply.leader, admin_of(reply.leader)};
}

engine::Ticket Node::ticket(std::function<void(const engine::ClientReply&)> done) {
  const engine::Ticket t = next_ticket_++;
  tickets_.emplace(t, std::move(done));
  return t;
}

void Node::post_flush() {
  // Requests that arrive together are flushed together: one proposal (one fsync and one append
  // per follower) for the writes, one heartbeat round for the reads.
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    flush_posted_ = false;
    if (core_ != nullptr && !fatal_) after_host_call(core_->flush());
  });
}

// ---- NodeApi ---------------------------------------------------------------------------------

StatusView Node::status() {
  const engine::Raft& raft = core_->raft();
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
  v.ready = core_->ready() && !fatal_;
  v.config_version = host().config_state().active_version();
  v.fencing_token = raft.leader() == engine::kNoNode ? 0 : raft.term();
  for (const engine::MemberStatus& m : raft.members()) {
    MemberView mv;
    mv.id = m.id;
    mv.address = m.address;
    mv.voter = m.voter;
    mv.healthy = m.healthy;
    mv.reachable = m.reachable;
    mv.liveness = m.liveness;
    mv.rtt_ms = m.rtt_ms;
    mv.liveness_transitions = m.liveness_transitions;
    mv.last_seen_ms = m.last_contact_age_ms;
    mv.match_index = m.match;
    if (m.chain_view) mv.chain_height = m.chain_view->height;
    if (m.id == config_.node_id) {
      mv.reachable = true;
      mv.last_seen_ms = 0;
    }
    v.members.push_back(std::move(mv));
  }
  v.chain.probing = chain_probing_;
  v.chain.view = raft.chain_view();
  v.chain.quorum_height = raft.chain_quorum_height();
  v.chain.behind = raft.chain_behind();
  v.chain.max_blocks_behind = raft.max_blocks_behind();
  v.chain.probe_error = chain_probe_error_.value_or("");
  v.health = health_status();
  return v;
}

std::string Node::metrics_text() {
  metrics_->update(host(), *peers_);
  metrics_->update_health(health_status());
  if (before_scrape_) before_scrape_();
  return metrics_->registry.render();
}

void Node::kv_get(const std::string& key, std::optional<engine::ReadMode> consistency,
                  Reply<KvEntryView> reply) {
  const engine::ReadMode mode = consistency.value_or(config_.reads);
  const engine::Ticket t = ticket([this, key, mode, reply](const engine::ClientReply& r) {
    if (!r.status.is_ok()) return reply(error_from(r));
    ANYA_ASSERT(r.value.has_value());
    const engine::KeyValue& kv = *r.value;
    reply(KvEntryView{key, kv.value, kv.create_revision, kv.mod_revision, kv.version, mode,
                      r.stale_possible});
  });
  core_->submit_read(t, key, mode);
  route_replies();
  post_flush();
}

std::vector<KvEntryView> Node::kv_scan(const std::string& prefix, std::size_t limit) {
  std::vector<KvEntryView> out;
  for (auto& [key, kv] : core_->kv().scan(prefix, limit)) {
    out.push_back(KvEntryView{key, std::move(kv.value), kv.create_revision, kv.mod_revision,
                              kv.version, engine::ReadMode::serializable, true});
  }
  return out;
}

std::optional<auth::TokenRecord> Node::token_record(std::string_view id) const {
  if (core_ == nullptr) return std::nullopt;
  const engine::KeyValue* kv =
      core_->kv().get(std::string(auth::kTokenKeyPrefix) + std::string(id));
  if (kv == nullptr) return std::nullopt;
  return auth::decode_token_record(id, kv->value);
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
      if (write.expected_revision && *write.expected_revision == 0) {
        return reply(ApiError{Status(Errc::invalid_argument,
                                     "prev_revision: must be non-zero")});
      }
      command = engine::KvCommand::del(std::move(write.key), write.expected_revision);
      break;
  }
  submit(std::move(command), write.client, std::move(reply));
}

void Node::record_write(engine::Command command, std::optional<ClientRef> client,
                        Reply<KvWriteResult> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  submit(std::move(command), client, std::move(reply));
}

void Node::submit(engine::Command command, const std::optional<ClientRef>& client,
                  Reply<KvWriteResult> reply) {
  // The proposer's wall clock travels in the command, so every replica decides a reservation's
  // expiry and a session's idleness the same way (engine/kv/bitcoin.hpp).
  const auto now_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  if (auto* utxo = std::get_if<engine::UtxoCommand>(&command.body)) utxo->now_ms = now_ms;
  if (auto* open = std::get_if<engine::SessionOpen>(&command.body)) open->now_ms = now_ms;
  if (client) command.session = engine::ClientSession{client->id, client->seq, now_ms};
  // NodeCore::submit_write checks the command and answers invalid_argument naming the field.
  const engine::Ticket t = ticket([this, reply](const engine::ClientReply& r) {
    if (!r.status.is_ok()) return reply(error_from(r));
    reply(KvWriteResult{r.revision, r.replayed});
  });
  core_->submit_write(t, std::move(command));
  route_replies();
  post_flush();
}

void Node::members_add(NodeId id, std::string address, bool learner, Reply<Empty> reply) {
  if (Result<HostPort> hp = parse_host_port(address); !hp) {
    return reply(ApiError{Status(Errc::invalid_argument, "address: " + hp.status().message())});
  }
  const engine::Ticket t = ticket([this, reply](const engine::ClientReply& r) {
    if (!r.status.is_ok()) return reply(error_from(r));
    reply(Empty{});
  });
  core_->submit_member_add(t, id, std::move(address), learner);
  after_host_call({});
}

void Node::members_remove(NodeId id, Reply<Empty> reply) {
  const engine::Ticket t = ticket([this, reply](const engine::ClientReply& r) {
    if (!r.status.is_ok()) return reply(error_from(r));
    reply(Empty{});
  });
  core_->submit_member_remove(t, id);
  after_host_call({});
}

void Node::config_get(Reply<ConfigView> reply) {
  const engine::ConfigState& st = host().config_state();
  reply(ConfigView{st.active_version(), st.active_document()});
}

void Node::config_put(std::string document, std::optional<std::uint64_t> if_version,
                      Reply<ConfigView> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  // The clock first (through the core): a leader paused past its CheckQuorum deadline steps
  // down here and answers not_leader instead of a stale "version N is current".
  after_host_call(core_->tick());
  Result<std::uint64_t> version = core_->host().put_config(std::move(document), if_version);
  after_host_call(version.status());
  if (!version) return reply(error_from(version.status()));
  config_waiters_[*version] =
      ConfigWaiter{now_ms() + 2 * config_.config_txn_deadline_ms, std::move(reply)};
}

void Node::config_rollback(std::uint64_t version, std::optional<std::uint64_t> if_version,
                           Reply<ConfigView> reply) {
  if (stopping_) return reply(ApiError{Status(Errc::busy, "the node is shutting down")});
  after_host_call(core_->tick());
  Result<std::uint64_t> next = core_->host().rollback_config(version, if_version);
  after_host_call(next.status());
  if (!next) return reply(error_from(next.status()));
  config_waiters_[*next] =
      ConfigWaiter{now_ms() + 2 * config_.config_txn_deadline_ms, std::move(reply)};
}

void Node::config_history(Reply<std::vector<ConfigView>> reply) {
  std::vector<ConfigView> out;
  for (const engine::ConfigHistoryEntry& h : host().config_state().history()) {
    out.push_back(ConfigView{h.version, h.document});
  }
  reply(std::move(out));
}

void Node::leader_transfer(std::optional<NodeId> to, Reply<NodeId> reply) {
  Result<NodeId> target = core_->transfer_leadership(to);
  after_host_call(target.status());
  if (!target) return reply(error_from(target.status()));
  reply(*target);
}

void Node::lease(Reply<LeaseView> reply) {
  const engine::LeaseStatus l = core_->lease();
  after_host_call({});
  if (!core_->raft().is_leader()) return reply(not_leader_error());
  LeaseView v;
  v.holder = l.holder;
  v.fencing_token = l.fencing_token;
  v.valid = l.valid;
  v.remaining_ms = l.remaining_ms;
  v.valid_until_ms = l.valid_until_ms;
  reply(v);
}

// ---- shutdown --------------------------------------------------------------------------------

void Node::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  if (health_) health_->stop();  // the verdict stays as it was while leadership is handed over
  const std::uint64_t give_up_ms = now_ms() + 2 * config_.election_timeout_ms;
  if (core_ != nullptr && !fatal_ && core_->raft().is_leader()) {
    leader_transfer(std::nullopt, [this](ApiResult<NodeId> r) {
      if (r.ok()) log_.info("shutting down: handing leadership to node ", *r.value);
      else log_.warn("shutting down as leader: ", r.error.status.message());
    });
  }
  continue_shutdown(give_up_ms, std::move(done));
}

void Node::continue_shutdown(std::uint64_t give_up_ms, std::function<void()> done) {
  const bool leading = core_ != nullptr && !fatal_ && core_->raft().is_leader();
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
  if (discovery_) discovery_->stop();
  if (peers_) peers_->stop();
  log_.info("stopped", leading ? " (leadership transfer did not finish in time)" : "");
  asio::post(io_, std::move(done));
}

}  // namespace anya::transport
