#include "transport/health/network_probes.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <type_traits>

#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// What every run shares: the deadline, the phase it is in (for the error text), and the one
// report. Runs live in shared_ptrs their pending handlers hold.
class RunBase : public ProbeRun, public std::enable_shared_from_this<RunBase> {
 public:
  RunBase(asio::io_context& io, std::uint64_t timeout_ms, ProbeDone done)
      : timer_(io), timeout_ms_(timeout_ms), done_(std::move(done)), start_(SteadyClock::now()) {
    ANYA_ASSERT(done_ != nullptr);
    ANYA_ASSERT(timeout_ms_ > 0);
  }

  void cancel() override {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    abort_io();
  }

 protected:
  virtual void abort_io() = 0;

  void arm_deadline() {
    timer_.expires_after(std::chrono::milliseconds(timeout_ms_));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->finished_) return;
      self->timed_out_ = true;
      self->abort_io();  // the pending operation completes with an error: fail() reports
    });
  }
  // A step failed (or was aborted by the deadline). `detail` replaces ec's text when set.
  void fail(const boost::system::error_code& ec, const std::string& detail = {}) {
    if (timed_out_) {
      return finish(false, "timed out after " + std::to_string(timeout_ms_) + " ms while " +
                               phase_);
    }
    finish(false, (detail.empty() ? ec.message() : detail) + " while " + phase_);
  }
  void finish(bool ok, std::string error) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    abort_io();
    ProbeResult r;
    r.ok = ok;
    r.error = ok ? std::string() : std::move(error);
    r.latency_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start_)
            .count());
    ANYA_ASSERT(r.ok == r.error.empty());
    done_(std::move(r));
  }
  bool finished() const { return finished_; }

  std::string phase_;

 private:
  asio::steady_timer timer_;
  std::uint64_t timeout_ms_;
  ProbeDone done_;
  SteadyClock::time_point start_;
  bool finished_ = false;
  bool timed_out_ = false;
};

template <class Stream>
Stream make_stream(asio::io_context& io, asio::ssl::context* tls) {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    ANYA_ASSERT(tls != nullptr);
    return Stream(io, *tls);
  } else {
    ANYA_ASSERT(tls == nullptr);
    return Stream(io);
  }
}

template <class Stream>
class HttpRun final : public RunBase {
 public:
  HttpRun(asio::io_context& io, HttpProbeTarget target, std::uint64_t timeout_ms, ProbeDone done)
      : RunBase(io, timeout_ms, std::move(done)), target_(std::move(target)), resolver_(io),
        stream_(make_stream<Stream>(io, target_.tls.get())) {}

  void start() {
    arm_deadline();
    phase_ = "resolving " + target_.url.host;
    resolver_.async_resolve(
        target_.url.host, std::to_string(target_.url.port),
        [self = shared_from_this(), this](const boost::system::error_code& ec,
                                          const tcp::resolver::results_type& results) {
          if (finished()) return;
          if (ec) return fail(ec);
          connect(results);
        });
  }

