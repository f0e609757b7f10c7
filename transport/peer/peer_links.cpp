#include "transport/peer/peer_links.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <chrono>
#include <deque>
#include <random>
#include <set>
#include <sstream>

#include "engine/codec/codec.hpp"
#include "transport/net/connection_gate.hpp"
#include "transport/net/listen.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using WsStream = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
using Clock = std::chrono::steady_clock;
using engine::Message;
using engine::MessageType;
using engine::NodeId;

namespace {
constexpr std::string_view kPeerPath = "/anya-ha/peer/v1";
constexpr std::string_view kNodeHeader = "anya-ha-node";
constexpr std::string_view kClusterHeader = "anya-ha-cluster";
constexpr std::string_view kAdminHeader = "anya-ha-admin";
constexpr std::size_t kMaxAdminEndpointBytes = 300;
constexpr std::size_t kMaxUpgradeRequestBytes = 8192;
// After a burst of at least this many connections handshaking at once, once none is left, the
// heap is trimmed (see trim_heap); not more often than every kMinTrimIntervalMs.
constexpr std::size_t kTrimAfterUnauthenticated = 32;
constexpr std::uint64_t kMinTrimIntervalMs = 1000;

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
std::uint64_t steady_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}
bool is_heartbeat(MessageType t) {
  return t == MessageType::heartbeat || t == MessageType::heartbeat_response;
}
std::uint64_t to_ms(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

net::GateLimits gate_limits(const PeerLinkOptions& o) {
  net::GateLimits l;
  l.max_connections = o.max_accepted_links;
  l.max_unauthenticated = o.max_unauthenticated_links;
  l.max_unauthenticated_per_source = o.max_unauthenticated_links_per_source;
  l.handshake_deadline_ms = o.handshake_timeout_ms;
  l.idle_deadline_ms = 0;  // a link's liveness is the ping loop's (dead_after_ms)
  return l;
}

// glibc keeps what is freed in its arenas for reuse instead of returning it to the system: after
// a burst of accepted connections (each TLS WebSocket holds tens of KB in small blocks) the node
// would keep that memory for good. malloc_trim gives the free pages back.
void trim_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}
}  // namespace

// An accepted connection that has sent nothing yet: its socket and its deadline, nothing more.
// The TLS WebSocket (an SSL object and its buffers) is made when the first bytes arrive, so a
// flood of idle connections costs a socket each.
struct PeerArrival {
  PeerArrival(tcp::socket s, net::ConnectionId i, Clock::time_point d, std::string from)
      : socket(std::move(s)), timer(socket.get_executor()), id(i), deadline(d),
        source(std::move(from)) {}
  tcp::socket socket;
  asio::steady_timer timer;
  net::ConnectionId id;
  Clock::time_point deadline;  // for everything up to the link, not just the first byte
  std::string source;
  bool done = false;  // became a link, timed out, was evicted or stopped
};

// One TLS WebSocket to one peer, dialled or accepted. Owned by shared_ptr: each pending handler
// holds one, so the link lives until its last operation completes.
class Link : public std::enable_shared_from_this<Link> {
 public:
  // `gate_id`: an accepted link's id in the owner's gate (kNoConnection for a dialled one).
  Link(PeerLinks::Impl& owner, WsStream ws, bool outbound, NodeId peer,
       net::ConnectionId gate_id = net::kNoConnection)
      : owner_(owner), ws_(std::move(ws)), ping_timer_(ws_.get_executor()),
        outbound_(outbound), peer_(peer), gate_id_(gate_id) {
    ANYA_ASSERT(outbound_ == (gate_id_ == net::kNoConnection));
  }

  NodeId peer() const { return peer_; }
  net::ConnectionId gate_id() const { return gate_id_; }
  bool outbound() const { return outbound_; }
  bool open() const { return open_; }

  // Dialer: TCP connect, TLS handshake, check the certificate names `peer_`, WebSocket upgrade.
  void dial(const tcp::resolver::results_type& endpoints, const std::string& host);
  void on_connect(beast::error_code ec, const std::string& host);
  // Acceptor: TLS handshake, identity, upgrade request checks, WebSocket accept, all by
  // `deadline`.
  void accept(Clock::time_point deadline);
  void enqueue(std::string frame, MessageType type);
  // Hands over the messages not yet being written, so a link that replaces this one sends
  // them instead of losing them.
  void move_unsent_to(Link& other);
  void close(const std::string& reason);

