// A small asynchronous HTTPS client for the Kubernetes API server, on the node's io_context:
// one GET per call (a new TLS connection each time), the server verified against the
// service account's CA file and by its name or address, the service-account token read from
// its file for every call (it rotates: kubelet rewrites it about hourly), sent as
// "Authorization: Bearer". A watch is a GET whose 200 body streams one JSON event per line.
//
// Every call ends in exactly one `done`, unless cancelled first: a response (status and, for a
// plain call or any non-200 answer, the body), or a failure with a short reason for metrics:
// "token" (the token file), "ca" (the CA file), "resolve", "connect", "tls", "io", "timeout"
// (a plain call took longer than its timeout, or a watch was silent that long), "too_large".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport::discovery {

struct ApiServer {
  std::string host;
  std::string port;
  std::filesystem::path ca_file;
  std::filesystem::path token_file;

  std::string url() const { return "https://" + host + ":" + port; }
};

struct ApiOutcome {
  std::string reason;   // empty: the server answered
  std::string error;    // reason set: for a person
  int status = 0;
  std::string body;
};

struct ApiCall {
  std::string path;                 // "/apis/...?..."
  std::uint64_t timeout_ms = 5000;  // the whole call; a stream: each silence
  bool stream = false;              // 200: the body goes to on_line, a line at a time
  std::function<void(std::string_view line)> on_line;
  std::function<void(ApiOutcome)> done;
};

// Starts the call; the returned function cancels it (no `done` after that). Both on the io
// thread.
std::function<void()> api_call(boost::asio::io_context& io, const ApiServer& server,
                               ApiCall call);

// The token file's content, whitespace trimmed. Errors name the file.
Result<std::string> read_token(const std::filesystem::path& file);

}  // namespace anya::transport::discovery
