#include "transport/discovery/kubernetes_api.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <fstream>
#include <memory>
#include <optional>

#include "transport/discovery/endpoint_slices.hpp"

namespace anya::transport::discovery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxTokenBytes = 64 * 1024;
constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;  // a non-200 answer to a watch

class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(asio::io_context& io, ApiServer server, ApiCall call)
      : server_(std::move(server)), call_(std::move(call)), resolver_(io), watchdog_(io),
        ssl_(asio::ssl::context::tls_client) {}

  void start();
  void cancel() {
    cancelled_ = true;
    finished_ = true;
    close();
  }

 private:
  void close() {
    watchdog_.cancel();
    resolver_.cancel();
    if (stream_) beast::get_lowest_layer(*stream_).close();
  }
  void arm() {
    auto self = shared_from_this();
    watchdog_.expires_after(std::chrono::milliseconds(call_.timeout_ms));
    watchdog_.async_wait([self](const boost::system::error_code& e) {
      if (e || self->finished_) return;
      self->fail("timeout", "no answer from " + self->server_.url() + " within " +
                                std::to_string(self->call_.timeout_ms) + "ms");
    });
  }
  void fail(std::string reason, std::string error) {
    finish({std::move(reason), std::move(error), 0, {}});
  }
  void io_failed(const char* reason, const char* what, const boost::system::error_code& e) {
    if (finished_) return;
    fail(reason, std::string(what) + " " + server_.url() + ": " + e.message());
  }
  void finish(ApiOutcome outcome) {
    if (finished_) return;
    finished_ = true;
    close();
    // Posted, so `done` never runs inside api_call() or a cancel; a cancel before it runs
    // still wins.
    asio::post(watchdog_.get_executor(),
               [self = shared_from_this(), outcome = std::move(outcome)]() mutable {
                 if (!self->cancelled_) self->call_.done(std::move(outcome));
               });
  }
  void on_connected();
  void read_body();
  bool take(const char* data, std::size_t n);

  ApiServer server_;
  ApiCall call_;
  tcp::resolver resolver_;
  asio::steady_timer watchdog_;
  asio::ssl::context ssl_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::array<char, 16 * 1024> chunk_{};
  std::string body_;
  std::string line_;
  bool streaming_ = false;  // a 200 to a stream call: lines go to on_line
  bool finished_ = false;
  bool cancelled_ = false;
};

void Call::start() {
  Result<std::string> token = read_token(server_.token_file);
  if (!token) return fail("token", token.status().message());
  boost::system::error_code ec;
  ssl_.set_verify_mode(asio::ssl::verify_peer);
  ssl_.load_verify_file(server_.ca_file.string(), ec);
  if (ec) {
    return fail("ca", "discovery.kubernetes.ca_file: " + server_.ca_file.string() + ": " +
                          ec.message());
  }
  request_ = {http::verb::get, call_.path, 11};
  request_.set(http::field::host, server_.host + ":" + server_.port);
  request_.set(http::field::authorization, "Bearer " + *token);
  request_.set(http::field::accept, "application/json");
  request_.set(http::field::user_agent, "anya-ha");
  request_.keep_alive(false);
  arm();
  auto self = shared_from_this();
  resolver_.async_resolve(
      server_.host, server_.port,
      [self](const boost::system::error_code& e, const tcp::resolver::results_type& results) {
        if (self->finished_) return;
        if (e) return self->io_failed("resolve", "resolving", e);
        self->stream_.emplace(self->resolver_.get_executor(), self->ssl_);
        beast::get_lowest_layer(*self->stream_).async_connect(
            results, [self](const boost::system::error_code& e2, const tcp::endpoint&) {
              if (e2) return self->io_failed("connect", "connecting to", e2);
              self->on_connected();
            });
      });
}

