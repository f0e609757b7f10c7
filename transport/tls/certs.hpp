// Certificates for anya-ha's mutual TLS: a cluster CA, and leaf certificates it signs for nodes
// and clients. Built with the OpenSSL 3 C API in-process (no `openssl` command), so `anya-ha dev`
// and `anya-ha certs` work on a machine with only the library.
//
// What is issued, and why:
// - ECDSA P-256 keys and SHA-256 signatures: small, fast handshakes, supported by every TLS 1.3
//   client including curl and Python's ssl module.
// - 128-bit random serial numbers (RAND_bytes), so two CAs or two runs never collide.
// - The CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign + cRLSign (critical).
// - A leaf: CA:FALSE, keyUsage digitalSignature, extendedKeyUsage serverAuth + clientAuth for a
//   node (it dials and accepts peer links) and clientAuth only for a client; subjectAltName holds
//   the one identity URI (identity.hpp) plus the DNS names and IP addresses the caller gives. A
//   node's admin endpoint is verified by address by ordinary HTTPS clients, so `anya-ha dev`
//   passes {"localhost"} and {"127.0.0.1"}; nothing is added implicitly.
// - notBefore is set kNotBeforeBackdateSeconds in the past so a peer whose clock is a little
//   behind the issuer's accepts a certificate issued a moment ago.
//
// PEM is the currency (KeyPair holds PEM text) because that is what goes on disk and what the
// admin tools and curl read. Keys are unencrypted PKCS#8: the node starts unattended, and the
// key file's mode (0600) is its protection.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "transport/tls/identity.hpp"

namespace anya::transport::tls {

inline constexpr int kMaxValidityDays = 36500;  // 100 years; more is refused
inline constexpr long kNotBeforeBackdateSeconds = 300;
inline constexpr std::size_t kMaxCommonNameBytes = 64;  // the X.520 upper bound
inline constexpr std::size_t kMaxSanEntries = 32;       // DNS names + IP addresses per leaf
inline constexpr std::size_t kMaxDnsNameBytes = 253;
// A PEM file larger than this is refused before it is read (a CA bundle of a few certificates
// is a few kilobytes).
inline constexpr std::size_t kMaxPemFileBytes = 1 << 20;

struct KeyPair {
  std::string cert_pem;  // one X.509 certificate
  std::string key_pem;   // its private key, unencrypted PKCS#8
};

// A self-signed CA. common_name: 1..kMaxCommonNameBytes printable ASCII characters;
// validity_days: 1..kMaxValidityDays.
Result<KeyPair> generate_ca(std::string_view common_name, int validity_days);

// A leaf certificate for `id`, signed by `ca`. Refuses (Errc::invalid_argument, naming the
// field) an invalid identity, a DNS name or IP address that does not parse, more than
// kMaxSanEntries of them, a validity outside 1..kMaxValidityDays, a CA certificate that is not a
// CA, and a CA key that does not match the CA certificate.
Result<KeyPair> issue(const KeyPair& ca, const Identity& id,
                      const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses, int validity_days);

// Writes both files atomically (temporary file in the same directory, fsync, rename, fsync of
// the directory): a crash leaves the old file or the new one, never half of one. The key file
// gets mode 0600, the certificate 0644. Both must already parse (checked first).
Status write_pem_files(const std::filesystem::path& cert_file,
                       const std::filesystem::path& key_file, const KeyPair& pair);

// Reads a certificate and its key, checking that each parses and that the key matches the
// certificate. Errors name the file: "ca.key: not a PEM private key".
Result<KeyPair> read_pem_files(const std::filesystem::path& cert_file,
                               const std::filesystem::path& key_file);

// The identity named by a PEM certificate's URI subjectAltName (exactly one must be present).
Result<Identity> certificate_identity(std::string_view cert_pem);

}  // namespace anya::transport::tls
