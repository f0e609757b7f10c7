#include "transport/agent/agent.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "transport/admin/client.hpp"
#include "transport/admin/health_server.hpp"
#include "transport/admin/server.hpp"
#include "transport/agent/audit_trail.hpp"
#include "transport/tls/certs.hpp"
#include "transport/tls/reloader.hpp"

namespace anya::transport {

namespace asio = boost::asio;

namespace {
// How often the TLS files are checked for a change, and the leader's audit head published.
constexpr std::chrono::seconds kHousekeepingInterval{10};
// How often the leader asks every member for its audit chain head, and how long each may take.
constexpr std::chrono::seconds kHeadCollectInterval{15};
constexpr std::chrono::seconds kFirstHeadCollect{3};
constexpr std::uint64_t kHeadRequestTimeoutMs = 2000;

// Signs joining nodes' certificates with the CA key (tls.ca_key), for the identity the router
// decided: a node id that is not a member, paid for with a spent join token.
class NodeIssuer final : public CertificateIssuer {
 public:
  static constexpr int kValidityDays = 825;
  explicit NodeIssuer(tls::KeyPair ca) : ca_(std::move(ca)) {}
  Result<std::string> issue_node(std::string_view csr_pem, engine::NodeId node,
                                 const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses) const override {
    return tls::sign_request(ca_, csr_pem, tls::Identity::node(node), dns_names, ip_addresses,
                             kValidityDays);
  }

 private:
  tls::KeyPair ca_;
};

// Without an audit log (embedded use with no audit.secret_file), nothing can be recorded, so
// every mutation is refused: fail closed. Reads and refusals go on.
struct NoAuditLog final : AuditSink {
  Status record(const AuditEvent& e) override {
    if (e.outcome != "requested") return {};
    return {Errc::unsupported, "no audit log is configured (audit.secret_file)"};
  }
};
}  // namespace

struct Agent::Impl {
  Impl(NodeConfig c, Logger l, NodeEvents e) : config(std::move(c)), log(std::move(l)) {
    NodeEvents events = std::move(e);
    auto user_fatal = events.on_fatal;
    events.on_fatal = [this, user_fatal](const Status& why) {
      exit_code = 1;
      if (admin) admin->stop();
      if (health) health->stop();
      io.stop();
      if (user_fatal) user_fatal(why);
    };
    auto user_leader = events.on_leader_change;
    events.on_leader_change = [this, user_leader](engine::NodeId leader, engine::Term term) {
      if (audit) audit->leader_changed(leader, term);
      if (leader == config.node_id) publish_audit_head(true);
      if (user_leader) user_leader(leader, term);
    };
    auto user_change = events.on_cluster_change;
    events.on_cluster_change = [this, user_change](const std::string& action,
                                                   const std::string& target) {
      if (audit) audit->cluster_changed(action, target);
      if (user_change) user_change(action, target);
    };
    node = std::make_unique<Node>(io, config, log, std::move(events));
  }
  NodeConfig config;
  Logger log;
  asio::io_context io{1};
  std::unique_ptr<Node> node;
  std::unique_ptr<tls::TlsReloader> tls;
  std::unique_ptr<auth::Authorizer> authorizer;
  std::unique_ptr<AuditTrail> audit;
  NoAuditLog no_audit;
  std::unique_ptr<NodeIssuer> issuer;
  NodeServices join;
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<HealthServer> health;
  std::unique_ptr<asio::steady_timer> housekeeping;
  metrics::Counter* tls_reloads = nullptr;
  metrics::Counter* tls_reload_failures = nullptr;
  std::atomic<int> exit_code{0};
  bool stopping = false;

  Status open_audit();
  Status prepare_join();
  // The leader records every member's audit chain head in the replicated store, so a member's
  // audit file cut short later is seen from the others. Members are asked over HTTPS (blocking
  // calls), so on a thread of its own; what it learns is applied on the io thread.
  void collect_heads_loop();
  void record_member_head(engine::NodeId id, std::uint64_t seq, const std::string& mac);
  void stop_collector();
  std::thread collector;
  std::mutex collector_mutex;
  std::condition_variable collector_wake;
  bool collector_stop = false;
  // The chain probe ([bitcoin] chain_probe, or the embedder's callback): its results are
  // posted to the io thread. Joined before the io_context it posts to is destroyed.
  ChainProbeFn chain_probe;
  std::unique_ptr<ChainProber> chain_prober;
  void start_chain_probe();
  ~Impl() {
    stop_collector();
    chain_prober.reset();
  }
  void reload_tls(bool forced);
  void publish_audit_head(bool force);
  void schedule_housekeeping();

