// Internal to transport/tls: RAII owners for OpenSSL objects and the parsing and checking steps
// that certs.cpp and context.cpp share. Not part of the module's API (it exposes OpenSSL types).
//
// Every function taking a `label` puts it at the front of its error messages; the label is the
// file name (or "CA certificate" for in-memory PEM), so a person knows which file to fix.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "transport/tls/identity.hpp"

namespace anya::transport::tls::detail {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, StoreCtxFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesFree>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

// Most CA certificates one CA file may hold (several during a CA rotation).
inline constexpr std::size_t kMaxCaCertificates = 8;
// Most CRLs one CRL file may hold: one per CA, plus a spare for a CA's old and new list.
inline constexpr std::size_t kMaxCrls = 2 * kMaxCaCertificates;

// Drains OpenSSL's thread-local error queue into "reason; reason" (empty if it was empty), so
// a failure reports OpenSSL's own words and the next operation starts with a clean queue.
std::string drain_openssl_errors();
// ": " + drain_openssl_errors(), or "" if there was nothing.
std::string openssl_suffix();

// The whole file, refused past kMaxPemFileBytes. Errors: "PATH: cannot read: REASON".
Result<std::string> read_text_file(const std::filesystem::path& file);

Result<X509Ptr> parse_certificate(std::string_view pem, std::string_view label);
// Every certificate in a PEM bundle: at least one, at most kMaxCaCertificates.
Result<std::vector<X509Ptr>> parse_certificate_bundle(std::string_view pem,
                                                      std::string_view label);
Result<PkeyPtr> parse_private_key(std::string_view pem, std::string_view label);
// Every CRL in a PEM file: at least one, at most kMaxCrls. "LABEL: CRL 2 is not a PEM CRL".
Result<std::vector<CrlPtr>> parse_crl_bundle(std::string_view pem, std::string_view label);

Result<std::string> certificate_to_pem(X509* cert);
Result<std::string> private_key_to_pem(EVP_PKEY* key);
Result<std::string> crl_to_pem(X509_CRL* crl);

// "2025-01-31 12:00:00 UTC".
std::string format_time(const ASN1_TIME* time);

// "LABEL: certificate expired on ..." / "LABEL: certificate is not valid until ...".
Status check_validity_period(X509* cert, std::string_view label);
// "KEY_LABEL: private key does not match the certificate in CERT_LABEL".
Status check_key_matches(X509* cert, EVP_PKEY* key, std::string_view cert_label,
                         std::string_view key_label);
// Verifies that `cert` chains to one of `cas` for the given X509_PURPOSE_* (0: any purpose).
// "CERT_LABEL: does not chain to the CA in CA_LABEL: unable to get local issuer certificate".
// With `crls` (non-empty), also that no CRL revokes it: "CERT_LABEL: certificate revoked".
Status check_chain(X509* cert, const std::vector<X509Ptr>& cas, int purpose,
                   std::string_view cert_label, std::string_view ca_label,
                   const std::vector<CrlPtr>& crls = {});

// The CA in `cas` that issued and signed `crl` (same name, the signature verifies with its key,
// its keyUsage allows cRLSign), or an error: "LABEL: CRL issued by O = x, CN = y is not signed
// by a CA in CA_LABEL". LABEL names the file, and the CRL's position when it holds several.
Result<X509*> crl_issuer(X509_CRL* crl, const std::vector<X509Ptr>& cas, std::string_view label,
                         std::string_view ca_label);
// "LABEL: CRL expired on ..." (nextUpdate in the past) / "LABEL: CRL is not valid until ...".
// A CRL without nextUpdate never expires.
Status check_crl_time(X509_CRL* crl, std::string_view label);

// A serial number as OpenSSL prints it: upper-case hex, no leading zeros ("0" for zero).
std::string serial_hex(const ASN1_INTEGER* serial);
// One-line distinguished name, for messages: "O = anya-ha, CN = anya-ha CA x".
std::string name_text(const X509_NAME* name);

// The identity in the certificate's one URI subjectAltName.
Result<Identity> identity_of(X509* cert);

}  // namespace anya::transport::tls::detail