 private:
  void on_tls_client_handshake(const std::string& host);
  void on_upgrade_request();
  void refuse(const std::string& counter, const std::string& reason);
  template <typename Fields>
  void note_admin_endpoint(const Fields& message) {
    const auto it = message.find(kAdminHeader);
    if (it == message.end() || it->value().size() > kMaxAdminEndpointBytes) return;
    owner_stats().admin_endpoint = std::string(it->value());
  }
  PeerStats& owner_stats();
  void established();
  void read_next();
  void write_next();
  void ping_loop();
  void fail(const std::string& reason);
  Logger& log();

  PeerLinks::Impl& owner_;
  WsStream ws_;
  asio::steady_timer ping_timer_;
  bool outbound_;
  NodeId peer_;  // for an accepted link: known once the certificate is checked
  net::ConnectionId gate_id_;
  bool open_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool ping_outstanding_ = false;
  std::uint64_t ping_sent_us_ = 0;
  beast::flat_buffer buffer_;
  http::request<http::string_body> upgrade_;
  std::unique_ptr<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> refusal_;
  websocket::response_type upgrade_response_;
  struct Outgoing {
    std::string frame;
    MessageType type;
  };
  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
};

struct PeerLinks::Impl {
  Impl(asio::io_context& io, PeerLinkOptions o, PeerLinkCallbacks c, Logger l)
      : io(io), options(std::move(o)), callbacks(std::move(c)), log(std::move(l)),
        acceptor(io), rng(std::random_device{}()), gate(gate_limits(options)) {}

  asio::io_context& io;
  PeerLinkOptions options;
  PeerLinkCallbacks callbacks;
  Logger log;
  tcp::acceptor acceptor;
  std::mt19937_64 rng;  // back-off jitter only
  bool stopped = false;

  struct Dialer {
    std::string address;
    std::unique_ptr<asio::steady_timer> timer;
    std::unique_ptr<tcp::resolver> resolver;
    unsigned attempts = 0;
    std::uint64_t generation = 0;  // bumped when the dialer is replaced or removed
  };
  std::map<NodeId, Dialer> dialers;           // every known peer; dials while unlinked
  std::set<NodeId> members;                   // as last given to set_members
  std::map<NodeId, std::shared_ptr<Link>> active;
  std::set<std::shared_ptr<Link>> pending;    // handshaking
  std::map<NodeId, PeerStats> stats;
  std::map<std::string, std::uint64_t> rejections;
  std::uint64_t next_generation = 1;
  // Accepted connections only, from accept until closed; dialled links are not its business.
  net::ConnectionGate gate;
  std::map<net::ConnectionId, std::shared_ptr<PeerArrival>> arrivals;  // silent so far
  std::size_t unauthenticated_peak = 0;  // since the heap was last trimmed
  std::uint64_t last_trim_ms = 0;

  void accept_next();
  void admit(tcp::socket socket);
  void watch(const std::shared_ptr<PeerArrival>& arrival);
  void promote(const std::shared_ptr<PeerArrival>& arrival);
  void drop(PeerArrival& arrival);
  void evict(net::ConnectionId id);
  // Every end of an accepted connection comes here, arrival or link.
  void gate_closed(net::ConnectionId id);
  // A line about connections in bulk: at most one per reason per interval, saying how many
  // were left out.
  template <typename... Parts>
  void log_limited(LogLevel level, std::string_view reason, const Parts&... parts) {
    const net::LogLimiter::Turn turn = gate.should_log(reason, steady_ms());
    if (!turn || !log.enabled(level)) return;
    std::ostringstream out;
    (out << ... << parts);
    out << net::LogLimiter::suppressed_note(turn.suppressed);
    log.log(level, out.str());
  }
  void dial(NodeId peer, std::uint64_t generation);
  void schedule_dial(NodeId peer, std::uint64_t generation);
  void on_established(const std::shared_ptr<Link>& link);
  void on_closed(const std::shared_ptr<Link>& link, const std::string& reason);
  void reject(const std::string& reason) { rejections[reason]++; }
  // The same refusal repeats on every redial; say it once per kRepeatWarningMs.
  void warn_limited(const std::string& message) {
    const std::uint64_t now = steady_ms();
    auto [it, fresh] = last_warned_ms.emplace(message, now);
    if (!fresh && now - it->second < kRepeatWarningMs) return;
    it->second = now;
    if (last_warned_ms.size() > 1024) last_warned_ms.clear();  // bounded
    log.warn(message);
  }
  static constexpr std::uint64_t kRepeatWarningMs = 10'000;
  std::map<std::string, std::uint64_t> last_warned_ms;
  void on_frame(Link& link, std::string_view bytes);
};