  void graceful_stop() {
    if (stopping) return;
    stopping = true;
    log.info("stopping: no new requests; handing over leadership if leader");
    if (admin) admin->stop();
    if (health) health->stop();
    if (housekeeping) housekeeping->cancel();
    {
      std::lock_guard<std::mutex> lock(collector_mutex);
      collector_stop = true;
    }
    collector_wake.notify_all();
    node->shutdown([this] { io.stop(); });
  }
};

Status Agent::Impl::open_audit() {
  if (config.audit_secret_file.empty()) {
    log.warn("no audit log: audit.secret_file is not set; the admin API refuses every mutation");
    return {};
  }
  Result<std::string> secret = load_audit_secret(config.audit_secret_file);
  if (!secret) return {secret.status().code(), "audit.secret_file: " + secret.status().message()};
  Result<std::unique_ptr<AuditLog>> file =
      AuditLog::open(config.audit_file, std::move(*secret), config.node_id);
  if (!file) return {file.status().code(), "audit.file: " + file.status().message()};
  log.info("audit log ", config.audit_file.string(), " at seq ", (*file)->last_seq());
  audit = std::make_unique<AuditTrail>(std::move(*file), [this] { return node->term(); },
                                       node->metrics_registry(), log.with("audit"));
  return {};
}

// Every node serves the CA certificate (GET /v1/ca); one with the CA key also signs joins.
Status Agent::Impl::prepare_join() {
  Result<std::string> ca = tls::read_pem_file(config.tls_ca);
  if (!ca) return {ca.status().code(), "tls.ca: " + ca.status().message()};
  join.ca_pem = *ca;
  if (audit) {
    join.audit_head = [this] {
      const AuditTrail::Head h = audit->head();
      return boost::json::serialize(boost::json::object{
          {"node", config.node_id}, {"seq", h.seq}, {"mac", h.mac_hex}});
    };
  }
  if (config.tls_ca_key.empty()) return {};
  Result<tls::KeyPair> pair = tls::read_pem_files(config.tls_ca, config.tls_ca_key);
  if (!pair) return {pair.status().code(), "tls.ca_key: " + pair.status().message()};
  issuer = std::make_unique<NodeIssuer>(std::move(*pair));
  join.issuer = issuer.get();
  log.info("this node signs joining nodes' certificates (tls.ca_key is set)");
  return {};
}

// SIGHUP (forced) or a periodic check: new handshakes use the new files; connections made
// before go on with what they authenticated with. A bad file keeps the old material.
void Agent::Impl::reload_tls(bool forced) {
  Result<bool> r = forced ? tls->reload() : tls->reload_if_changed();
  if (!r) {
    tls_reload_failures->inc();
    log.error("TLS files not reloaded, keeping the ones in use: ", r.status().message());
    return;
  }
  if (!*r) return;
  tls_reloads->inc();
  node->set_tls(tls->server(), tls->client());
  if (admin) admin->set_tls(tls->server());
  log.info("TLS files reloaded", forced ? " (SIGHUP)" : "", ": ", tls->describe());
}

// The leader writes its own audit chain head into the replicated store, so every node holds
// what this node's audit file must reach.
void Agent::Impl::publish_audit_head(bool force) {
  if (!audit || !node->is_leader()) return;
  std::optional<AuditTrail::Head> head = audit->take_due_head(force);
  if (head) record_member_head(config.node_id, head->seq, head->mac_hex);
}

void Agent::Impl::stop_collector() {
  {
    std::lock_guard<std::mutex> lock(collector_mutex);
    collector_stop = true;
  }
  collector_wake.notify_all();
  if (collector.joinable()) collector.join();
}

void Agent::Impl::collect_heads_loop() {
  std::unique_lock<std::mutex> lock(collector_mutex);
  auto wait = kFirstHeadCollect;
  while (!collector_wake.wait_for(lock, wait, [this] { return collector_stop; })) {
    wait = kHeadCollectInterval;
    lock.unlock();
    auto endpoints = std::make_shared<std::promise<std::map<engine::NodeId, std::string>>>();
    auto got = endpoints->get_future();
    asio::post(io, [this, endpoints] {
      endpoints->set_value(node->is_leader() ? node->member_admin_endpoints()
                                             : std::map<engine::NodeId, std::string>{});
    });
    if (got.wait_for(std::chrono::milliseconds(kHeadRequestTimeoutMs)) ==
        std::future_status::ready) {
      for (const auto& [id, endpoint] : got.get()) {
        AdminClientOptions o;
        o.ca_cert = config.tls_ca;
        o.anonymous = true;
        o.timeout_ms = kHeadRequestTimeoutMs;
        Result<HttpReply> r = admin_request(o, endpoint, "GET", "/v1/audit/head");
        boost::system::error_code ec;
        const boost::json::value v = r && r->status == 200
                                         ? boost::json::parse(r->body, ec)
                                         : boost::json::value();
        const boost::json::object* head = ec ? nullptr : v.if_object();
        if (head == nullptr || !head->contains("seq") || !head->contains("mac") ||
            !(head->at("seq").is_uint64() || head->at("seq").is_int64()) ||
            !head->at("mac").is_string()) {
          continue;  // unreachable, not keeping an audit log, or nonsense: asked again later
        }
        const std::uint64_t seq = head->at("seq").to_number<std::uint64_t>(ec);
        if (ec) continue;
        std::string mac(head->at("mac").as_string());
        asio::post(io, [this, id = id, seq, mac = std::move(mac)] {
          record_member_head(id, seq, mac);
        });
      }
    }
    lock.lock();
  }
}

// Keeps the highest head each member reported. A member reporting a lower seq than the cluster
// recorded has lost audit records: said loudly, and the higher head is kept as the evidence.
void Agent::Impl::record_member_head(engine::NodeId id, std::uint64_t seq,
                                     const std::string& mac) {
  if (!node->is_leader() || stopping || mac.size() != 64) return;
  const std::string key = std::string(kAuditHeadKeyPrefix) + std::to_string(id);
  std::uint64_t recorded = 0;
  for (const KvEntryView& e : node->kv_scan(key, 1)) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(e.value, ec);
    if (e.key == key && !ec && v.is_object() && v.as_object().contains("seq")) {
      recorded = v.at("seq").to_number<std::uint64_t>(ec);
    }
  }
  if (seq < recorded) {
    log.error("node ", id, " reports audit head seq ", seq, " but the cluster recorded seq ",
              recorded, ": its audit log has lost records (truncated or replaced); check it "
              "with anya-ha audit verify --head-seq ", recorded);
    return;
  }
  if (seq == recorded) return;
  KvWrite w;
  w.key = key;
  w.value = boost::json::serialize(boost::json::object{{"seq", seq}, {"mac", mac}});
  node->kv_write(std::move(w), [this](ApiResult<KvWriteResult> r) {
    if (!r.ok()) log.debug("audit head not recorded: ", r.error.status.message());
  });
}

