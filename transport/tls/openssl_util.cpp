#include "transport/tls/openssl_util.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "transport/tls/certs.hpp"

namespace anya::transport::tls::detail {
namespace {

std::string label_str(std::string_view label) { return std::string(label); }

BioPtr memory_bio(std::string_view bytes) {
  ANYA_ASSERT(bytes.size() <= kMaxPemFileBytes);
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ANYA_ASSERT(bio != nullptr);  // fails only on allocation failure
  return bio;
}

// Passphrase callback that refuses: without it OpenSSL would prompt on the terminal when it
// meets an encrypted key, and a node starting unattended would hang.
int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

Result<std::string> bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  if (size <= 0 || data == nullptr) return {Errc::io_error, "PEM encoding failed"};
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : "error " + std::to_string(code);
  }
  return out;
}

std::string openssl_suffix() {
  std::string errors = drain_openssl_errors();
  return errors.empty() ? std::string() : ": " + errors;
}

Result<std::string> read_text_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {Errc::io_error, name + ": cannot open: " + std::strerror(errno)};
  std::string out;
  struct stat info {};
  Status status;
  if (::fstat(fd, &info) != 0) {
    status = {Errc::io_error, name + ": cannot stat: " + std::strerror(errno)};
  } else if (static_cast<std::size_t>(info.st_size) > kMaxPemFileBytes) {
    status = {Errc::invalid_argument, name + ": file is " + std::to_string(info.st_size) +
                                          " bytes; at most " + std::to_string(kMaxPemFileBytes) +
                                          " are read"};
  } else {
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = {Errc::io_error, name + ": cannot read: " + std::strerror(errno)};
        break;
      }
      if (n == 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
      if (out.size() > kMaxPemFileBytes) {
        status = {Errc::invalid_argument, name + ": file grew past " +
                                              std::to_string(kMaxPemFileBytes) + " bytes"};
        break;
      }
    }
  }
  ::close(fd);
  if (!status) return status;
  return out;
}

Result<X509Ptr> parse_certificate(std::string_view pem, std::string_view label) {
  if (pem.size() > kMaxPemFileBytes) {
    return {Errc::invalid_argument, label_str(label) + ": certificate PEM is too large"};
  }
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return {Errc::invalid_argument,
            label_str(label) + ": not a PEM certificate" + openssl_suffix()};
  }
  return cert;
}

Result<std::vector<X509Ptr>> parse_certificate_bundle(std::string_view pem,
                                                      std::string_view label) {
  if (pem.size() > kMaxPemFileBytes) {
    return {Errc::invalid_argument, label_str(label) + ": certificate PEM is too large"};
  }
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  std::vector<X509Ptr> out;
  for (;;) {
    X509Ptr next(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!next) break;
    if (out.size() == kMaxCaCertificates) {
      return {Errc::invalid_argument, label_str(label) + ": holds more than " +
                                          std::to_string(kMaxCaCertificates) + " certificates"};
    }
    out.push_back(std::move(next));
  }
  // A clean end of input is "no start line"; anything else is a block that does not decode.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM &&
                         ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (out.empty() || !clean_end) {
    return {Errc::invalid_argument, label_str(label) + ": certificate " +
                                        std::to_string(out.size() + 1) +
                                        " is not a PEM certificate" + openssl_suffix()};
  }
  ERR_clear_error();
  return out;
}

Result<PkeyPtr> parse_private_key(std::string_view pem, std::string_view label) {
  if (pem.size() > kMaxPemFileBytes) {
    return {Errc::invalid_argument, label_str(label) + ": private key PEM is too large"};
  }
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  bool asked_passphrase = false;
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, &asked_passphrase));
  if (asked_passphrase) {
    drain_openssl_errors();
    return {Errc::unsupported, label_str(label) +
                                   ": private key is encrypted; anya-ha needs an unencrypted "
                                   "key (protect it with file mode 0600)"};
  }
  if (!key) {
    return {Errc::invalid_argument,
            label_str(label) + ": not a PEM private key" + openssl_suffix()};
  }
  return key;
}

Result<std::vector<CrlPtr>> parse_crl_bundle(std::string_view pem, std::string_view label) {
  if (pem.size() > kMaxPemFileBytes) {
    return {Errc::invalid_argument, label_str(label) + ": CRL PEM is too large"};
  }
  ERR_clear_error();
  BioPtr bio = memory_bio(pem);
  std::vector<CrlPtr> out;
  for (;;) {
    CrlPtr next(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!next) break;
    if (out.size() == kMaxCrls) {
      return {Errc::invalid_argument, label_str(label) + ": holds more than " +
                                          std::to_string(kMaxCrls) + " CRLs"};
    }
    out.push_back(std::move(next));
  }
  // As for certificate bundles: only "no start line" after the last block is a clean end.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM &&
                         ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (out.empty() || !clean_end) {
    return {Errc::invalid_argument, label_str(label) + ": CRL " + std::to_string(out.size() + 1) +
                                        " is not a PEM CRL (X509 CRL)" + openssl_suffix()};
  }
  ERR_clear_error();
  ANYA_ASSERT(out.size() <= kMaxCrls);
  return out;
}