Logger& Link::log() { return owner_.log; }
PeerStats& Link::owner_stats() { return owner_.stats[peer_]; }

void Link::dial(const tcp::resolver::results_type& endpoints, const std::string& host) {
  auto self = shared_from_this();
  beast::get_lowest_layer(ws_).expires_after(
      std::chrono::milliseconds(owner_.options.handshake_timeout_ms));
  // Dial from the address we listen on (when it is a specific one), so a node's links in both
  // directions carry its own address: what a firewall rule, or a test's partition, sees.
  beast::error_code bind_ec;
  const asio::ip::address local = asio::ip::make_address(owner_.options.listen_host, bind_ec);
  if (!bind_ec && !local.is_unspecified() && !endpoints.empty()) {
    const tcp::endpoint remote = endpoints.begin()->endpoint();
    tcp::socket& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(remote.protocol(), bind_ec);
    if (!bind_ec) socket.bind(tcp::endpoint(local, 0), bind_ec);
    if (bind_ec) return fail("bind to " + owner_.options.listen_host + ": " + bind_ec.message());
    beast::get_lowest_layer(ws_).async_connect(
        remote, [self, host](beast::error_code ec) { self->on_connect(ec, host); });
    return;
  }
  beast::get_lowest_layer(ws_).async_connect(
      endpoints, [self, host](beast::error_code ec, const tcp::endpoint&) {
        self->on_connect(ec, host);
      });
}

void Link::on_connect(beast::error_code ec, const std::string& host) {
  auto self = shared_from_this();
  if (ec) {
    if (ec == asio::error::connection_refused && owner_.callbacks.on_peer_gone) {
      owner_.callbacks.on_peer_gone(peer_);
    }
    return fail("connect: " + ec.message());
  }
  ws_.next_layer().async_handshake(
      asio::ssl::stream_base::client, [self, host](beast::error_code ec2) {
        if (ec2) {
          self->owner_.reject("tls");
          const std::string why = "TLS handshake with node " + std::to_string(self->peer_) +
                                  " at " + host + ": " +
                                  tls::describe_handshake_failure(
                                      self->ws_.next_layer().native_handle(), ec2);
          self->owner_.warn_limited("refused link: " + why);
          return self->fail(why);
        }
        self->on_tls_client_handshake(host);
      });
}

void Link::on_tls_client_handshake(const std::string& host) {
  SSL* ssl = ws_.next_layer().native_handle();
  if (Status s = tls::expect_peer(ssl, tls::Identity::node(peer_)); !s) {
    owner_.reject("identity");
    owner_.warn_limited("refused link to " + host + ": " + s.message());
    return fail(s.message());
  }
  const std::string self_id = std::to_string(owner_.options.self);
  const std::string cluster = owner_.options.cluster;
  const std::string admin = owner_.options.admin_endpoint;
  ws_.set_option(websocket::stream_base::decorator(
      [self_id, cluster, admin](websocket::request_type& r) {
        r.set(kNodeHeader, self_id);
        r.set(kClusterHeader, cluster);
        r.set(kAdminHeader, admin);
      }));
  auto self = shared_from_this();
  ws_.async_handshake(upgrade_response_, host, kPeerPath, [self](beast::error_code ec) {
    if (ec) {
      std::string why = "WebSocket upgrade: " + ec.message();
      if (!self->upgrade_response_.body().empty()) why += ": " + self->upgrade_response_.body();
      // With TLS 1.3 a server that refused our certificate says so only now.
      why += " (" + tls::describe_handshake_failure(self->ws_.next_layer().native_handle(), ec) +
             ")";
      self->owner_.warn_limited("link to node " + std::to_string(self->peer_) + " refused: " +
                                why);
      return self->fail(why);
    }
    self->note_admin_endpoint(self->upgrade_response_);
    self->established();
  });
}