void Call::on_connected() {
  if (finished_) return;
  SSL* ssl = stream_->native_handle();
  // SNI with a name only (RFC 6066 forbids addresses); the check covers names and addresses.
  boost::system::error_code ec;
  (void)asio::ip::make_address(server_.host, ec);
  if (ec) SSL_set_tlsext_host_name(ssl, server_.host.c_str());
  stream_->set_verify_callback(asio::ssl::host_name_verification(server_.host));
  auto self = shared_from_this();
  stream_->async_handshake(asio::ssl::stream_base::client, [self](
                                                               const boost::system::error_code& e) {
    if (e) return self->io_failed("tls", "TLS handshake with", e);
    http::async_write(*self->stream_, self->request_,
                      [self](const boost::system::error_code& e2, std::size_t) {
                        if (e2) return self->io_failed("io", "writing to", e2);
                        self->parser_.emplace();
                        // A plain body is bounded; a stream's lines are, one by one (take()).
                        if (self->call_.stream) {
                          self->parser_->body_limit(boost::none);
                        } else {
                          self->parser_->body_limit(kMaxApiBodyBytes);
                        }
                        http::async_read_header(
                            *self->stream_, self->buffer_, *self->parser_,
                            [self](const boost::system::error_code& e3, std::size_t) {
                              if (e3) return self->io_failed("io", "reading from", e3);
                              self->streaming_ = self->call_.stream &&
                                                 self->parser_->get().result_int() == 200;
                              self->read_body();
                            });
                      });
  });
}

// Keeps what arrived: the body, or complete lines for on_line. False: over a bound.
bool Call::take(const char* data, std::size_t n) {
  if (!streaming_) {
    const std::size_t limit = call_.stream ? kMaxErrorBodyBytes : kMaxApiBodyBytes;
    if (body_.size() + n > limit) return false;
    body_.append(data, n);
    return true;
  }
  arm();  // a stream is alive as long as it says something
  for (std::size_t i = 0; i < n; i++) {
    if (data[i] != '\n') {
      if (line_.size() >= kMaxWatchLineBytes) return false;
      line_ += data[i];
      continue;
    }
    if (!line_.empty()) {
      std::string line = std::move(line_);
      line_.clear();
      call_.on_line(line);
      if (finished_) return true;  // on_line cancelled the call
    }
  }
  return true;
}

void Call::read_body() {
  if (finished_) return;
  auto& body = parser_->get().body();
  body.data = chunk_.data();
  body.size = chunk_.size();
  auto self = shared_from_this();
  http::async_read(*stream_, buffer_, *parser_,
                   [self](boost::system::error_code e, std::size_t) {
                     if (self->finished_) return;
                     if (e == http::error::need_buffer) e = {};
                     const std::size_t got =
                         self->chunk_.size() - self->parser_->get().body().size;
                     if (!self->take(self->chunk_.data(), got)) {
                       return self->fail("too_large", "answer from " + self->server_.url() +
                                                          " is over its size limit");
                     }
                     if (self->finished_) return;
                     if (e == http::error::body_limit) {
                       return self->fail("too_large", "answer from " + self->server_.url() +
                                                          " is larger than 8 MiB");
                     }
                     if (e) return self->io_failed("io", "reading from", e);
                     if (!self->parser_->is_done()) return self->read_body();
                     self->finish({"", "", static_cast<int>(self->parser_->get().result_int()),
                                   std::move(self->body_)});
                   });
}

}  // namespace

Result<std::string> read_token(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status(Errc::io_error, "discovery.kubernetes.token_file: cannot read " +
                                      file.string());
  }
  std::string token;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    token.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (token.size() > kMaxTokenBytes) {
      return Status(Errc::io_error, "discovery.kubernetes.token_file: " + file.string() +
                                        " is larger than 64 KiB");
    }
  }
  const std::size_t begin = token.find_first_not_of(" \t\r\n");
  const std::size_t end = token.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    return Status(Errc::io_error, "discovery.kubernetes.token_file: " + file.string() +
                                      " is empty");
  }
  token = token.substr(begin, end - begin + 1);
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return Status(Errc::io_error, "discovery.kubernetes.token_file: " + file.string() +
                                        " holds a control character or space");
    }
  }
  return token;
}

std::function<void()> api_call(asio::io_context& io, const ApiServer& server, ApiCall call) {
  ANYA_ASSERT(call.done != nullptr);
  ANYA_ASSERT(!call.stream || call.on_line != nullptr);
  auto c = std::make_shared<Call>(io, server, std::move(call));
  c->start();
  return [weak = std::weak_ptr<Call>(c)] {
    if (auto c = weak.lock()) c->cancel();
  };
}

}  // namespace anya::transport::discovery