Result<std::string> certificate_to_pem(X509* cert) {
  ANYA_ASSERT(cert != nullptr);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  if (PEM_write_bio_X509(bio.get(), cert) != 1) {
    return {Errc::io_error, "cannot PEM-encode certificate" + openssl_suffix()};
  }
  return bio_contents(bio.get());
}

Result<std::string> private_key_to_pem(EVP_PKEY* key) {
  ANYA_ASSERT(key != nullptr);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {Errc::io_error, "cannot PEM-encode private key" + openssl_suffix()};
  }
  return bio_contents(bio.get());
}

Result<std::string> crl_to_pem(X509_CRL* crl) {
  ANYA_ASSERT(crl != nullptr);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  if (PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
    return {Errc::io_error, "cannot PEM-encode CRL" + openssl_suffix()};
  }
  return bio_contents(bio.get());
}

std::string format_time(const ASN1_TIME* time) {
  struct tm parts {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "(unreadable time)";
  char text[64];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
  ANYA_ASSERT(n > 0);
  return std::string(text, n);
}

Status check_validity_period(X509* cert, std::string_view label) {
  ANYA_ASSERT(cert != nullptr);
  const ASN1_TIME* not_before = X509_get0_notBefore(cert);
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  // X509_cmp_current_time: -1 time is in the past, 1 in the future, 0 unreadable.
  const int before_cmp = X509_cmp_current_time(not_before);
  const int after_cmp = X509_cmp_current_time(not_after);
  if (before_cmp == 0 || after_cmp == 0) {
    return {Errc::invalid_argument, label_str(label) + ": certificate validity dates unreadable"};
  }
  if (after_cmp < 0) {
    return {Errc::invalid_argument,
            label_str(label) + ": certificate expired on " + format_time(not_after)};
  }
  if (before_cmp > 0) {
    return {Errc::invalid_argument, label_str(label) + ": certificate is not valid until " +
                                        format_time(not_before) + " (check the clock)"};
  }
  return Status::ok();
}

Status check_key_matches(X509* cert, EVP_PKEY* key, std::string_view cert_label,
                         std::string_view key_label) {
  ANYA_ASSERT(cert != nullptr);
  ANYA_ASSERT(key != nullptr);
  ERR_clear_error();
  if (X509_check_private_key(cert, key) != 1) {
    drain_openssl_errors();
    return {Errc::invalid_argument, label_str(key_label) +
                                        ": private key does not match the certificate in " +
                                        label_str(cert_label)};
  }
  return Status::ok();
}

namespace {

// A store holding `cas` (and `crls`, with revocation checking of the leaf turned on).
Result<StorePtr> make_store(const std::vector<X509Ptr>& cas, const std::vector<CrlPtr>& crls,
                            std::string_view ca_label) {
  StorePtr store(X509_STORE_new());
  ANYA_ASSERT(store != nullptr);
  for (const X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) {
      return {Errc::invalid_argument,
              label_str(ca_label) + ": cannot use CA certificate" + openssl_suffix()};
    }
  }
  for (const CrlPtr& crl : crls) {
    if (X509_STORE_add_crl(store.get(), crl.get()) != 1) {
      return {Errc::invalid_argument, "cannot use CRL" + openssl_suffix()};
    }
  }
  if (!crls.empty()) ANYA_ASSERT(X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK) == 1);
  return store;
}

}  // namespace

Status check_chain(X509* cert, const std::vector<X509Ptr>& cas, int purpose,
                   std::string_view cert_label, std::string_view ca_label,
                   const std::vector<CrlPtr>& crls) {
  ANYA_ASSERT(cert != nullptr);
  ANYA_ASSERT(!cas.empty());
  auto store = make_store(cas, crls, ca_label);
  if (!store) return store.status();
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  ANYA_ASSERT(ctx != nullptr);
  if (X509_STORE_CTX_init(ctx.get(), store->get(), cert, nullptr) != 1) {
    return {Errc::io_error, "cannot set up certificate verification" + openssl_suffix()};
  }
  if (purpose != 0) X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  if (X509_verify_cert(ctx.get()) == 1) return Status::ok();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  drain_openssl_errors();
  const std::string reason = X509_verify_cert_error_string(error);
  if (error == X509_V_ERR_INVALID_PURPOSE) {
    const char* use = purpose == X509_PURPOSE_SSL_SERVER ? "a TLS server" : "a TLS client";
    return {Errc::invalid_argument, label_str(cert_label) + ": certificate cannot be used by " +
                                        use + " (extendedKeyUsage): " + reason};
  }
  if (error == X509_V_ERR_CERT_REVOKED) {
    return {Errc::invalid_argument, label_str(cert_label) + ": certificate revoked (serial " +
                                        serial_hex(X509_get0_serialNumber(cert)) +
                                        " is listed in the CRL); issue a new one"};
  }
  return {Errc::invalid_argument, label_str(cert_label) + ": does not chain to the CA in " +
                                      label_str(ca_label) + ": " + reason};
}