void Link::accept(Clock::time_point deadline) {
  auto self = shared_from_this();
  beast::get_lowest_layer(ws_).expires_at(deadline);
  ws_.next_layer().async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
    if (self->closed_) return;  // evicted or stopped meanwhile: not a refusal
    beast::error_code ignored;
    const auto remote = beast::get_lowest_layer(self->ws_).socket().remote_endpoint(ignored);
    const std::string from = remote.address().to_string();
    if (ec) {
      self->owner_.reject("tls");
      const std::string why = "TLS handshake from " + from + ": " +
                              tls::describe_handshake_failure(
                                  self->ws_.next_layer().native_handle(), ec);
      self->owner_.warn_limited("refused link: " + why);
      return self->fail(why);
    }
    Result<tls::Identity> id = tls::peer_identity(self->ws_.next_layer().native_handle());
    if (!id) {
      self->owner_.reject("identity");
      self->owner_.warn_limited("refused link from " + from + ": peer certificate: " +
                                id.status().message());
      return self->fail("peer certificate: " + id.status().message());
    }
    if (id->kind != tls::Identity::Kind::node) {
      self->owner_.reject("not_a_node");
      self->owner_.warn_limited("refused link from " + from + ": " + id->describe() +
                                " tried to open a peer link; only nodes may");
      return self->fail(id->describe() + " tried to open a peer link; only nodes may");
    }
    // Only a member (or, while this node joins, a seed) may link in: a removed member, or a node
    // the cluster never added, has nothing to say to us. Before the first set_members there is
    // no list to check against.
    if (!self->owner_.members.empty() && self->owner_.members.count(id->node_id) == 0) {
      self->owner_.reject("not_a_member");
      self->owner_.warn_limited("refused link from " + from + ": node " +
                                std::to_string(id->node_id) + " is not a member of this cluster");
      return self->fail("node " + std::to_string(id->node_id) + " is not a member");
    }
    self->peer_ = id->node_id;
    self->parser_ = std::make_unique<http::request_parser<http::string_body>>();
    self->parser_->header_limit(kMaxUpgradeRequestBytes);
    self->parser_->body_limit(0);
    http::async_read(self->ws_.next_layer(), self->buffer_, *self->parser_,
                     [self](beast::error_code ec2, std::size_t) {
                       if (self->closed_) return;
                       if (ec2) return self->fail("upgrade request: " + ec2.message());
                       self->upgrade_ = self->parser_->release();
                       self->on_upgrade_request();
                     });
  });
}

void Link::on_upgrade_request() {
  const auto node = upgrade_.find(kNodeHeader);
  const auto cluster = upgrade_.find(kClusterHeader);
  if (!websocket::is_upgrade(upgrade_) || upgrade_.target() != kPeerPath) {
    return refuse("bad_upgrade", "not a peer link upgrade to " + std::string(kPeerPath));
  }
  if (cluster == upgrade_.end() || cluster->value() != owner_.options.cluster) {
    const std::string theirs =
        cluster == upgrade_.end() ? std::string("(none)") : std::string(cluster->value());
    return refuse("cluster", "node " + std::to_string(peer_) + " is in cluster '" + theirs +
                                 "', this is cluster '" + owner_.options.cluster + "'");
  }
  if (node == upgrade_.end() || node->value() != std::to_string(peer_)) {
    const std::string claimed =
        node == upgrade_.end() ? std::string("(none)") : std::string(node->value());
    return refuse("identity", "peer certificate is for node " + std::to_string(peer_) +
                                  ", but it claims to be node " + claimed);
  }
  note_admin_endpoint(upgrade_);
  const std::string admin = owner_.options.admin_endpoint;
  ws_.set_option(websocket::stream_base::decorator([admin](websocket::response_type& r) {
    r.set(kAdminHeader, admin);
  }));
  auto self = shared_from_this();
  ws_.async_accept(upgrade_, [self](beast::error_code ec) {
    if (ec) return self->fail("WebSocket accept: " + ec.message());
    self->established();
  });
}

void Link::refuse(const std::string& counter, const std::string& reason) {
  owner_.reject(counter);
  owner_.warn_limited("refused link: " + reason);
  refusal_ = http::response<http::string_body>(http::status::forbidden, upgrade_.version());
  refusal_.set(http::field::content_type, "text/plain");
  refusal_.body() = reason;
  refusal_.keep_alive(false);
  refusal_.prepare_payload();
  auto self = shared_from_this();
  http::async_write(ws_.next_layer(), refusal_, [self, reason](beast::error_code, std::size_t) {
    self->fail(reason);
  });
}

void Link::established() {
  if (closed_) return;  // evicted or stopped while the last step completed
  ANYA_ASSERT(peer_ != engine::kNoNode);
  if (gate_id_ != net::kNoConnection) owner_.gate.authenticated(gate_id_, steady_ms());
  open_ = true;
  beast::get_lowest_layer(ws_).expires_never();
  ws_.binary(true);
  // Checked against the frame header before the payload is buffered: an oversized frame costs
  // the sender its link, never this node its memory.
  ws_.read_message_max(engine::Limits::max_frame_bytes);
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::milliseconds(owner_.options.handshake_timeout_ms);
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  std::weak_ptr<Link> weak = shared_from_this();
  ws_.control_callback([weak](websocket::frame_type kind, beast::string_view) {
    auto self = weak.lock();
    if (!self || kind != websocket::frame_type::pong) return;
    PeerStats& st = self->owner_.stats[self->peer_];
    st.last_contact_ms = steady_ms();
    if (self->ping_outstanding_) {
      st.rtt_ms = static_cast<double>(steady_us() - self->ping_sent_us_) / 1000.0;
      self->ping_outstanding_ = false;
    }
  });
  owner_.on_established(shared_from_this());
  read_next();
  ping_loop();
  write_next();
}

