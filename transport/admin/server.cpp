#include "transport/admin/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <map>
#include <set>
#include <sstream>

#include "transport/admin/router.hpp"
#include "transport/net/connection_gate.hpp"
#include "transport/net/listen.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxDrainBytes = 2 * AdminLimits::max_body_bytes;
using Clock = std::chrono::steady_clock;

std::uint64_t to_ms(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}
std::uint64_t now_ms() { return to_ms(Clock::now()); }

net::GateLimits gate_limits(const AdminServerOptions& o) {
  net::GateLimits l;
  l.max_connections = o.max_connections;
  l.max_unauthenticated = o.max_unauthenticated;
  l.max_unauthenticated_per_source = o.max_unauthenticated_per_source;
  l.handshake_deadline_ms = o.handshake_timeout_ms;
  l.idle_deadline_ms = o.idle_timeout_ms;
  return l;
}
}  // namespace

// An accepted connection that has sent nothing yet: its socket and its deadline, nothing more.
// The TLS stream (an SSL object and its record buffers, tens of KB) is made when the first bytes
// arrive, so a flood of idle connections costs a socket each, not a TLS session each.
struct AdminArrival {
  AdminArrival(tcp::socket s, net::ConnectionId i, Clock::time_point d, std::string from)
      : socket(std::move(s)), timer(socket.get_executor()), id(i), deadline(d),
        source(std::move(from)) {}
  tcp::socket socket;
  asio::steady_timer timer;
  net::ConnectionId id;
  Clock::time_point deadline;  // for the whole handshake, not just the first byte
  std::string source;
  bool done = false;  // became a session, timed out, was evicted or stopped
};

class AdminSession;