Result<X509*> crl_issuer(X509_CRL* crl, const std::vector<X509Ptr>& cas, std::string_view label,
                         std::string_view ca_label) {
  ANYA_ASSERT(crl != nullptr);
  ANYA_ASSERT(!cas.empty());
  const X509_NAME* issuer = X509_CRL_get_issuer(crl);
  for (const X509Ptr& ca : cas) {
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca.get())) != 0) continue;
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    if (key == nullptr || X509_CRL_verify(crl, key) != 1) continue;
    // X509_get_key_usage is all ones when the extension is absent (any use allowed).
    if ((X509_get_key_usage(ca.get()) & KU_CRL_SIGN) == 0) {
      drain_openssl_errors();
      return {Errc::invalid_argument, label_str(label) + ": its CA in " + label_str(ca_label) +
                                          " may not sign CRLs (keyUsage lacks cRLSign)"};
    }
    drain_openssl_errors();
    return ca.get();
  }
  drain_openssl_errors();
  return {Errc::invalid_argument, label_str(label) + ": CRL issued by " + name_text(issuer) +
                                      " is not signed by a CA in " + label_str(ca_label) +
                                      " (a CRL from another cluster's CA?)"};
}

Status check_crl_time(X509_CRL* crl, std::string_view label) {
  ANYA_ASSERT(crl != nullptr);
  const ASN1_TIME* last_update = X509_CRL_get0_lastUpdate(crl);
  const ASN1_TIME* next_update = X509_CRL_get0_nextUpdate(crl);
  // X509_cmp_current_time: -1 in the past, 1 in the future, 0 unreadable.
  const int last_cmp = last_update != nullptr ? X509_cmp_current_time(last_update) : 0;
  const int next_cmp = next_update != nullptr ? X509_cmp_current_time(next_update) : -2;
  if (last_cmp == 0 || next_cmp == 0) {
    return {Errc::invalid_argument, label_str(label) + ": CRL update times unreadable"};
  }
  if (next_cmp == -1) {
    return {Errc::invalid_argument, label_str(label) + ": CRL expired on " +
                                        format_time(next_update) +
                                        "; make a new one (anya-ha certs revoke) and reload"};
  }
  if (last_cmp > 0) {
    return {Errc::invalid_argument, label_str(label) + ": CRL is not valid until " +
                                        format_time(last_update) + " (check the clock)"};
  }
  return Status::ok();
}

std::string serial_hex(const ASN1_INTEGER* serial) {
  ANYA_ASSERT(serial != nullptr);
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  ANYA_ASSERT(bn != nullptr);
  char* hex = BN_bn2hex(bn);
  BN_free(bn);
  ANYA_ASSERT(hex != nullptr);
  std::string out(hex);
  OPENSSL_free(hex);
  ANYA_ASSERT(!out.empty());
  return out;
}

std::string name_text(const X509_NAME* name) {
  ANYA_ASSERT(name != nullptr);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    drain_openssl_errors();
    return "(unprintable name)";
  }
  auto text = bio_contents(bio.get());
  return text ? *text : std::string("(empty name)");
}

Result<Identity> identity_of(X509* cert) {
  ANYA_ASSERT(cert != nullptr);
  int critical = 0;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (!names) {
    drain_openssl_errors();
    // critical: -1 absent, -2 present more than once; otherwise it did not decode.
    if (critical == -1) {
      return {Errc::invalid_argument,
              "certificate has no subjectAltName, so it names no anya-ha identity"};
    }
    return {Errc::invalid_argument,
            "certificate's subjectAltName is malformed or appears more than once"};
  }
  const ASN1_IA5STRING* uri = nullptr;
  int uri_count = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    ++uri_count;
    uri = name->d.uniformResourceIdentifier;
  }
  if (uri_count == 0) {
    return {Errc::invalid_argument,
            "certificate has no URI subjectAltName, so it names no anya-ha identity"};
  }
  if (uri_count > 1) {
    return {Errc::invalid_argument, "certificate has " + std::to_string(uri_count) +
                                        " URI subjectAltNames; exactly one identity is allowed"};
  }
  ANYA_ASSERT(uri != nullptr);
  const std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                              static_cast<std::size_t>(ASN1_STRING_length(uri)));
  auto id = parse_identity(text);
  if (!id) return {Errc::invalid_argument, "certificate " + id.status().message()};
  return id;
}

}  // namespace anya::transport::tls::detail