void Link::read_next() {
  auto self = shared_from_this();
  ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        self->owner_.reject("frame_size");
      } else if (ec.category() == asio::error::get_ssl_category() &&
                 ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                     SSL_R_APPLICATION_DATA_AFTER_CLOSE_NOTIFY) {
        // We closed the link for a protocol violation (Beast answers a frame over the limit
        // this way) while the peer kept sending; Beast reports the teardown's error, not the
        // violation, so the reason is counted as such.
        self->owner_.reject("protocol");
        self->owner_.warn_limited("link to node " + std::to_string(self->peer_) +
                                  " closed: it broke the WebSocket protocol (such as a frame "
                                  "over " + std::to_string(engine::Limits::max_frame_bytes) +
                                  " bytes)");
      }
      return self->fail(ec == websocket::error::closed ? "closed by peer" : ec.message());
    }
    const auto data = self->buffer_.cdata();
    self->owner_.on_frame(*self, std::string_view(static_cast<const char*>(data.data()),
                                                  data.size()));
    self->buffer_.consume(self->buffer_.size());
    if (self->open_) self->read_next();
  });
}

void Link::enqueue(std::string frame, MessageType type) {
  const PeerLinkOptions& o = owner_.options;
  PeerStats& st = owner_.stats[peer_];
  // Shed the oldest queued heartbeats first; the one being written (front) stays.
  for (std::size_t i = writing_ ? 1 : 0;
       i < queue_.size() && (queue_.size() >= o.max_queued_messages ||
                             queued_bytes_ + frame.size() > o.max_queued_bytes);) {
    if (is_heartbeat(queue_[i].type)) {
      queued_bytes_ -= queue_[i].frame.size();
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
      st.dropped_queue_full++;
    } else {
      i++;
    }
  }
  if (queue_.size() >= o.max_queued_messages || queued_bytes_ + frame.size() > o.max_queued_bytes) {
    st.dropped_queue_full++;
    if (type == MessageType::append) {
      st.dropped_appends++;
      log().warn("queue to node ", peer_, " full (", queue_.size(), " messages, ",
                 queued_bytes_, " bytes): dropped an append; the leader will resend it");
    }
    return;
  }
  queued_bytes_ += frame.size();
  queue_.push_back({std::move(frame), type});
  write_next();
}

void Link::move_unsent_to(Link& other) {
  const std::size_t keep = writing_ ? 1 : 0;  // the frame on the wire stays with this link
  while (queue_.size() > keep) {
    Outgoing o = std::move(queue_.back());
    queue_.pop_back();
    queued_bytes_ -= o.frame.size();
    other.queued_bytes_ += o.frame.size();
    other.queue_.push_front(std::move(o));
  }
  ANYA_ASSERT(queue_.size() == keep);
  other.write_next();
}

void Link::write_next() {
  if (!open_ || writing_ || queue_.empty()) return;
  writing_ = true;
  auto self = shared_from_this();
  ws_.async_write(asio::buffer(queue_.front().frame), [self](beast::error_code ec, std::size_t n) {
    self->writing_ = false;
    if (ec) return self->fail("write: " + ec.message());
    PeerStats& st = self->owner_.stats[self->peer_];
    st.messages_sent++;
    st.bytes_sent += n;
    self->queued_bytes_ -= self->queue_.front().frame.size();
    self->queue_.pop_front();
    self->write_next();
  });
}

void Link::ping_loop() {
  ping_timer_.expires_after(std::chrono::milliseconds(owner_.options.ping_interval_ms));
  auto self = shared_from_this();
  ping_timer_.async_wait([self](beast::error_code ec) {
    if (ec || !self->open_) return;
    const std::optional<std::uint64_t>& last = self->owner_.stats[self->peer_].last_contact_ms;
    if (last && steady_ms() - *last > self->owner_.options.dead_after_ms) {
      return self->fail("nothing heard for " +
                        std::to_string(self->owner_.options.dead_after_ms) + " ms");
    }
    if (!self->ping_outstanding_) {
      self->ping_outstanding_ = true;
      self->ping_sent_us_ = steady_us();
      self->ws_.async_ping({}, [self](beast::error_code ec2) {
        if (ec2) self->fail("ping: " + ec2.message());
      });
    }
    self->ping_loop();
  });
}

