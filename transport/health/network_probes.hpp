// The network probes of the service this node protects, run asynchronously on the node's
// io_context: an HTTP or HTTPS GET that passes on the expected status, and a TCP connect. Each
// run has one deadline covering every step (resolve, connect, TLS handshake, request, response
// header) and reports once, with the time it took and, on failure, what failed in words
// ("connection refused while connecting to 127.0.0.1:8080", "HTTP 503 (expected 200)",
// "timed out after 500 ms while reading the response").
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/config/node_config.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace anya::transport {

struct ProbeResult {
  bool ok = false;
  std::uint64_t latency_ms = 0;
  std::string error;  // why it failed; empty on success
};
using ProbeDone = std::function<void(ProbeResult)>;

// A run in progress. cancel() stops it at once; its callback is then never called.
class ProbeRun {
 public:
  virtual ~ProbeRun() = default;
  virtual void cancel() = 0;
};

struct HttpProbeTarget {
  ProbeUrl url;
  std::uint32_t expect_status = 200;
  // https only: the context verifying the server (make_probe_tls_context). Null for http.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

// A TLS 1.2+ client context that verifies the server against `ca_file` (PEM), or against the
// system's CAs when it is empty. Errc::invalid_argument naming the file when it does not load.
Result<std::shared_ptr<boost::asio::ssl::context>> make_probe_tls_context(
    const std::filesystem::path& ca_file);

// GET url.target with "Connection: close"; passes when the status is expect_status. Only the
// response header is read. HTTPS checks the certificate chain and that it names url.host
// (a DNS name or an IP address), and sends SNI for names.
std::shared_ptr<ProbeRun> start_http_probe(boost::asio::io_context& io,
                                           const HttpProbeTarget& target,
                                           std::uint64_t timeout_ms, ProbeDone done);

// Passes when a TCP connection to `address` is established; it is closed at once.
std::shared_ptr<ProbeRun> start_tcp_probe(boost::asio::io_context& io, const HostPort& address,
                                          std::uint64_t timeout_ms, ProbeDone done);

}  // namespace anya::transport
