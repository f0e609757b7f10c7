// TLS contexts for anya-ha's peer links (Beast WebSockets over asio::ssl) and its admin HTTPS
// API, and what a finished handshake proves about the peer.
//
// Policy, the same on both sides and for both uses:
// - TLS 1.3 only (minimum and maximum), so there is one protocol to reason about.
// - Mutual authentication: verify_peer | verify_fail_if_no_peer_cert; the peer's certificate
//   must chain to the cluster CA (ca_cert). Authorisation is by the identity in the peer's URI
//   subjectAltName (identity.hpp), never by host name: call peer_identity() or expect_peer()
//   after the handshake before trusting a single byte.
// - No session resumption (no tickets, no session cache): every connection runs the full
//   handshake, so every connection re-verifies the peer's certificate, including its expiry.
// - make_context checks the files before any connection: the key matches the certificate, the
//   certificate chains to the CA and is usable on this side (extendedKeyUsage), it and the CA are
//   within their validity, and it names an identity. A misconfigured node refuses to start with
//   a message naming the file.
// - Revocation, when TlsFiles::crl is set: the CRLs are checked when the context is made (each
//   signed by a CA in ca_cert, none expired, one for every CA, our own certificate not listed)
//   and installed with X509_V_FLAG_CRL_CHECK, so every handshake, on both sides, refuses a peer
//   whose certificate is listed ("certificate verify failed: certificate revoked"). Only the
//   leaf is checked: certificates are issued directly by the CA. OpenSSL checks the CRL's
//   nextUpdate at every handshake too, so a CRL that expires while a node runs makes it refuse
//   every peer: renew it before then (anya-ha certs revoke re-signs it) and reload
//   (reloader.hpp).
//
// A TLS 1.3 trap for callers: the client finishes its handshake before the server has checked
// the client's certificate. When the server refuses it, the client learns so on its first read
// (an alert such as "certificate required" or "unknown ca"). A dialer must therefore not count a
// link as up until it has read the first frame; describe_handshake_failure() explains the
// error of that read too.
//
// Asio stays out of this header: the context is only forward-declared. Include
// <boost/asio/ssl/context.hpp> where it is used.
#pragma once

#include <openssl/types.h>

#include <boost/system/error_code.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/tls/identity.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace anya::transport::tls {

struct TlsFiles {
  std::filesystem::path ca_cert;  // PEM: the cluster CA (up to 8 during a rotation)
  std::filesystem::path cert;     // PEM: this node's or client's certificate
  std::filesystem::path key;      // PEM: its private key, unencrypted
  // PEM: one or more CRLs (at most one per CA, plus a spare). Empty: no revocation checking.
  // The default initialiser keeps three-field aggregate initialisation warning-free.
  std::filesystem::path crl{};
};

enum class Side { server, client };

// The bytes of a TlsFiles, each file read once (size-capped at kMaxPemFileBytes).
// Invariant: crl_pem is empty when files.crl is empty.
struct TlsMaterial {
  std::string ca_pem, cert_pem, key_pem, crl_pem;
};

Result<TlsMaterial> read_tls_files(const TlsFiles& files);

// A context for one side. Errors name the file and say what is wrong with it.
Result<std::shared_ptr<boost::asio::ssl::context>> make_context(const TlsFiles& files,
                                                                Side side);
// The same from bytes already read (`files` only names them in messages): the reloader reads
// once, fingerprints exactly those bytes and builds both sides from them, so its two contexts
// and its fingerprint cannot describe different versions of a file being replaced.
Result<std::shared_ptr<boost::asio::ssl::context>> make_context(const TlsFiles& files,
                                                                const TlsMaterial& material,
                                                                Side side);

// The identity proved by the peer's certificate after a successful handshake. Refuses a
// connection whose peer certificate did not verify (saying why first, even when the handshake
// then stopped: "peer certificate did not verify: certificate revoked (...)"), a handshake that
// has not completed, a peer with no certificate, and a certificate with no, more than one, or a
// malformed URI subjectAltName, saying which.
Result<Identity> peer_identity(SSL* ssl);

// peer_identity(ssl) == expected, or an error such as
// "peer certificate is for node 4, but it claims to be node 3".
Status expect_peer(SSL* ssl, const Identity& expected);

// Why a handshake (or the first read after it) failed, for a log line: the certificate
// verification result when that is what failed ("certificate verify failed: certificate has
// expired"), otherwise the TLS or socket error, with a hint where the cause is usually a
// configuration mistake (another CA, no client certificate, TLS 1.2, plain HTTP, a revoked
// certificate, an out-of-date CRL). `ssl` may be null when the SSL object is gone.
std::string describe_handshake_failure(SSL* ssl, const boost::system::error_code& error);

}  // namespace anya::transport::tls