 private:
  void abort_io() override {
    resolver_.cancel();
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

  std::string endpoint() const { return target_.url.host + ":" + std::to_string(target_.url.port); }

  void connect(const tcp::resolver::results_type& results) {
    phase_ = "connecting to " + endpoint();
    beast::get_lowest_layer(stream_).async_connect(
        results, [self = shared_from_this(), this](const boost::system::error_code& ec,
                                                   const tcp::endpoint&) {
          if (finished()) return;
          if (ec) return fail(ec);
          if constexpr (std::is_same_v<Stream, TlsStream>) {
            handshake();
          } else {
            send();
          }
        });
  }

  void handshake() {
    phase_ = "TLS handshake with " + endpoint();
    SSL* ssl = stream_.native_handle();
    const std::string& host = target_.url.host;
    // The certificate must name the host we dialled: an IP SAN for a literal, a DNS name else.
    const bool named = is_ip_literal(host)
                           ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1
                           : SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
                                 SSL_set1_host(ssl, host.c_str()) == 1;
    if (!named) return finish(false, "cannot set the TLS host name " + host);
    stream_.async_handshake(asio::ssl::stream_base::client,
                            [self = shared_from_this(), this](const boost::system::error_code& ec) {
                              if (finished()) return;
                              if (ec) {
                                return fail(ec, tls::describe_handshake_failure(
                                                    stream_.native_handle(), ec));
                              }
                              send();
                            });
  }

  void send() {
    phase_ = "sending the request to " + endpoint();
    const bool default_port = target_.url.port == (target_.url.https ? 443 : 80);
    request_ = {http::verb::get, target_.url.target, 11};
    request_.set(http::field::host, default_port ? target_.url.host : endpoint());
    request_.set(http::field::user_agent, "anya-ha-probe");
    request_.keep_alive(false);
    http::async_write(stream_, request_,
                      [self = shared_from_this(), this](const boost::system::error_code& ec,
                                                        std::size_t) {
                        if (finished()) return;
                        if (ec) return fail(ec);
                        read();
                      });
  }

  void read() {
    phase_ = "reading the response from " + endpoint();
    http::async_read_header(stream_, buffer_, parser_,
                            [self = shared_from_this(), this](const boost::system::error_code& ec,
                                                              std::size_t) {
                              if (finished()) return;
                              if (ec) return fail(ec);
                              const unsigned status = parser_.get().result_int();
                              if (status == target_.expect_status) return finish(true, {});
                              finish(false, "HTTP " + std::to_string(status) + " (expected " +
                                                std::to_string(target_.expect_status) + ")");
                            });
  }

  HttpProbeTarget target_;
  tcp::resolver resolver_;
  Stream stream_;
  http::request<http::empty_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::empty_body> parser_;
};

class TcpRun final : public RunBase {
 public:
  TcpRun(asio::io_context& io, HostPort address, std::uint64_t timeout_ms, ProbeDone done)
      : RunBase(io, timeout_ms, std::move(done)), address_(std::move(address)), resolver_(io),
        socket_(io) {}

  void start() {
    arm_deadline();
    phase_ = "resolving " + address_.host;
    resolver_.async_resolve(
        address_.host, std::to_string(address_.port),
        [self = shared_from_this(), this](const boost::system::error_code& ec,
                                          const tcp::resolver::results_type& results) {
          if (finished()) return;
          if (ec) return fail(ec);
          phase_ = "connecting to " + address_.to_string();
          asio::async_connect(socket_, results,
                              [self, this](const boost::system::error_code& e,
                                           const tcp::endpoint&) {
                                if (finished()) return;
                                if (e) return fail(e);
                                finish(true, {});
                              });
        });
  }

 private:
  void abort_io() override {
    resolver_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  HostPort address_;
  tcp::resolver resolver_;
  tcp::socket socket_;
};

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> make_probe_tls_context(
    const std::filesystem::path& ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status(Errc::invalid_argument, "the system's CA certificates: " + ec.message());
  } else {
    ctx->load_verify_file(ca_file.string(), ec);
    if (ec) return Status(Errc::invalid_argument, ca_file.string() + ": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return Status(Errc::invalid_argument, "TLS: " + ec.message());
  return ctx;
}

std::shared_ptr<ProbeRun> start_http_probe(asio::io_context& io, const HttpProbeTarget& target,
                                           std::uint64_t timeout_ms, ProbeDone done) {
  ANYA_ASSERT(target.url.https == (target.tls != nullptr));
  if (target.url.https) {
    auto run = std::make_shared<HttpRun<TlsStream>>(io, target, timeout_ms, std::move(done));
    run->start();
    return run;
  }
  auto run = std::make_shared<HttpRun<PlainStream>>(io, target, timeout_ms, std::move(done));
  run->start();
  return run;
}

std::shared_ptr<ProbeRun> start_tcp_probe(asio::io_context& io, const HostPort& address,
                                          std::uint64_t timeout_ms, ProbeDone done) {
  auto run = std::make_shared<TcpRun>(io, address, timeout_ms, std::move(done));
  run->start();
  return run;
}

}  // namespace anya::transport
