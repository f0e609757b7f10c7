#include "transport/admin/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <set>

#include "transport/admin/router.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxDrainBytes = 2 * AdminLimits::max_body_bytes;
}

class AdminSession;

struct AdminServer::Impl {
  Impl(asio::io_context& io, NodeApi& node, AdminServerOptions o, Logger l)
      : io(io), node(node), options(std::move(o)), log(std::move(l)), acceptor(io) {}
  asio::io_context& io;
  NodeApi& node;
  AdminServerOptions options;
  Logger log;
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<AdminSession>> sessions;
  bool stopped = false;
  void accept_next();
};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(AdminServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket), *server.options.tls) {}

  void start() {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(server_.options.handshake_timeout_ms));
    stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
      if (ec) {
        self->server_.log.info("refused admin connection: TLS handshake: ",
                               tls::describe_handshake_failure(self->stream_.native_handle(), ec));
        return self->close();
      }
      Result<tls::Identity> id = tls::peer_identity(self->stream_.native_handle());
      if (!id) {
        self->server_.log.warn("refused admin connection: ", id.status().message());
        return self->close();
      }
      self->client_ = id->describe();
      self->read_request();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
    server_.sessions.erase(shared_from_this());
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(AdminLimits::max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(server_.options.idle_timeout_ms));
    auto self = shared_from_this();
    http::async_read(stream_, buffer_, *parser_, [self](beast::error_code ec, std::size_t) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        AdminResponse r = error_response(ApiError{Status(
            Errc::invalid_argument, ec == http::error::body_limit
                                        ? "request body larger than 1 MiB"
                                        : "request headers larger than 16 KiB")});
        r.status = 413;
        self->keep_alive_ = false;
        self->drain_ = true;
        return self->write(std::move(r));
      }
      if (ec) return self->close();  // EOF, timeout or garbage: nothing to answer
      self->on_request(self->parser_->release());
    });
  }

  void on_request(http::request<http::string_body> req) {
    beast::get_lowest_layer(stream_).expires_never();  // a write may wait for a commit
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    AdminRequest r;
    // HEAD is answered as GET without the body (its headers, Content-Length included, are
    // GET's), so a load balancer probing `HEAD /healthz` gets the real status.
    head_ = req.method() == http::verb::head;
    r.method = head_ ? std::string("GET") : std::string(req.method_string());
    r.target = std::string(req.target());
    if (auto it = req.find(http::field::if_match); it != req.end()) {
      r.if_match = std::string(it->value());
    }
    r.body = std::move(req.body());
    server_.log.debug(client_, " ", r.method, " ", r.target);
    auto self = shared_from_this();
    route_admin_request(r, server_.node, [self](AdminResponse response) {
      if (!self->closed_) self->write(std::move(response));
    });
  }

  void write(AdminResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "anya-ha");
    res->set(http::field::content_type, r.content_type);
    if (!r.allow.empty()) res->set(http::field::allow, r.allow);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (head_) {
      // The header alone: a body after it would be read as the start of the next response.
      return send(std::make_shared<http::response<http::empty_body>>(std::move(res->base())));
    }
    send(std::move(res));
  }

  template <typename Response>
  void send(std::shared_ptr<Response> res) {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(server_.options.idle_timeout_ms));
    http::async_write(stream_, *res, [self, res](beast::error_code ec, std::size_t) {
      if (!ec && self->drain_) return self->drain_then_close();
      if (ec || !self->keep_alive_) return self->close();
      self->read_request();
    });
  }

  // After refusing a request whose body is still arriving: stop sending and discard what the
  // client still sends (at most kMaxDrainBytes, within the handshake timeout) before closing,
  // so it finishes its write and reads the refusal instead of a reset.
  void drain_then_close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(server_.options.handshake_timeout_ms));
    drain_next(0);
  }
  void drain_next(std::size_t drained_bytes) {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(drain_buffer_), [self, drained_bytes](beast::error_code ec, std::size_t n) {
          if (ec || drained_bytes + n > kMaxDrainBytes) return self->close();
          self->drain_next(drained_bytes + n);
        });
  }

  AdminServer::Impl& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string client_;
  bool keep_alive_ = true;
  bool head_ = false;  // the request being answered is a HEAD
  unsigned version_ = 11;
  bool closed_ = false;
  bool drain_ = false;
  std::array<char, 16 * 1024> drain_buffer_{};
};

void AdminServer::Impl::accept_next() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (!ec) {
      if (sessions.size() >= options.max_connections) {
        log.warn("admin connection refused: ", options.max_connections, " already open");
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<AdminSession>(*this, std::move(socket));
        sessions.insert(session);
        session->start();
      }
    }
    accept_next();
  });
}

AdminServer::AdminServer(asio::io_context& io, NodeApi& node, AdminServerOptions options,
                         Logger log)
    : impl_(std::make_unique<Impl>(io, node, std::move(options), std::move(log))) {
  ANYA_ASSERT(impl_->options.tls != nullptr);
}

AdminServer::~AdminServer() = default;

Status AdminServer::start() {
  Impl& s = *impl_;
  const std::string where = s.options.host + ":" + std::to_string(s.options.port);
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(s.options.host, ec);
  if (ec) return {Errc::invalid_argument, "admin.listen: " + where + ": not an IP address"};
  const tcp::endpoint endpoint(address, s.options.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return {Errc::io_error, "admin.listen: cannot listen on " + where + ": " + ec.message()};
  s.accept_next();
  return {};
}

std::uint16_t AdminServer::port() const {
  beast::error_code ec;
  const tcp::endpoint e = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

void AdminServer::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  beast::error_code ignored;
  s.acceptor.close(ignored);
  auto sessions = s.sessions;
  for (const auto& session : sessions) session->close();
}

}  // namespace anya::transport