struct AdminServer::Impl {
  Impl(asio::io_context& io, NodeApi& node, AdminServerOptions o, Logger l)
      : io(io), node(node), options(std::move(o)), log(std::move(l)), acceptor(io),
        gate(gate_limits(options)) {}
  asio::io_context& io;
  NodeApi& node;
  AdminServerOptions options;
  Logger log;
  tcp::acceptor acceptor;
  net::ConnectionGate gate;  // knows every connection below, by id
  std::map<net::ConnectionId, std::shared_ptr<AdminArrival>> arrivals;
  std::map<net::ConnectionId, std::shared_ptr<AdminSession>> sessions;
  ReplayGuard replay;  // Idempotency-Key answers, per caller
  bool stopped = false;
  void accept_next();
  void admit(tcp::socket socket);
  void watch(const std::shared_ptr<AdminArrival>& arrival);
  void promote(const std::shared_ptr<AdminArrival>& arrival);
  void drop(AdminArrival& arrival);
  void evict(net::ConnectionId id);
  // Every end of a connection comes here, arrival or session.
  void forget(net::ConnectionId id);
  // A line about connections in bulk (refusals, evictions, timeouts): at most one per reason
  // per interval, saying how many were left out.
  template <typename... Parts>
  void log_limited(LogLevel level, std::string_view reason, const Parts&... parts) {
    const net::LogLimiter::Turn turn = gate.should_log(reason, now_ms());
    if (!turn || !log.enabled(level)) return;
    std::ostringstream out;
    (out << ... << parts);
    out << net::LogLimiter::suppressed_note(turn.suppressed);
    log.log(level, out.str());
  }
};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(AdminServer::Impl& server, tcp::socket socket, net::ConnectionId id)
      : server_(server), stream_(std::move(socket), *server.options.tls), id_(id) {
    // With an authorizer, ask for a client certificate without requiring one: a client may
    // instead send a bearer token with each request, and the authorizer refuses a request that
    // has neither (401). Without one (the transport's own tests), a certificate is required.
    if (server.options.authorizer != nullptr) {
      SSL_set_verify(stream_.native_handle(), SSL_VERIFY_PEER, nullptr);
    }
  }

  // The handshake must be done by `deadline`: its clock started when the connection arrived.
  void start(Clock::time_point deadline) {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream_).expires_at(deadline);
    stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
      if (self->closed_) return;  // evicted or stopped meanwhile
      if (ec) {
        // Limited: a slow-loris flood fails here once per connection.
        self->server_.log_limited(
            LogLevel::info, "tls_handshake", "refused admin connection: TLS handshake: ",
            tls::describe_handshake_failure(self->stream_.native_handle(), ec));
        return self->close();
      }
      if (!self->note_identity()) return self->close();
      self->server_.gate.authenticated(self->id_, now_ms());
      self->read_request();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
    auto self = shared_from_this();  // the server's map may hold the last reference
    server_.forget(id_);
  }

 private:
  // What the handshake proved: a client or node certificate, or none (a bearer token must then
  // come with each request). False for a certificate that does not verify or names nothing.
  bool note_identity() {
    SSL* ssl = stream_.native_handle();
    beast::error_code ignored;
    caller_.source = beast::get_lowest_layer(stream_).socket().remote_endpoint(ignored)
                         .address().to_string();
    if (SSL_get0_peer_certificate(ssl) == nullptr) return true;  // token clients
    Result<tls::Identity> id = tls::peer_identity(ssl);
    if (!id) {
      server_.log.warn("refused admin connection from ", caller_.source, ": ",
                       id.status().message());
      return false;
    }
    if (id->kind == tls::Identity::Kind::node) caller_.node_id = id->node_id;
    else caller_.client_name = id->client_name;
    client_ = id->describe();
    return true;
  }

  void read_request() {
    if (!closed_) server_.gate.active(id_, now_ms());  // the idle clock starts again
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
    r.caller = caller_;
    if (auto it = req.find(http::field::authorization); it != req.end()) {
      r.caller.authorization = std::string(it->value());
    }
    r.now_unix_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    server_.log.debug(client_, " ", r.method, " ", r.target);
    auto self = shared_from_this();
    auto done = [self](AdminResponse response) {
      if (!self->closed_) self->write(std::move(response));
    };
    if (auto it = req.find("Idempotency-Key"); it != req.end()) {
      r.idempotency_key = std::string(it->value());
    }
    if (auto it = req.find(kClientIdHeader); it != req.end()) r.client_id = it->value();
    if (auto it = req.find(kClientSeqHeader); it != req.end()) r.client_seq = it->value();
    if (server_.options.authorizer == nullptr) return route_admin_request(r, server_.node, done);
    ANYA_ASSERT(server_.options.audit != nullptr);
    serve_admin_request_once(r, server_.node, *server_.options.authorizer,
                             *server_.options.audit, server_.replay, done, server_.options.join);
  }

  void write(AdminResponse r) {
    // A caller without a credential gets one answer per connection: a stranger pays a TLS
    // handshake for every refused request instead of pipelining them.
    if (r.status == 401) keep_alive_ = false;
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
  net::ConnectionId id_;  // in server_.gate and server_.sessions
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string client_ = "a client with no certificate";
  auth::Caller caller_;
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
    if (!ec) admit(std::move(socket));
    accept_next();
  });
}

// The gate decides; a refused socket closes as it goes out of scope here.
void AdminServer::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;  // reset before we got to it
  const std::string source = remote.address().to_string();
  const Clock::time_point now = Clock::now();
  const net::Admission a = gate.admit(source, to_ms(now));
  if (a.verdict == net::Admission::Verdict::refuse) {
    return log_limited(LogLevel::warn, "refused_full", "refused an admin connection from ",
                       source, ": all ", options.max_connections,
                       " connections are open and past their handshake");
  }
  if (a.verdict == net::Admission::Verdict::accept_after_evicting) {
    evict(a.evicted);
    log_limited(LogLevel::warn, "evicted_unauthenticated", "closed an admin connection from ",
                a.evicted_source, " that had not finished its handshake, to admit one from ",
                source, " (at most ", options.max_unauthenticated, " such connections, ",
                options.max_unauthenticated_per_source, " per address)");
  }
  socket.set_option(tcp::no_delay(true), ec);
  const auto deadline = now + std::chrono::milliseconds(options.handshake_timeout_ms);
  auto arrival = std::make_shared<AdminArrival>(std::move(socket), a.id, deadline, source);
  arrivals.emplace(a.id, arrival);
  watch(arrival);
}