void Agent::Impl::schedule_housekeeping() {
  housekeeping->expires_after(kHousekeepingInterval);
  housekeeping->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    reload_tls(false);
    publish_audit_head(true);
    schedule_housekeeping();
  });
}

void Agent::Impl::start_chain_probe() {
  const BitcoinConfig& b = config.bitcoin;
  std::string what = "the embedder's callback";
  if (!chain_probe && !b.chain_probe.empty()) {
    chain_probe = [command = b.chain_probe, timeout_ms = b.chain_probe_timeout_ms] {
      return run_chain_probe_command(command, timeout_ms);
    };
    what = "`" + b.chain_probe + "` (timeout " + format_duration_ms(b.chain_probe_timeout_ms) +
           ")";
  }
  if (!chain_probe) return;  // no view of the chain: gating rests on the other members' views
  chain_prober = std::make_unique<ChainProber>(
      chain_probe, b.chain_probe_interval_ms, [this](Result<engine::ChainView> r) {
        asio::post(io, [this, r = std::move(r)]() mutable {
          if (!stopping) node->on_chain_probe(std::move(r));
        });
      });
  chain_prober->start();
  log.info("chain probe every ", format_duration_ms(b.chain_probe_interval_ms), ": ", what,
           "; at most ", b.max_blocks_behind, " blocks behind the quorum to lead");
}

Agent::Agent(NodeConfig config, Logger log, NodeEvents events)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(log), std::move(events))) {}

Agent::~Agent() = default;

