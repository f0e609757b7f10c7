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
// Revocation: the CA signs a CRL (v2, SHA-256) listing revoked serial numbers; nodes load it
// (TlsFiles::crl) and refuse those certificates at every handshake. lastUpdate is backdated
// like notBefore, because a CRL "not yet valid" on a node whose clock is a little behind would
// make it refuse every peer, not only the revoked one.
//
// PEM is the currency (KeyPair holds PEM text) because that is what goes on disk and what the
// admin tools and curl read. Keys are unencrypted PKCS#8: the node starts unattended, and the
// key file's mode (0600) is its protection.
#pragma once

#include <cstddef>
#include <cstdint>
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
// Entries in one CRL. An entry is about 40 bytes of DER (55 of PEM), so a full CRL stays far
// below kMaxPemFileBytes; at the limit make_crl refuses and the CA needs rotating instead.
inline constexpr std::size_t kMaxCrlEntries = 10000;
static_assert(kMaxCrlEntries * 64 < kMaxPemFileBytes);
// Serial numbers are at most 20 octets (RFC 5280 §4.1.2.2), so 40 hex digits.
inline constexpr std::size_t kMaxSerialHexDigits = 40;

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

// A key made here and a request for a certificate carrying it (a node joining: only the
// request leaves the machine).
struct CertificateRequest {
  std::string csr_pem;
  std::string key_pem;
};
inline constexpr std::size_t kMaxCsrBytes = 16 * 1024;
Result<CertificateRequest> make_request(const Identity& id);

// A leaf certificate for `id` over the key in `csr_pem`, signed by `ca`. The request's own
// signature must verify and its key be ECDSA P-256 or stronger; its subject is ignored (the
// identity is the caller's decision). Errc::invalid_argument naming "csr" otherwise.
Result<std::string> sign_request(const KeyPair& ca, std::string_view csr_pem, const Identity& id,
                                 const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses,
                                 int validity_days);

// `pem` re-encoded if it holds exactly one certificate; more than one (a bundle that would
// slip an extra CA past a pin on the first) or none is refused.
Result<std::string> single_certificate(std::string_view pem);

// "sha256:HEX" of the certificate's public key (SubjectPublicKeyInfo, DER): what a joining node
// pins the CA by, as kubeadm's --discovery-token-ca-cert-hash does.
Result<std::string> public_key_pin(std::string_view cert_pem);

// Writes both files atomically (temporary file in the same directory, fsync, rename, fsync of
// the directory): a crash leaves the old file or the new one, never half of one. The key file
// gets mode 0600, the certificate 0644. Both must already parse (checked first).
Status write_pem_files(const std::filesystem::path& cert_file,
                       const std::filesystem::path& key_file, const KeyPair& pair);

// Reads a certificate and its key, checking that each parses and that the key matches the
// certificate. Errors name the file: "ca.key: not a PEM private key".
Result<KeyPair> read_pem_files(const std::filesystem::path& cert_file,
                               const std::filesystem::path& key_file);

// A whole PEM file (certificate, CRL, bundle), refused past kMaxPemFileBytes; not parsed.
// Errors name the file: "crl.pem: cannot open: No such file or directory".
Result<std::string> read_pem_file(const std::filesystem::path& file);

// OK if `cert_pem` was issued and signed by the CA certificate `ca_cert_pem`; otherwise
// "certificate was not issued by this CA (its issuer is O = anya-ha, CN = ...)".
Status check_issued_by(std::string_view cert_pem, std::string_view ca_cert_pem);

// The identity named by a PEM certificate's URI subjectAltName (exactly one must be present).
Result<Identity> certificate_identity(std::string_view cert_pem);

// A PEM certificate's serial number as upper-case hex without leading zeros, the way
// `openssl x509 -serial` and CRL listings print it ("4F1C...").
Result<std::string> certificate_serial_hex(std::string_view cert_pem);

// One revoked certificate in a CRL.
struct RevokedEntry {
  std::string serial_hex;         // as certificate_serial_hex prints it
  std::int64_t revoked_at_unix;   // revocationDate, seconds since the epoch

  friend bool operator==(const RevokedEntry&, const RevokedEntry&) = default;
};

// A PEM CRL (v2, SHA-256) signed by `ca`: lastUpdate now (backdated by
// kNotBeforeBackdateSeconds), nextUpdate now + next_update_days, one entry per serial (hex, any
// case, duplicates merged) revoked now, a CRL number (the issue time in seconds) and the CA's
// authorityKeyIdentifier. Refuses a serial that is not 1..kMaxSerialHexDigits hex digits, more
// than kMaxCrlEntries serials, days outside 1..kMaxValidityDays, and a CA that is not a CA, may
// not sign CRLs or whose key does not match.
Result<std::string> make_crl(const KeyPair& ca, const std::vector<std::string>& revoked_serials_hex,
                             int next_update_days);
// The same with each entry's own revocation date, so a CRL re-made to add a serial keeps the
// dates of the earlier revocations.
Result<std::string> make_crl_from_entries(const KeyPair& ca,
                                          const std::vector<RevokedEntry>& entries,
                                          int next_update_days);

// The entries of every CRL in `crl_pem` (sorted by serial, duplicates merged), after checking
// that each CRL is signed by the CA in `ca_cert_pem`. An expired CRL is read all the same: re-
// making one is how it is renewed. `label` (the file name) starts every error message.
Result<std::vector<RevokedEntry>> read_crl_entries(std::string_view crl_pem,
                                                   std::string_view ca_cert_pem,
                                                   std::string_view label = "CRL");

// Writes a CRL file atomically (as write_pem_files does) with mode 0644; it must parse.
Status write_crl_file(const std::filesystem::path& file, std::string_view crl_pem);
// Writes a certificate file (a CA's, for instance) atomically with mode 0644; it must parse.
Status write_certificate_file(const std::filesystem::path& file, std::string_view cert_pem);

}  // namespace anya::transport::tls