void Link::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  ping_timer_.cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close();
  owner_.on_closed(shared_from_this(), reason);
}

void Link::fail(const std::string& reason) { close(reason); }

// ---- PeerLinks::Impl -------------------------------------------------------------------------

void PeerLinks::Impl::accept_next() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (!ec) {
      admit(std::move(socket));
    } else {
      log_limited(LogLevel::warn, "accept_error", "accept: ", ec.message());
    }
    accept_next();
  });
}

// The gate decides; a refused socket closes as it goes out of scope here.
void PeerLinks::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;  // reset before we got to it
  const std::string source = remote.address().to_string();
  const Clock::time_point now = Clock::now();
  const net::Admission a = gate.admit(source, to_ms(now));
  if (a.verdict == net::Admission::Verdict::refuse) {
    reject("flood_refused");
    return log_limited(LogLevel::warn, "flood_refused", "refused a peer connection from ",
                       source, ": all ", options.max_accepted_links, " accepted links are up");
  }
  if (a.verdict == net::Admission::Verdict::accept_after_evicting) {
    reject("flood_evicted");
    evict(a.evicted);
    log_limited(LogLevel::warn, "flood_evicted", "closed a peer connection from ",
                a.evicted_source, " that was not a link yet, to admit one from ", source,
                " (at most ", options.max_unauthenticated_links, " such connections, ",
                options.max_unauthenticated_links_per_source, " per address)");
  }
  unauthenticated_peak = std::max(unauthenticated_peak, gate.unauthenticated());
  socket.set_option(tcp::no_delay(true), ec);
  const auto deadline = now + std::chrono::milliseconds(options.handshake_timeout_ms);
  auto arrival = std::make_shared<PeerArrival>(std::move(socket), a.id, deadline, source);
  arrivals.emplace(a.id, arrival);
  watch(arrival);
}

// Waits for the first bytes or the deadline, whichever comes first.
void PeerLinks::Impl::watch(const std::shared_ptr<PeerArrival>& arrival) {
  arrival->timer.expires_at(arrival->deadline);
  arrival->timer.async_wait([this, arrival](beast::error_code ec) {
    if (ec || arrival->done) return;
    reject("flood_timeout");
    log_limited(LogLevel::info, "flood_timeout", "closed a peer connection from ",
                arrival->source, " that sent nothing within ", options.handshake_timeout_ms,
                " ms");
    drop(*arrival);
  });
  arrival->socket.async_wait(tcp::socket::wait_read, [this, arrival](beast::error_code ec) {
    if (arrival->done) return;
    beast::error_code ignored;
    // Readable with nothing to read: the peer closed (or reset) before saying anything.
    if (ec || arrival->socket.available(ignored) == 0) return drop(*arrival);
    promote(arrival);
  });
}

void PeerLinks::Impl::promote(const std::shared_ptr<PeerArrival>& arrival) {
  ANYA_ASSERT(!arrival->done);
  arrival->done = true;
  arrival->timer.cancel();
  arrivals.erase(arrival->id);
  gate.spoke(arrival->id);
  auto link = std::make_shared<Link>(*this, WsStream(std::move(arrival->socket),
                                                     *options.server_tls),
                                     false, engine::kNoNode, arrival->id);
  pending.insert(link);
  link->accept(arrival->deadline);
}

void PeerLinks::Impl::drop(PeerArrival& arrival) {
  ANYA_ASSERT(!arrival.done);
  arrival.done = true;
  arrival.timer.cancel();
  beast::error_code ignored;
  arrival.socket.close(ignored);
  arrivals.erase(arrival.id);
  gate_closed(arrival.id);
}

void PeerLinks::Impl::evict(net::ConnectionId id) {
  if (auto it = arrivals.find(id); it != arrivals.end()) {
    const std::shared_ptr<PeerArrival> arrival = it->second;
    return drop(*arrival);
  }
  // Not silent: a link still in its handshake (the gate never names one that is up).
  for (const std::shared_ptr<Link>& link : pending) {
    if (link->gate_id() != id) continue;
    const std::shared_ptr<Link> keep = link;  // close() erases it from `pending`
    return keep->close("closed to admit a newer connection");
  }
  ANYA_ASSERT(false && "the gate named a connection this node does not hold");
}