// Waits for the first bytes or the deadline, whichever comes first.
void AdminServer::Impl::watch(const std::shared_ptr<AdminArrival>& arrival) {
  arrival->timer.expires_at(arrival->deadline);
  arrival->timer.async_wait([this, arrival](beast::error_code ec) {
    if (ec || arrival->done) return;
    log_limited(LogLevel::info, "silent_timeout", "closed an admin connection from ",
                arrival->source, " that sent nothing within ", options.handshake_timeout_ms,
                " ms");
    drop(*arrival);
  });
  arrival->socket.async_wait(tcp::socket::wait_read, [this, arrival](beast::error_code ec) {
    if (arrival->done) return;
    beast::error_code ignored;
    // Readable with nothing to read: the client closed (or reset) before saying anything.
    if (ec || arrival->socket.available(ignored) == 0) return drop(*arrival);
    promote(arrival);
  });
}

void AdminServer::Impl::promote(const std::shared_ptr<AdminArrival>& arrival) {
  ANYA_ASSERT(!arrival->done);
  arrival->done = true;
  arrival->timer.cancel();
  arrivals.erase(arrival->id);
  gate.spoke(arrival->id);
  auto session = std::make_shared<AdminSession>(*this, std::move(arrival->socket), arrival->id);
  const bool inserted = sessions.emplace(arrival->id, session).second;
  ANYA_ASSERT(inserted);
  session->start(arrival->deadline);
}

void AdminServer::Impl::drop(AdminArrival& arrival) {
  ANYA_ASSERT(!arrival.done);
  arrival.done = true;
  arrival.timer.cancel();
  beast::error_code ignored;
  arrival.socket.close(ignored);
  forget(arrival.id);
}

void AdminServer::Impl::evict(net::ConnectionId id) {
  if (auto it = arrivals.find(id); it != arrivals.end()) {
    const std::shared_ptr<AdminArrival> arrival = it->second;
    return drop(*arrival);
  }
  const auto it = sessions.find(id);
  ANYA_ASSERT(it != sessions.end());  // the gate only names connections we hold
  const std::shared_ptr<AdminSession> session = it->second;
  session->close();
}

void AdminServer::Impl::forget(net::ConnectionId id) {
  ANYA_ASSERT(arrivals.count(id) + sessions.count(id) <= 1);
  arrivals.erase(id);
  sessions.erase(id);
  gate.closed(id, now_ms());
}

AdminServer::AdminServer(asio::io_context& io, NodeApi& node, AdminServerOptions options,
                         Logger log)
    : impl_(std::make_unique<Impl>(io, node, std::move(options), std::move(log))) {
  ANYA_ASSERT(impl_->options.tls != nullptr);
}

AdminServer::~AdminServer() = default;

Status AdminServer::start() {
  Impl& s = *impl_;
  const Status listening =
      net::listen(s.acceptor, s.options.host, s.options.port, "admin.listen");
  if (!listening) return listening;
  s.accept_next();
  return {};
}

void AdminServer::set_tls(std::shared_ptr<asio::ssl::context> tls) {
  ANYA_ASSERT(tls != nullptr);
  impl_->options.tls = std::move(tls);  // sessions hold their own SSL, and so the old SSL_CTX
}

std::uint16_t AdminServer::port() const {
  return net::local_port(impl_->acceptor);
}

void AdminServer::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  beast::error_code ignored;
  s.acceptor.close(ignored);
  const auto arrivals = s.arrivals;
  for (const auto& [id, arrival] : arrivals) s.drop(*arrival);
  const auto sessions = s.sessions;
  for (const auto& [id, session] : sessions) session->close();
  ANYA_ASSERT(s.gate.open_connections() == 0);
}

std::map<std::string, std::uint64_t> AdminServer::refusals() const {
  return impl_->gate.counters();
}

std::size_t AdminServer::open_connections() const { return impl_->gate.open_connections(); }

}  // namespace anya::transport
