#include "transport/discovery/discovery.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "transport/discovery/announcement.hpp"
#include "transport/discovery/dns_srv_method.hpp"
#include "transport/discovery/kubernetes_method.hpp"
#include "transport/discovery/multicast_method.hpp"
#include "transport/metrics/metrics.hpp"

namespace anya::transport::discovery {

namespace asio = boost::asio;
using engine::discovery::DiscoveredPeers;
using engine::discovery::MethodReport;
using engine::discovery::MethodStatus;
using engine::discovery::PeerChange;

namespace {

class StaticMethod final : public Method {
 public:
  StaticMethod(asio::io_context& io, std::vector<StaticMember> members)
      : io_(io), members_(std::move(members)), alive_(std::make_shared<bool>(true)) {}
  ~StaticMethod() override { stop(); }
  std::string_view name() const override { return "static"; }
  Status start(ReportFn report) override {
    std::vector<engine::discovery::Proposal> peers;
    for (const StaticMember& m : members_) {
      engine::discovery::Proposal p;
      p.id = m.id;
      p.address = m.peer_address.to_string();
      peers.push_back(std::move(p));
    }
    // Posted like every other method's report, so start() never re-enters its caller.
    asio::post(io_, [alive = std::weak_ptr<bool>(alive_), report = std::move(report),
                     peers = std::move(peers)]() mutable {
      if (alive.lock()) report(MethodReport::success("static", std::move(peers)));
    });
    return {};
  }
  void stop() override { alive_.reset(); }

 private:
  asio::io_context& io_;
  std::vector<StaticMember> members_;
  std::shared_ptr<bool> alive_;  // reset by stop(): the posted report does nothing
};

}  // namespace

std::unique_ptr<Method> make_static_method(asio::io_context& io,
                                           std::vector<StaticMember> members) {
  return std::make_unique<StaticMethod>(io, std::move(members));
}

struct Discovery::Impl {
  Impl(asio::io_context& i, DiscoveryOptions o, Logger l, metrics::Registry* r)
      : io(i), options(std::move(o)), log(std::move(l)), timer(i), merged(options.config.methods) {
    if (!options.getenv) options.getenv = [](const char* name) { return std::getenv(name); };
    if (r == nullptr) return;
    peers_gauge = &r->gauge_family("anya_discovery_peers",
                                   "Peers each discovery method proposes now", {"method"});
    errors = &r->counter_family("anya_discovery_errors_total",
                                "Failed discovery reports and refused inputs (multicast), by "
                                "method and reason", {"method", "reason"});
    last_success = &r->gauge_family("anya_discovery_last_success_seconds",
                                    "Seconds since the discovery method last worked (NaN: never)",
                                    {"method"});
    known = &r->gauge("anya_discovery_known_peers",
                      "Peers in the merged discovered view (all methods, by node id)");
  }

  Result<std::unique_ptr<Method>> build(const std::string& name);
  void on_report(const MethodReport& report);
  void housekeeping();
  void update_metrics();
  void log_changes(const std::vector<PeerChange>& changes);