void PeerLinks::Impl::gate_closed(net::ConnectionId id) {
  const std::uint64_t now = steady_ms();
  gate.closed(id, now);
  if (gate.unauthenticated() != 0 || unauthenticated_peak < kTrimAfterUnauthenticated) return;
  if (now - last_trim_ms < kMinTrimIntervalMs) return;  // the peak stays: trimmed next time
  unauthenticated_peak = 0;
  last_trim_ms = now;
  trim_heap();
  log.debug("trimmed the heap after a burst of connections");
}

void PeerLinks::Impl::schedule_dial(NodeId peer, std::uint64_t generation) {
  auto it = dialers.find(peer);
  if (stopped || it == dialers.end() || it->second.generation != generation) return;
  Dialer& d = it->second;
  const unsigned shift = std::min(d.attempts, 16u);
  const std::uint64_t cap = std::min(options.dial_backoff_max_ms,
                                     options.dial_backoff_min_ms << shift);
  // Jitter in [cap/2, cap]: peers that lost the same node do not redial in lockstep.
  const std::uint64_t delay_ms = cap / 2 + rng() % (cap / 2 + 1);
  d.attempts++;
  d.timer->expires_after(std::chrono::milliseconds(delay_ms));
  d.timer->async_wait([this, peer, generation](beast::error_code ec) {
    if (!ec) dial(peer, generation);
  });
}

void PeerLinks::Impl::dial(NodeId peer, std::uint64_t generation) {
  auto it = dialers.find(peer);
  if (stopped || it == dialers.end() || it->second.generation != generation) return;
  if (active.count(peer) != 0) return;  // connected meanwhile
  const std::string& address = it->second.address;
  const std::size_t colon = address.rfind(':');
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  it->second.resolver->async_resolve(
      host, port, [this, peer, generation, host](beast::error_code ec,
                                                 tcp::resolver::results_type results) {
        auto d = dialers.find(peer);
        if (stopped || d == dialers.end() || d->second.generation != generation) return;
        if (ec) {
          log.debug("resolve node ", peer, " (", d->second.address, "): ", ec.message());
          return schedule_dial(peer, generation);
        }
        auto link = std::make_shared<Link>(*this, WsStream(io, *options.client_tls), true, peer);
        pending.insert(link);
        link->dial(results, host);
      });
}

void PeerLinks::Impl::on_established(const std::shared_ptr<Link>& link) {
  pending.erase(link);
  const NodeId peer = link->peer();
  // Both sides dial while they have no link, so two may come up at once. Each side keeps the one
  // dialled by the lower id and closes the other, so both keep the same one.
  const bool preferred = link->outbound() == (options.self < peer);
  auto old = active.find(peer);
  if (old != active.end() && old->second != link && old->second->open()) {
    if (!preferred) {
      link->close("duplicate link; keeping the one node " +
                  std::to_string(std::min(options.self, peer)) + " dialled");
      return;
    }
    std::shared_ptr<Link> replaced = old->second;
    active.erase(old);  // before close(): a replaced link does not report the peer down
    replaced->move_unsent_to(*link);
    replaced->close("replaced by a newer link");
  }
  active[peer] = link;
  PeerStats& st = stats[peer];
  st.connected = true;
  st.connects++;
  st.last_contact_ms = steady_ms();
  if (auto d = dialers.find(peer); d != dialers.end()) d->second.attempts = 0;
  log.info("link to node ", peer, " up (", link->outbound() ? "dialled" : "accepted", ")");
}

void PeerLinks::Impl::on_closed(const std::shared_ptr<Link>& link, const std::string& reason) {
  pending.erase(link);
  if (link->gate_id() != net::kNoConnection) gate_closed(link->gate_id());
  const NodeId peer = link->peer();
  auto it = active.find(peer);
  const bool was_active = it != active.end() && it->second == link;
  if (was_active) {
    active.erase(it);
    stats[peer].connected = false;
    stats[peer].disconnects++;
    log.info("link to node ", peer, " down: ", reason);
  } else {
    log.debug("link to ", peer == engine::kNoNode ? std::string("unknown node")
                                                  : "node " + std::to_string(peer),
              " closed before use: ", reason);
  }
  if (stopped) return;
  if (link->outbound() || was_active) {
    auto d = dialers.find(peer);
    if (d != dialers.end()) schedule_dial(peer, d->second.generation);
  }
  if (was_active && callbacks.on_peer_down) callbacks.on_peer_down(peer, reason);
}

