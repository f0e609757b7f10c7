#include "transport/admin/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "transport/admin/router.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// With a certificate: the node's usual mutual-TLS client context. Without (a token client):
// TLS 1.3 verifying the server against the CA, presenting nothing.
Result<std::shared_ptr<asio::ssl::context>> client_context(const AdminClientOptions& o) {
  if (!o.verify_server) {
    if (!o.cert.empty() || !o.key.empty() || !o.token.empty()) {
      return Status(Errc::invalid_argument, "a credential is never sent to an unverified server");
    }
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION);
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  if (!o.cert.empty() || !o.key.empty()) {
    return tls::make_context({o.ca_cert, o.cert, o.key}, tls::Side::client);
  }
  if (o.token.empty() && !o.anonymous) {
    return Status(Errc::invalid_argument, "no credential: give a client certificate and key, "
                                          "or a token");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  ctx->load_verify_file(o.ca_cert.string(), ec);
  if (ec) return Status(Errc::invalid_argument, o.ca_cert.string() + ": " + ec.message());
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return Status(Errc::invalid_argument, "TLS: " + ec.message());
  return ctx;
}

}  // namespace

Result<HttpReply> admin_request(const AdminClientOptions& options, const std::string& endpoint,
                                const std::string& method, const std::string& target,
                                const std::string& body, const std::string& if_match) {
  constexpr std::string_view kScheme = "https://";
  if (endpoint.rfind(kScheme, 0) != 0) {
    return Status(Errc::invalid_argument,
                  "endpoint \"" + endpoint + "\": expected https://HOST:PORT");
  }
  std::string host_port = endpoint.substr(kScheme.size());
  while (!host_port.empty() && host_port.back() == '/') host_port.pop_back();
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    return Status(Errc::invalid_argument,
                  "endpoint \"" + endpoint + "\": expected https://HOST:PORT");
  }
  const std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  auto ctx = client_context(options);
  if (!ctx) return ctx.status();

  asio::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, **ctx);
  beast::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, port, ec);
  if (ec) return Status(Errc::io_error, endpoint + ": cannot resolve: " + ec.message());
  const auto deadline = std::chrono::milliseconds(options.timeout_ms);
  beast::get_lowest_layer(stream).expires_after(deadline);
  // Asynchronous operations with one io.run() each: the tcp_stream timeout then applies.
  auto run = [&io](auto&& start) {
    io.restart();
    start();
    io.run();
  };
  run([&] {
    beast::get_lowest_layer(stream).async_connect(
        results, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
  });
  if (ec) return Status(Errc::io_error, endpoint + ": cannot connect: " + ec.message());
  run([&] {
    stream.async_handshake(asio::ssl::stream_base::client, [&ec](beast::error_code e) { ec = e; });
  });
  if (ec) {
    return Status(Errc::io_error,
                  endpoint + ": TLS: " + tls::describe_handshake_failure(stream.native_handle(), ec));
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host_port);
  req.set(http::field::user_agent, "anya-ha");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  if (!if_match.empty()) req.set(http::field::if_match, if_match);
  if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
  if (options.client_id != 0) {
    req.set(kClientIdHeader, std::to_string(options.client_id));
    req.set(kClientSeqHeader, std::to_string(options.client_seq));
  }
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  run([&] {
    http::async_write(stream, req, [&ec](beast::error_code e, std::size_t) { ec = e; });
  });
  if (ec) {
    return Status(Errc::io_error,
                  endpoint + ": " + tls::describe_handshake_failure(stream.native_handle(), ec));
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  parser.skip(req.method() == http::verb::head);  // its Content-Length is GET's; no body follows
  run([&] {
    http::async_read(stream, buffer, parser, [&ec](beast::error_code e, std::size_t) { ec = e; });
  });
  if (ec) {
    return Status(Errc::io_error, endpoint + ": reading the reply: " +
                                      tls::describe_handshake_failure(stream.native_handle(), ec));
  }
  http::response<http::string_body> res = parser.release();
  HttpReply reply;
  reply.status = static_cast<int>(res.result_int());
  if (auto it = res.find(http::field::allow); it != res.end()) {
    reply.allow = std::string(it->value());
  }
  if (auto it = res.find(http::field::content_type); it != res.end()) {
    reply.content_type = std::string(it->value());
  }
  reply.body = std::move(res.body());
  beast::get_lowest_layer(stream).close();
  return reply;
}

}  // namespace anya::transport