  asio::io_context& io;
  DiscoveryOptions options;
  Logger log;
  asio::steady_timer timer;
  DiscoveredPeers merged;
  std::vector<std::unique_ptr<Method>> methods;
  ChangesFn on_change;
  std::map<std::string, std::uint64_t> copied_drops;  // "method/reason" -> total copied
  metrics::Family<metrics::Gauge>* peers_gauge = nullptr;
  metrics::Family<metrics::Counter>* errors = nullptr;
  metrics::Family<metrics::Gauge>* last_success = nullptr;
  metrics::Gauge* known = nullptr;
  bool stopped = false;
};

Result<std::unique_ptr<Method>> Discovery::Impl::build(const std::string& name) {
  const DiscoveryConfig& c = options.config;
  if (name == "static") return make_static_method(io, options.members);
  if (name == "dns_srv") {
    DnsSrvOptions o;
    o.name = c.dns_srv.service + "." + c.dns_srv.domain;
    if (c.dns_srv.nameserver) {
      o.server = {c.dns_srv.nameserver->host, c.dns_srv.nameserver->port};
    } else {
      Result<dns::Nameserver> ns = dns::system_nameserver();
      if (!ns) return Status(Errc::invalid_argument, "discovery.dns_srv.nameserver: not set, "
                                                     "and " + ns.status().message());
      o.server = *ns;
    }
    o.min_refresh_ms = c.dns_srv.min_refresh_ms;
    o.max_refresh_ms = c.dns_srv.max_refresh_ms;
    o.timeout_ms = c.dns_srv.timeout_ms;
    return make_dns_srv_method(io, o, log.with("dns_srv"));
  }
  if (name == "kubernetes") {
    Result<KubernetesOptions> o = kubernetes_options(c.kubernetes, options.getenv);
    if (!o) return o.status();
    return make_kubernetes_method(io, *o, log.with("kubernetes"));
  }
  ANYA_ASSERT(name == "multicast");  // validate() allows these four only
  Result<std::string> secret =
      load_cluster_secret(c.multicast.secret_file, "discovery.multicast.secret_file");
  if (!secret) return secret.status();
  MulticastOptions o;
  o.cluster = options.cluster;
  o.self = options.self;
  o.advertise = options.advertise.to_string();
  o.group = c.multicast.group;
  o.port = c.multicast.port;
  o.interface = c.multicast.interface;
  o.interval_ms = c.multicast.interval_ms;
  o.secret = std::move(*secret);
  o.replay_window_ms = c.multicast.replay_window_ms;
  return make_multicast_method(io, std::move(o), log.with("multicast"));
}

void Discovery::Impl::on_report(const MethodReport& report) {
  if (stopped) return;
  const MethodStatus* before = merged.status(report.method);
  ANYA_ASSERT(before != nullptr);
  const std::string previous_error = before->last_error;
  const bool was_failing = before->consecutive_failures > 0;
  const std::vector<PeerChange> changes = merged.apply(report, steady_now_ms());
  const MethodStatus& after = *merged.status(report.method);
  if (!report.ok || after.consecutive_failures > 0) {
    if (errors != nullptr) errors->with({report.method, after.last_reason}).inc();
    // Once per new error, not once per retry; the metrics count every one.
    if (after.last_error != previous_error) {
      log.warn(report.method, " failed (", after.last_reason, "): ", after.last_error,
               "; keeping the ", after.peers, " peers it proposed before");
    }
  } else if (was_failing) {
    log.info(report.method, " works again: ", after.peers, " peers");
  }
  log_changes(changes);
  update_metrics();
  if (!changes.empty() && on_change) on_change(changes);
}

void Discovery::Impl::log_changes(const std::vector<PeerChange>& changes) {
  for (const PeerChange& c : changes) {
    switch (c.kind) {
      case PeerChange::Kind::added:
        log.info("node ", c.id, " proposed at ", c.address, " (", c.method, ")");
        break;
      case PeerChange::Kind::address_changed:
        log.info("node ", c.id, " moved from ", c.previous_address, " to ", c.address, " (",
                 c.method, ")");
        break;
      case PeerChange::Kind::removed:
        log.info("node ", c.id, " no longer proposed by any method (last at ", c.address,
                 "); a member stays a member and is still dialled there");
        break;
    }
  }
}

void Discovery::Impl::update_metrics() {
  if (peers_gauge == nullptr) return;
  const std::uint64_t now = steady_now_ms();
  for (const MethodStatus& s : merged.statuses()) {
    peers_gauge->with({s.method}).set(static_cast<double>(s.peers));
    last_success->with({s.method}).set(
        s.last_success_ms ? static_cast<double>(now - *s.last_success_ms) / 1000.0
                          : std::numeric_limits<double>::quiet_NaN());
  }
  known->set(static_cast<double>(merged.peers().size()));
  for (const auto& m : methods) {
    for (const auto& [reason, total] : m->drops()) {
      std::uint64_t& copied = copied_drops[std::string(m->name()) + "/" + reason];
      if (total > copied) errors->with({std::string(m->name()), reason}).inc(total - copied);
      copied = total;
    }
  }
}

void Discovery::Impl::housekeeping() {
  if (stopped) return;
  const std::vector<PeerChange> changes = merged.expire(steady_now_ms());
  log_changes(changes);
  update_metrics();
  if (!changes.empty() && on_change) on_change(changes);
  timer.expires_after(std::chrono::milliseconds(kHousekeepingMs));
  timer.async_wait([this](const boost::system::error_code& e) {
    if (!e) housekeeping();
  });
}

Discovery::Discovery(asio::io_context& io, DiscoveryOptions options, Logger log,
                     metrics::Registry* registry)
    : impl_(std::make_unique<Impl>(io, std::move(options), std::move(log), registry)) {
  for (const std::string& m : impl_->options.config.methods) follows_ |= m != "static";
}

Discovery::~Discovery() { stop(); }

Status Discovery::start(ChangesFn on_change) {
  std::vector<std::unique_ptr<Method>> methods;
  for (const std::string& name : impl_->options.config.methods) {
    Result<std::unique_ptr<Method>> m = impl_->build(name);
    if (!m) return m.status();
    methods.push_back(std::move(*m));
  }
  return start_with(std::move(methods), std::move(on_change));
}

Status Discovery::start_with(std::vector<std::unique_ptr<Method>> methods, ChangesFn on_change) {
  Impl& s = *impl_;
  ANYA_ASSERT(s.methods.empty());
  ANYA_ASSERT(methods.size() == s.options.config.methods.size());
  s.on_change = std::move(on_change);
  s.methods = std::move(methods);
  for (const auto& m : s.methods) {
    Status st = m->start([&s](MethodReport r) { s.on_report(r); });
    if (!st) {
      stop();
      return st;
    }
  }
  std::string names;
  for (const auto& m : s.methods) names += (names.empty() ? "" : ", ") + std::string(m->name());
  s.log.info("methods: ", names, follows_ ? "" : " (members are dialled at their membership "
                                                   "addresses)");
  s.housekeeping();
  return {};
}

void Discovery::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.timer.cancel();
  for (const auto& m : s.methods) m->stop();
}

const DiscoveredPeers& Discovery::peers() const { return impl_->merged; }

boost::json::value Discovery::status_json() const {
  const std::uint64_t now = steady_now_ms();
  boost::json::array methods;
  for (const MethodStatus& s : impl_->merged.statuses()) {
    boost::json::object m{{"method", s.method},
                          {"ok", s.successes > 0 && s.consecutive_failures == 0},
                          {"peers", s.peers},
                          {"consecutive_failures", s.consecutive_failures},
                          {"last_error", s.last_error},
                          {"last_reason", s.last_reason}};
    if (s.last_success_ms) m["last_success_ms_ago"] = now - *s.last_success_ms;
    methods.push_back(std::move(m));
  }
  boost::json::array peers;
  for (const auto& [id, p] : impl_->merged.peers()) {
    boost::json::array via(p.methods.begin(), p.methods.end());
    peers.push_back(boost::json::object{
        {"id", id}, {"address", p.address}, {"method", p.method}, {"methods", std::move(via)}});
  }
  return boost::json::object{{"methods", std::move(methods)}, {"peers", std::move(peers)}};
}

}  // namespace anya::transport::discovery