void PeerLinks::Impl::on_frame(Link& link, std::string_view bytes) {
  PeerStats& st = stats[link.peer()];
  st.last_contact_ms = steady_ms();
  Result<Message> m = engine::decode_message(bytes);
  if (!m) {
    reject("malformed");
    log.warn("dropped a frame from node ", link.peer(), ": ", m.status().message());
    return;
  }
  if (m->from != link.peer() || m->to != options.self) {
    reject("spoofed_sender");
    log.warn("dropped a message from node ", link.peer(), " claiming to be from node ", m->from,
             " to node ", m->to);
    return;
  }
  st.messages_received++;
  st.bytes_received += bytes.size();
  if (callbacks.on_message) callbacks.on_message(*m);
}

// ---- PeerLinks -------------------------------------------------------------------------------

PeerLinks::PeerLinks(asio::io_context& io, PeerLinkOptions options, PeerLinkCallbacks callbacks,
                     Logger log)
    : impl_(std::make_unique<Impl>(io, std::move(options), std::move(callbacks),
                                   std::move(log))) {
  ANYA_ASSERT(impl_->options.self != engine::kNoNode);
  ANYA_ASSERT(impl_->options.server_tls != nullptr);
  ANYA_ASSERT(impl_->options.client_tls != nullptr);
  ANYA_ASSERT(impl_->options.dial_backoff_min_ms > 0);
}

PeerLinks::~PeerLinks() = default;

Status PeerLinks::start() {
  Impl& s = *impl_;
  const Status listening =
      net::listen(s.acceptor, s.options.listen_host, s.options.listen_port, "peer.listen");
  if (!listening) return listening;
  s.accept_next();
  return {};
}

std::uint16_t PeerLinks::listen_port() const {
  return net::local_port(impl_->acceptor);
}

void PeerLinks::set_members(const std::map<NodeId, std::string>& addresses) {
  Impl& s = *impl_;
  if (s.stopped) return;
  for (auto it = s.dialers.begin(); it != s.dialers.end();) {
    auto found = addresses.find(it->first);
    if (found == addresses.end() || found->second != it->second.address) {
      it->second.timer->cancel();
      it->second.resolver->cancel();
      it = s.dialers.erase(it);
    } else {
      ++it;
    }
  }
  // Close links to former members only: a node that is joining links to us before it is a
  // member, and must keep that link until the leader has added it.
  std::vector<std::shared_ptr<Link>> removed;
  for (const auto& [peer, link] : s.active) {
    if (s.members.count(peer) != 0 && addresses.count(peer) == 0) removed.push_back(link);
  }
  s.members.clear();
  for (const auto& [peer, address] : addresses) s.members.insert(peer);
  for (const auto& link : removed) link->close("no longer a member");
  for (const auto& [peer, address] : addresses) {
    if (peer == s.options.self || s.dialers.count(peer) != 0) continue;
    Impl::Dialer& d = s.dialers[peer];
    d.address = address;
    d.timer = std::make_unique<asio::steady_timer>(s.io);
    d.resolver = std::make_unique<tcp::resolver>(s.io);
    d.generation = s.next_generation++;
    s.dial(peer, d.generation);
  }
}

void PeerLinks::send(const Message& message) {
  Impl& s = *impl_;
  ANYA_ASSERT(message.from == s.options.self);
  auto it = s.active.find(message.to);
  if (it == s.active.end() || !it->second->open()) {
    s.stats[message.to].dropped_not_connected++;
    return;
  }
  it->second->enqueue(engine::encode_message(message), message.type);
}

void PeerLinks::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  beast::error_code ignored;
  s.acceptor.close(ignored);
  for (auto& [peer, d] : s.dialers) {
    d.timer->cancel();
    d.resolver->cancel();
  }
  std::vector<std::shared_ptr<Link>> links;
  for (auto& [peer, link] : s.active) links.push_back(link);
  for (const auto& link : s.pending) links.push_back(link);
  for (const auto& link : links) link->close("shutting down");
  const auto arrivals = s.arrivals;
  for (const auto& [id, arrival] : arrivals) s.drop(*arrival);
  ANYA_ASSERT(s.gate.open_connections() == 0);
  s.dialers.clear();
}

const std::map<NodeId, PeerStats>& PeerLinks::stats() const { return impl_->stats; }
const std::map<std::string, std::uint64_t>& PeerLinks::rejections() const {
  return impl_->rejections;
}

void PeerLinks::set_tls(std::shared_ptr<boost::asio::ssl::context> server,
                        std::shared_ptr<boost::asio::ssl::context> client) {
  ANYA_ASSERT(server != nullptr);
  ANYA_ASSERT(client != nullptr);
  // Links already up keep their own SSL (which holds a reference on its old SSL_CTX).
  impl_->options.server_tls = std::move(server);
  impl_->options.client_tls = std::move(client);
}

}  // namespace anya::transport
