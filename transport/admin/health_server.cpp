#include "transport/admin/health_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <list>

#include "transport/admin/router.hpp"
#include "transport/net/listen.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
// Nothing here takes a body; a small one is read and ignored so its sender gets an answer.
constexpr std::size_t kMaxBodyBytes = 1024;
}

bool is_health_path(std::string_view path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics";
}

class HealthSession;

struct HealthServer::Impl {
  Impl(asio::io_context& io, NodeApi& node, HealthServerOptions o, Logger l)
      : node(node), options(std::move(o)), log(std::move(l)), acceptor(io) {}
  NodeApi& node;
  HealthServerOptions options;
  Logger log;
  tcp::acceptor acceptor;
  // Oldest first: at the limit the oldest connection makes room for the newest.
  std::list<std::shared_ptr<HealthSession>> sessions;
  std::map<std::string, std::uint64_t> refusals;
  bool stopped = false;
  void accept_next();
};

class HealthSession : public std::enable_shared_from_this<HealthSession> {
 public:
  HealthSession(HealthServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}

  void read_request() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(std::chrono::milliseconds(server_.options.request_timeout_ms));
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, *parser_, [self](beast::error_code ec, std::size_t) {
      if (ec) return self->close();  // EOF, timeout, garbage: nothing to answer
      self->on_request(self->parser_->release());
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    server_.sessions.remove(shared_from_this());
  }

 private:
  void on_request(http::request<http::string_body> req) {
    const bool head = req.method() == http::verb::head;
    const std::string target(req.target());
    const std::string_view path = std::string_view(target).substr(0, target.find('?'));
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    if (!is_health_path(path) || (req.method() != http::verb::get && !head)) {
      server_.refusals["not_served"]++;
      return write(error_response(ApiError{Status(
                       Errc::not_found, "this listener serves only GET /healthz, /readyz and "
                                        "/metrics; the admin API is on admin.listen")}),
                   head);
    }
    AdminRequest r;
    r.method = "GET";
    r.target = target;
    auto self = shared_from_this();
    route_admin_request(r, server_.node, [self, head](AdminResponse response) {
      if (!self->closed_) self->write(std::move(response), head);
    });
  }

  void write(AdminResponse r, bool head) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "anya-ha");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (head) res->body().clear();  // Content-Length stays GET's
    auto self = shared_from_this();
    stream_.expires_after(std::chrono::milliseconds(server_.options.request_timeout_ms));
    http::async_write(stream_, *res, [self, res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->read_request();
    });
  }

  HealthServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool closed_ = false;
};

void HealthServer::Impl::accept_next() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (!ec) {
      if (sessions.size() >= options.max_connections) {
        refusals["evicted_oldest"]++;
        sessions.front()->close();  // removes itself from the list
      }
      ANYA_ASSERT(sessions.size() < options.max_connections);
      auto session = std::make_shared<HealthSession>(*this, std::move(socket));
      sessions.push_back(session);
      session->read_request();
    }
    accept_next();
  });
}

HealthServer::HealthServer(asio::io_context& io, NodeApi& node, HealthServerOptions options,
                           Logger log)
    : impl_(std::make_unique<Impl>(io, node, std::move(options), std::move(log))) {
  ANYA_ASSERT(impl_->options.max_connections > 0);
}

HealthServer::~HealthServer() = default;

Status HealthServer::start() {
  Impl& s = *impl_;
  const Status listening =
      net::listen(s.acceptor, s.options.host, s.options.port, "admin.health_listen");
  if (!listening) return listening;
  s.accept_next();
  return {};
}

std::uint16_t HealthServer::port() const {
  return net::local_port(impl_->acceptor);
}

void HealthServer::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  beast::error_code ignored;
  s.acceptor.close(ignored);
  auto sessions = s.sessions;
  for (const auto& session : sessions) session->close();
}

const std::map<std::string, std::uint64_t>& HealthServer::refusals() const {
  return impl_->refusals;
}

}  // namespace anya::transport
