#include "transport/agent/agent.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>

#include "transport/admin/server.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;

struct Agent::Impl {
  Impl(NodeConfig c, Logger l, NodeEvents e) : config(std::move(c)), log(std::move(l)) {
    NodeEvents events = std::move(e);
    auto user_fatal = events.on_fatal;
    events.on_fatal = [this, user_fatal](const Status& why) {
      exit_code = 1;
      if (admin) admin->stop();
      io.stop();
      if (user_fatal) user_fatal(why);
    };
    node = std::make_unique<Node>(io, config, log, std::move(events));
  }
  NodeConfig config;
  Logger log;
  asio::io_context io{1};
  std::unique_ptr<Node> node;
  std::unique_ptr<AdminServer> admin;
  std::atomic<int> exit_code{0};
  bool stopping = false;

  void graceful_stop() {
    if (stopping) return;
    stopping = true;
    log.info("stopping: no new requests; handing over leadership if leader");
    if (admin) admin->stop();
    node->shutdown([this] { io.stop(); });
  }
};

Agent::Agent(NodeConfig config, Logger log, NodeEvents events)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(log), std::move(events))) {}

Agent::~Agent() = default;

Status Agent::start() {
  Impl& s = *impl_;
  tls::TlsFiles files{s.config.tls_ca, s.config.tls_cert, s.config.tls_key};
  auto tls = tls::make_context(files, tls::Side::server);
  if (!tls) return tls.status();
  AdminServerOptions ao;
  ao.host = s.config.admin_listen.host;
  ao.port = s.config.admin_listen.port;
  ao.tls = *tls;
  s.admin = std::make_unique<AdminServer>(s.io, *s.node, ao, s.log.with("admin"));
  if (Status st = s.admin->start(); !st) return st;
  const std::string endpoint =
      "https://" + s.config.admin_listen.host + ":" + std::to_string(s.admin->port());
  if (Status st = s.node->start(endpoint); !st) {
    s.admin->stop();
    return st;
  }
  s.log.info("admin API on ", endpoint);
  return {};
}

int Agent::run(bool handle_signals) {
  Impl& s = *impl_;
  std::optional<asio::signal_set> signals;
  if (handle_signals) {
    signals.emplace(s.io, SIGTERM, SIGINT);
    signals->async_wait([&s](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      s.log.info("received signal ", signal);
      s.graceful_stop();
    });
  }
  s.io.run();
  return s.exit_code.load();
}

void Agent::request_stop() {
  asio::post(impl_->io, [this] { impl_->graceful_stop(); });
}

void Agent::post(std::function<void(Node&)> fn) {
  asio::post(impl_->io, [this, fn = std::move(fn)] { fn(*impl_->node); });
}

std::uint16_t Agent::peer_port() const { return impl_->node->peer_port(); }
std::uint16_t Agent::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

}  // namespace anya::transport
