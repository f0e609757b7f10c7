// A small synchronous HTTPS client for the admin API, used by `anya-ha ctl` and `anya-ha dev`:
// TLS 1.3 with a client certificate or a bearer token (or both), the server verified against
// the cluster CA (by the certificate chain; the admin endpoint's certificate carries the node
// identity and its addresses). One request per call; no retries here: the ctl layer decides what to retry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "engine/base/result.hpp"

namespace anya::transport {

struct AdminClientOptions {
  std::filesystem::path ca_cert, cert, key;  // cert and key empty: no client certificate
  std::uint64_t timeout_ms = 10000;
  std::string token{};  // sent as "Authorization: Bearer TOKEN" when set
  // false only to fetch the CA certificate before joining (GET /v1/ca), which the caller then
  // checks against a pin: no credential may go over such a connection (refused if given).
  bool verify_server = true;
  // true: no credential at all, the server still verified (public endpoints: /v1/audit/head).
  bool anonymous = false;
  // Exactly-once writes: sent as Anya-Client-Id / Anya-Client-Seq when client_id is not 0 (it
  // is what POST /v1/session returned). A retry of the same request (another endpoint, after
  // a failover) must keep both.
  std::uint64_t client_id = 0;
  std::uint64_t client_seq = 0;
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string allow;  // the Allow header of a 405
};

// `endpoint`: "https://HOST:PORT". Errc::invalid_argument for a bad endpoint or TLS files
// (naming them), Errc::io_error when the server cannot be reached or the exchange fails.
Result<HttpReply> admin_request(const AdminClientOptions& options, const std::string& endpoint,
                                const std::string& method, const std::string& target,
                                const std::string& body = {}, const std::string& if_match = {});

}  // namespace anya::transport