Status Agent::start() {
  Impl& s = *impl_;
  if (Status st = prepare_data_dir(s.config.data_dir, s.log); !st) return st;
  tls::TlsFiles files{s.config.tls_ca, s.config.tls_cert, s.config.tls_key, s.config.tls_crl};
  s.tls = std::make_unique<tls::TlsReloader>(files, s.config.node_id);
  if (Status st = s.tls->load(); !st) return st;
  auto& registry = s.node->metrics_registry();
  s.tls_reloads = &registry.counter("anya_tls_reloads_total",
                                    "Certificate, key and CRL files reloaded (SIGHUP or changed)");
  s.tls_reload_failures = &registry.counter(
      "anya_tls_reload_failures_total", "Reloads refused (a bad file; the old ones stay in use)");
  if (Status st = s.open_audit(); !st) return st;
  s.authorizer = std::make_unique<auth::Authorizer>(
      s.config.auth, [node = s.node.get()](std::string_view id) { return node->token_record(id); });

  if (Status st = s.prepare_join(); !st) return st;
  AdminServerOptions ao;
  ao.host = s.config.admin_listen.host;
  ao.port = s.config.admin_listen.port;
  ao.tls = s.tls->server();
  ao.authorizer = s.authorizer.get();
  ao.audit = s.audit ? static_cast<AuditSink*>(s.audit.get()) : &s.no_audit;
  ao.join = &s.join;
  s.admin = std::make_unique<AdminServer>(s.io, *s.node, ao, s.log.with("admin"));
  if (Status st = s.admin->start(); !st) return st;
  const std::string endpoint =
      "https://" + s.config.admin_listen.host + ":" + std::to_string(s.admin->port());
  if (Status st = s.node->start(endpoint, s.tls->server(), s.tls->client()); !st) {
    s.admin->stop();
    return st;
  }
  if (s.config.health_listen) {
    HealthServerOptions ho;
    ho.host = s.config.health_listen->host;
    ho.port = s.config.health_listen->port;
    s.health = std::make_unique<HealthServer>(s.io, *s.node, ho, s.log.with("health"));
    if (Status st = s.health->start(); !st) return st;
    s.log.info("health and metrics (no credential) on http://", ho.host, ":", s.health->port());
  }
  auto* admin_refused = &registry.counter_family(
      "anya_admin_connections_refused_total",
      "Admin connections closed by the listener's limits (evicted while handshaking, refused "
      "when full, handshake or idle deadline passed)",
      {"reason"});
  auto* admin_open = &registry.gauge("anya_admin_connections", "Admin connections open now");
  s.node->on_scrape([&s, admin_refused, admin_open] {
    if (!s.admin) return;
    for (const auto& [reason, total] : s.admin->refusals()) {
      metrics::Counter& c = admin_refused->with({reason});
      if (total > c.whole()) c.inc(total - c.whole());
    }
    admin_open->set(static_cast<double>(s.admin->open_connections()));
  });
  s.housekeeping = std::make_unique<asio::steady_timer>(s.io);
  s.schedule_housekeeping();
  s.start_chain_probe();
  if (s.audit) s.collector = std::thread([&s] { s.collect_heads_loop(); });
  s.log.info("admin API on ", endpoint, "; TLS: ", s.tls->describe());
  return {};
}

int Agent::run(bool handle_signals) {
  Impl& s = *impl_;
  std::optional<asio::signal_set> signals;
  std::optional<asio::signal_set> hangup;
  if (handle_signals) {
    signals.emplace(s.io, SIGTERM, SIGINT);
    signals->async_wait([&s](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      s.log.info("received signal ", signal);
      s.graceful_stop();
    });
    // SIGHUP reloads certificates, keys and CRLs; it never stops the agent.
    hangup.emplace(s.io, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_hangup;
    on_hangup = [&s, &hangup, &on_hangup](const boost::system::error_code& ec, int) {
      if (ec || s.stopping) return;
      s.log.info("received SIGHUP: reloading TLS files");
      s.reload_tls(true);
      hangup->async_wait(on_hangup);
    };
    hangup->async_wait(on_hangup);
    s.io.run();
    return s.exit_code.load();
  }
  s.io.run();
  return s.exit_code.load();
}

void Agent::set_chain_probe(ChainProbeFn probe) {
  ANYA_ASSERT(impl_->chain_prober == nullptr);  // before start()
  impl_->chain_probe = std::move(probe);
}

void Agent::request_stop() {
  asio::post(impl_->io, [this] { impl_->graceful_stop(); });
}

void Agent::post(std::function<void(Node&)> fn) {
  asio::post(impl_->io, [this, fn = std::move(fn)] { fn(*impl_->node); });
}

std::uint16_t Agent::peer_port() const { return impl_->node->peer_port(); }
std::uint16_t Agent::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }
std::uint16_t Agent::health_port() const { return impl_->health ? impl_->health->port() : 0; }

}  // namespace anya::transport
