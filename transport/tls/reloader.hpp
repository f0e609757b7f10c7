// TLS material a running node can replace without restarting: certificates are renewed, CRLs
// re-signed and CAs rotated by rewriting files, then the node reloads on SIGHUP (reload()) or on
// a periodic check (reload_if_changed()).
//
// What a reload guarantees:
// - All or nothing. The files are read once each, fingerprinted (SHA-256 of exactly the bytes
//   read), and both contexts are built from those bytes with every check make_context makes. If
//   anything fails (a file half-written by a non-atomic copy, a key that does not match yet, an
//   expired CRL, another node's certificate) the previous contexts stay in use and the error is
//   returned; nothing is ever half-applied.
// - Existing connections keep working. Each TLS stream owns its own SSL*, and SSL_new takes a
//   reference on the SSL_CTX, so a stream made from an old context keeps that SSL_CTX (and the
//   certificate, key and trust store in it) alive after the reloader and every other holder
//   have dropped the asio::ssl::context. Only new connections use the new material. (So do not
//   install asio-level callbacks, set_verify_callback or set_password_callback, on these
//   contexts: those live in the asio object, not in the SSL_CTX.)
// - A peer link made before the reload is therefore still authenticated by the old
//   certificate; revoking a peer takes effect at its next connection. Closing links on reload
//   is the caller's decision.
//
// Thread-safe: reloads are serialised, and the accessors can be called from any thread while a
// reload runs (they return the contexts current at the time of the call).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport::tls {

// Refuses a certificate file that does not name exactly Identity::node(node), so a node started
// with another node's certificate stops with "tls.cert: FILE names node 1, but this node runs as
// node 7; each node needs its own certificate (anya-ha certs issue --node 7)". `node` > 0.
Status check_node_certificate(const TlsFiles& files, engine::NodeId node);

class TlsReloader {
 public:
  // `node`: the node id the certificate must name; std::nullopt accepts any identity.
  explicit TlsReloader(TlsFiles files, std::optional<engine::NodeId> node = std::nullopt);

  TlsReloader(const TlsReloader&) = delete;
  TlsReloader& operator=(const TlsReloader&) = delete;

  // The first build of both contexts (Side::server and Side::client), checking the node id.
  // Call once, before any other member; an error means the node must not start.
  Status load();

  // Rebuilds both contexts if the files' contents differ from what is in use: true when it did,
  // false when nothing changed. A version that already failed is not retried (false) until the
  // files change again, so polling a broken file reports it once; a file that cannot be read
  // at all is reported at every call. On error the previous contexts stay in use.
  Result<bool> reload_if_changed();
  // Rebuilds both contexts whatever the fingerprint says (SIGHUP). true on success.
  Result<bool> reload();

  // The contexts for new connections. Never null after a successful load().
  std::shared_ptr<boost::asio::ssl::context> server() const;
  std::shared_ptr<boost::asio::ssl::context> client() const;

  std::uint64_t reloads() const;          // successful rebuilds after load()
  std::uint64_t reload_failures() const;  // rebuilds refused (the old contexts stayed)
  // For the log line after a (re)load: "node 3 (anya-ha://node/3), serial 4F1C..., expires
  // 2027-03-01 12:00:00 UTC; CA file: 1 certificate; CRL: 1 list, 2 revoked".
  std::string describe() const;
  const TlsFiles& files() const { return files_; }

 private:
  struct Built;
  enum class Mode { first_load, forced, if_changed };
  Result<Built> build(const TlsMaterial& material) const;
  Result<bool> rebuild(Mode mode);

  const TlsFiles files_;
  const std::optional<engine::NodeId> node_;

  std::mutex reload_mutex_;  // held for a whole load or reload: one at a time
  mutable std::mutex state_mutex_;  // guards the members below; never held during I/O
  // Invariant: both null before load() succeeded, both set after.
  std::shared_ptr<boost::asio::ssl::context> server_;
  std::shared_ptr<boost::asio::ssl::context> client_;
  std::string fingerprint_;         // of the material in use
  std::string failed_fingerprint_;  // of the last material refused, "" if none since
  std::uint64_t reloads_ = 0;
  std::uint64_t reload_failures_ = 0;
  std::string description_;
};

}  // namespace anya::transport::tls
