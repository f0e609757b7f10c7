#include "transport/tls/certs.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>

#include "transport/tls/openssl_util.hpp"

namespace anya::transport::tls {
namespace {

using detail::BioPtr;
using detail::openssl_suffix;
using detail::PkeyPtr;
using detail::X509Ptr;

constexpr std::size_t kSerialBytes = 16;  // 128 bits
// ASN.1 bit positions in the keyUsage BIT STRING (RFC 5280 §4.2.1.3).
constexpr int kKeyUsageDigitalSignature = 0;
constexpr int kKeyUsageKeyCertSign = 5;
constexpr int kKeyUsageCrlSign = 6;

Status check_validity_days(int validity_days) {
  if (validity_days < 1 || validity_days > kMaxValidityDays) {
    return {Errc::invalid_argument, "validity_days: " + std::to_string(validity_days) +
                                        " is outside 1.." + std::to_string(kMaxValidityDays)};
  }
  return Status::ok();
}

Status check_common_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxCommonNameBytes) {
    return {Errc::invalid_argument, "common_name: must be 1.." +
                                        std::to_string(kMaxCommonNameBytes) + " characters"};
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return {Errc::invalid_argument, "common_name: only printable ASCII is allowed"};
    }
  }
  return Status::ok();
}

Status check_dns_name(std::string_view name) {
  const std::string field = "dns_names: \"" + std::string(name.substr(0, 80)) + "\"";
  if (name.empty() || name.size() > kMaxDnsNameBytes) {
    return {Errc::invalid_argument, field + " must be 1.." + std::to_string(kMaxDnsNameBytes) +
                                        " characters"};
  }
  std::size_t label_bytes = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    const char c = i < name.size() ? name[i] : '.';
    if (c == '.') {
      if (label_bytes == 0 || label_bytes > 63 || name[i - 1] == '-' ||
          name[i - label_bytes] == '-') {
        return {Errc::invalid_argument,
                field + " has an empty, overlong or hyphen-edged label"};
      }
      label_bytes = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-';
    if (!ok) return {Errc::invalid_argument, field + " has a character outside [A-Za-z0-9.-]"};
    ++label_bytes;
  }
  return Status::ok();
}

Result<PkeyPtr> generate_key() {
  ERR_clear_error();
  PkeyPtr key(EVP_EC_gen(SN_X9_62_prime256v1));
  if (!key) return {Errc::io_error, "cannot generate a P-256 key" + openssl_suffix()};
  return key;
}

// Version 3, a random positive 128-bit serial, the validity window, and the subject.
Status set_basics(X509* cert, std::string_view common_name, int validity_days) {
  std::array<unsigned char, kSerialBytes> serial{};
  if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) {
    return {Errc::io_error, "cannot draw a random serial number" + openssl_suffix()};
  }
  serial[0] &= 0x7f;  // positive as a DER INTEGER
  serial[0] |= 0x40;  // and never zero, and always the full 16 bytes
  BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
  ANYA_ASSERT(bn != nullptr);
  ASN1_INTEGER* asn1_serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  ANYA_ASSERT(asn1_serial != nullptr);

  bool ok = X509_set_version(cert, X509_VERSION_3) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert), -kNotBeforeBackdateSeconds) != nullptr;
  ok = ok && X509_time_adj_ex(X509_getm_notAfter(cert), validity_days, 0, nullptr) != nullptr;
  X509_NAME* name = X509_get_subject_name(cert);
  ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>("anya-ha"), -1,
                                        -1, 0) == 1;
  ok = ok && X509_NAME_add_entry_by_txt(
                 name, "CN", MBSTRING_ASC,
                 reinterpret_cast<const unsigned char*>(std::string(common_name).c_str()), -1,
                 -1, 0) == 1;
  if (!ok) return {Errc::io_error, "cannot fill in certificate fields" + openssl_suffix()};
  return Status::ok();
}

Status add_basic_constraints(X509* cert, bool is_ca) {
  BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
  ANYA_ASSERT(bc != nullptr);
  bc->ca = is_ca ? 0xff : 0;
  const int rc = X509_add1_ext_i2d(cert, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT);
  BASIC_CONSTRAINTS_free(bc);
  if (rc != 1) return {Errc::io_error, "cannot add basicConstraints" + openssl_suffix()};
  return Status::ok();
}

Status add_key_usage(X509* cert, std::initializer_list<int> bits) {
  ASN1_BIT_STRING* usage = ASN1_BIT_STRING_new();
  ANYA_ASSERT(usage != nullptr);
  bool ok = true;
  for (int bit : bits) ok = ok && ASN1_BIT_STRING_set_bit(usage, bit, 1) == 1;
  ok = ok && X509_add1_ext_i2d(cert, NID_key_usage, usage, 1, X509V3_ADD_DEFAULT) == 1;
  ASN1_BIT_STRING_free(usage);
  if (!ok) return {Errc::io_error, "cannot add keyUsage" + openssl_suffix()};
  return Status::ok();
}

Status add_extended_key_usage(X509* cert, bool server_auth) {
  EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
  ANYA_ASSERT(eku != nullptr);
  bool ok = true;
  if (server_auth) ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0;
  ok = ok && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0;
  ok = ok && X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1;
  sk_ASN1_OBJECT_free(eku);  // the objects are OpenSSL's static table entries
  if (!ok) return {Errc::io_error, "cannot add extendedKeyUsage" + openssl_suffix()};
  return Status::ok();
}

// subjectKeyIdentifier and authorityKeyIdentifier, so verifiers can pick the right CA
// certificate during a CA rotation when two CAs share a name.
Status add_key_identifiers(X509* cert, X509* issuer) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    const bool ok = ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    if (!ok) return {Errc::io_error, "cannot add key identifiers" + openssl_suffix()};
  }
  return Status::ok();
}

// Appends one GENERAL_NAME of `type` holding `value` (an IA5STRING or an OCTET STRING).
bool push_name(GENERAL_NAMES* names, int type, ASN1_STRING* value) {
  GENERAL_NAME* name = GENERAL_NAME_new();
  ANYA_ASSERT(name != nullptr);
  GENERAL_NAME_set0_value(name, type, value);
  if (sk_GENERAL_NAME_push(names, name) <= 0) {
    GENERAL_NAME_free(name);
    return false;
  }
  return true;
}

ASN1_IA5STRING* ia5(std::string_view text) {
  ASN1_IA5STRING* out = ASN1_IA5STRING_new();
  ANYA_ASSERT(out != nullptr);
  ANYA_ASSERT(ASN1_STRING_set(out, text.data(), static_cast<int>(text.size())) == 1);
  return out;
}

Status add_subject_alt_names(X509* cert, const Identity& id,
                             const std::vector<std::string>& dns_names,
                             const std::vector<std::string>& ip_addresses) {
  detail::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  ANYA_ASSERT(names != nullptr);
  bool ok = push_name(names.get(), GEN_URI, ia5(id.to_string()));
  for (const std::string& dns : dns_names) {
    if (Status s = check_dns_name(dns); !s) return s;
    ok = ok && push_name(names.get(), GEN_DNS, ia5(dns));
  }
  for (const std::string& ip : ip_addresses) {
    ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(ip.c_str());
    if (bytes == nullptr) {
      detail::drain_openssl_errors();
      return {Errc::invalid_argument, "ip_addresses: \"" + ip.substr(0, 80) +
                                          "\" is not an IPv4 or IPv6 address"};
    }
    ok = ok && push_name(names.get(), GEN_IPADD, bytes);
  }
  ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0,
                               X509V3_ADD_DEFAULT) == 1;
  if (!ok) return {Errc::io_error, "cannot add subjectAltName" + openssl_suffix()};
  return Status::ok();
}

Result<KeyPair> sign_and_encode(X509* cert, EVP_PKEY* signer, EVP_PKEY* subject_key) {
  if (X509_sign(cert, signer, EVP_sha256()) <= 0) {
    return {Errc::io_error, "cannot sign certificate" + openssl_suffix()};
  }
  auto cert_pem = detail::certificate_to_pem(cert);
  if (!cert_pem) return cert_pem.status();
  auto key_pem = detail::private_key_to_pem(subject_key);
  if (!key_pem) return key_pem.status();
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

// The leaf's subject CN, for people reading `openssl x509 -text`; authorisation uses the URI.
std::string leaf_common_name(const Identity& id) {
  if (id.kind == Identity::Kind::node) return "node-" + std::to_string(id.node_id);
  return id.client_name;  // at most kMaxClientNameBytes == kMaxCommonNameBytes
}
static_assert(kMaxClientNameBytes <= kMaxCommonNameBytes);

// A CA certificate and its key, checked to belong together and to be a CA.
struct SigningCa {
  X509Ptr cert;
  PkeyPtr key;
};

Result<SigningCa> load_signing_ca(const KeyPair& ca) {
  auto ca_cert = detail::parse_certificate(ca.cert_pem, "CA certificate");
  if (!ca_cert) return ca_cert.status();
  auto ca_key = detail::parse_private_key(ca.key_pem, "CA key");
  if (!ca_key) return ca_key.status();
  if (X509_check_ca(ca_cert->get()) < 1) {
    return {Errc::invalid_argument, "CA certificate: is not a CA (basicConstraints CA:FALSE)"};
  }
  if (Status s = detail::check_key_matches(ca_cert->get(), ca_key->get(), "CA certificate",
                                           "CA key");
      !s) {
    return s;
  }
  return SigningCa{std::move(*ca_cert), std::move(*ca_key)};
}

}  // namespace

Result<KeyPair> generate_ca(std::string_view common_name, int validity_days) {
  if (Status s = check_common_name(common_name); !s) return s;
  if (Status s = check_validity_days(validity_days); !s) return s;
  auto key = generate_key();
  if (!key) return key.status();
  X509Ptr cert(X509_new());
  ANYA_ASSERT(cert != nullptr);
  if (X509_set_pubkey(cert.get(), key->get()) != 1) {
    return {Errc::io_error, "cannot set CA public key" + openssl_suffix()};
  }
  if (Status s = set_basics(cert.get(), common_name, validity_days); !s) return s;
  // Self-signed: the issuer is the subject.
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return {Errc::io_error, "cannot set CA issuer" + openssl_suffix()};
  }
  if (Status s = add_basic_constraints(cert.get(), true); !s) return s;
  if (Status s = add_key_usage(cert.get(), {kKeyUsageKeyCertSign, kKeyUsageCrlSign}); !s) {
    return s;
  }
  if (Status s = add_key_identifiers(cert.get(), cert.get()); !s) return s;
  return sign_and_encode(cert.get(), key->get(), key->get());
}

namespace {

// A leaf for `id` carrying `subject_key`, signed by `signer` (not yet signed: the caller signs).
Result<X509Ptr> build_leaf(const SigningCa& signer, EVP_PKEY* subject_key, const Identity& id,
                           const std::vector<std::string>& dns_names,
                           const std::vector<std::string>& ip_addresses, int validity_days) {
  if (Status s = validate_identity(id); !s) return s;
  if (Status s = check_validity_days(validity_days); !s) return s;
  if (dns_names.size() + ip_addresses.size() > kMaxSanEntries) {
    return {Errc::invalid_argument, "dns_names + ip_addresses: " +
                                        std::to_string(dns_names.size() + ip_addresses.size()) +
                                        " entries; at most " + std::to_string(kMaxSanEntries)};
  }
  X509Ptr cert(X509_new());
  ANYA_ASSERT(cert != nullptr);
  if (X509_set_pubkey(cert.get(), subject_key) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(signer.cert.get())) != 1) {
    return {Errc::io_error, "cannot set leaf key or issuer" + openssl_suffix()};
  }
  if (Status s = set_basics(cert.get(), leaf_common_name(id), validity_days); !s) return s;
  if (Status s = add_basic_constraints(cert.get(), false); !s) return s;
  if (Status s = add_key_usage(cert.get(), {kKeyUsageDigitalSignature}); !s) return s;
  const bool server_auth = id.kind == Identity::Kind::node;
  if (Status s = add_extended_key_usage(cert.get(), server_auth); !s) return s;
  if (Status s = add_key_identifiers(cert.get(), signer.cert.get()); !s) return s;
  if (Status s = add_subject_alt_names(cert.get(), id, dns_names, ip_addresses); !s) return s;
  return cert;
}

struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

}  // namespace

Result<KeyPair> issue(const KeyPair& ca, const Identity& id,
                      const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses, int validity_days) {
  auto signer = load_signing_ca(ca);
  if (!signer) return signer.status();
  auto key = generate_key();
  if (!key) return key.status();
  auto cert = build_leaf(*signer, key->get(), id, dns_names, ip_addresses, validity_days);
  if (!cert) return cert.status();
  return sign_and_encode(cert->get(), signer->key.get(), key->get());
}

Result<CertificateRequest> make_request(const Identity& id) {
  if (Status s = validate_identity(id); !s) return s;
  auto key = generate_key();
  if (!key) return key.status();
  ReqPtr req(X509_REQ_new());
  ANYA_ASSERT(req != nullptr);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn = leaf_common_name(id);
  bool ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                       -1, 0) == 1;
  ok = ok && X509_REQ_set_pubkey(req.get(), key->get()) == 1;
  ok = ok && X509_REQ_sign(req.get(), key->get(), EVP_sha256()) > 0;
  if (!ok) return {Errc::io_error, "cannot make a certificate request" + openssl_suffix()};
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return {Errc::io_error, "cannot encode the certificate request" + openssl_suffix()};
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  auto key_pem = detail::private_key_to_pem(key->get());
  if (!key_pem) return key_pem.status();
  return CertificateRequest{std::string(data, static_cast<std::size_t>(size)),
                            std::move(*key_pem)};
}

Result<std::string> sign_request(const KeyPair& ca, std::string_view csr_pem, const Identity& id,
                                 const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses,
                                 int validity_days) {
  if (csr_pem.empty() || csr_pem.size() > kMaxCsrBytes) {
    return {Errc::invalid_argument, "csr: empty or larger than " + std::to_string(kMaxCsrBytes) +
                                        " bytes"};
  }
  BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ANYA_ASSERT(bio != nullptr);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (req == nullptr) return {Errc::invalid_argument, "csr: not a PEM certificate request" +
                                                          openssl_suffix()};
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    return {Errc::invalid_argument, "csr: its signature does not verify (the request was not "
                                    "made with the key it carries)" + openssl_suffix()};
  }
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) < 256) {
    return {Errc::invalid_argument, "csr: the key must be ECDSA P-256 or stronger"};
  }
  auto signer = load_signing_ca(ca);
  if (!signer) return signer.status();
  // The identity is the caller's decision, never the request's: its subject is ignored.
  auto cert = build_leaf(*signer, key, id, dns_names, ip_addresses, validity_days);
  if (!cert) return cert.status();
  if (X509_sign(cert->get(), signer->key.get(), EVP_sha256()) <= 0) {
    return {Errc::io_error, "cannot sign certificate" + openssl_suffix()};
  }
  return detail::certificate_to_pem(cert->get());
}

Result<std::string> single_certificate(std::string_view pem) {
  auto certs = detail::parse_certificate_bundle(pem, "certificate");
  if (!certs) return certs.status();
  if (certs->size() != 1) {
    return {Errc::invalid_argument, "expected exactly one certificate, got " +
                                        std::to_string(certs->size())};
  }
  return detail::certificate_to_pem(certs->front().get());
}

Result<std::string> public_key_pin(std::string_view cert_pem) {
  auto cert = detail::parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.status();
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(X509_get0_pubkey(cert->get()), &der);
  if (size <= 0) return {Errc::io_error, "cannot encode the public key" + openssl_suffix()};
  unsigned char digest[32];
  unsigned int digest_size = 0;
  const int ok = EVP_Digest(der, static_cast<std::size_t>(size), digest, &digest_size,
                            EVP_sha256(), nullptr);
  OPENSSL_free(der);
  ANYA_ASSERT(ok == 1 && digest_size == sizeof digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

namespace {

// Writes `contents` to `file` through a temporary file in the same directory, so the rename is
// atomic; fsyncs the file before the rename and the directory after it.
Status write_file_atomically(const std::filesystem::path& file, std::string_view contents,
                             mode_t mode) {
  const std::string name = file.string();
  std::string temp = name + ".tmp.XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // created with mode 0600
  if (fd < 0) return {Errc::io_error, name + ": cannot create temporary file: " +
                                          std::strerror(errno)};
  Status status;
  std::size_t written = 0;
  while (status && written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = {Errc::io_error, name + ": cannot write: " + std::strerror(errno)};
    if (n > 0) written += static_cast<std::size_t>(n);
  }
  if (status && ::fchmod(fd, mode) != 0) {
    status = {Errc::io_error, name + ": cannot set mode: " + std::strerror(errno)};
  }
  if (status && ::fsync(fd) != 0) {
    status = {Errc::io_error, name + ": cannot fsync: " + std::strerror(errno)};
  }
  if (::close(fd) != 0 && status) {
    status = {Errc::io_error, name + ": cannot close: " + std::strerror(errno)};
  }
  if (status && ::rename(temp.c_str(), name.c_str()) != 0) {
    status = {Errc::io_error, name + ": cannot rename into place: " + std::strerror(errno)};
  }
  if (!status) {
    ::unlink(temp.c_str());
    return status;
  }
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || ::fsync(dir_fd) != 0) {
    status = {Errc::io_error, dir.string() + ": cannot fsync directory: " + std::strerror(errno)};
  }
  if (dir_fd >= 0) ::close(dir_fd);
  return status;
}

}  // namespace

Status write_pem_files(const std::filesystem::path& cert_file,
                       const std::filesystem::path& key_file, const KeyPair& pair) {
  auto cert = detail::parse_certificate(pair.cert_pem, cert_file.string() + " (to write)");
  if (!cert) return cert.status();
  auto key = detail::parse_private_key(pair.key_pem, key_file.string() + " (to write)");
  if (!key) return key.status();
  if (Status s = detail::check_key_matches(cert->get(), key->get(), cert_file.string(),
                                           key_file.string());
      !s) {
    return s;
  }
  // The key first: a crash between the two leaves a new key beside the old certificate, which
  // read_pem_files and make_context refuse with a message naming both files.
  if (Status s = write_file_atomically(key_file, pair.key_pem, 0600); !s) return s;
  return write_file_atomically(cert_file, pair.cert_pem, 0644);
}

Status write_certificate_file(const std::filesystem::path& file, std::string_view cert_pem) {
  auto cert = detail::parse_certificate(cert_pem, file.string() + " (to write)");
  if (!cert) return cert.status();
  return write_file_atomically(file, cert_pem, 0644);
}

Status write_crl_file(const std::filesystem::path& file, std::string_view crl_pem) {
  auto crls = detail::parse_crl_bundle(crl_pem, file.string() + " (to write)");
  if (!crls) return crls.status();
  ANYA_ASSERT(!crls->empty());
  return write_file_atomically(file, crl_pem, 0644);
}

Result<KeyPair> read_pem_files(const std::filesystem::path& cert_file,
                               const std::filesystem::path& key_file) {
  auto cert_pem = detail::read_text_file(cert_file);
  if (!cert_pem) return cert_pem.status();
  auto key_pem = detail::read_text_file(key_file);
  if (!key_pem) return key_pem.status();
  auto cert = detail::parse_certificate(*cert_pem, cert_file.string());
  if (!cert) return cert.status();
  auto key = detail::parse_private_key(*key_pem, key_file.string());
  if (!key) return key.status();
  if (Status s = detail::check_key_matches(cert->get(), key->get(), cert_file.string(),
                                           key_file.string());
      !s) {
    return s;
  }
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

Result<Identity> certificate_identity(std::string_view cert_pem) {
  auto cert = detail::parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.status();
  return detail::identity_of(cert->get());
}

Result<std::string> read_pem_file(const std::filesystem::path& file) {
  return detail::read_text_file(file);
}

Status check_issued_by(std::string_view cert_pem, std::string_view ca_cert_pem) {
  auto cert = detail::parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.status();
  auto ca = detail::parse_certificate(ca_cert_pem, "CA certificate");
  if (!ca) return ca.status();
  EVP_PKEY* ca_key = X509_get0_pubkey(ca->get());
  ANYA_ASSERT(ca_key != nullptr);
  const bool named = X509_check_issued(ca->get(), cert->get()) == X509_V_OK;
  const bool signed_by = named && X509_verify(cert->get(), ca_key) == 1;
  detail::drain_openssl_errors();
  if (signed_by) return Status::ok();
  return {Errc::invalid_argument,
          "certificate was not issued by this CA (its issuer is " +
              detail::name_text(X509_get_issuer_name(cert->get())) + ")"};
}

Result<std::string> certificate_serial_hex(std::string_view cert_pem) {
  auto cert = detail::parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.status();
  return detail::serial_hex(X509_get0_serialNumber(cert->get()));
}

// ---------------------------------------------------------------- CRLs

namespace {

// Serial (canonical hex) -> revocation time. Ordered, so a CRL lists its entries by serial.
using EntryMap = std::map<std::string, std::int64_t>;

// `hex` in the canonical spelling of detail::serial_hex, or an error quoting it.
Result<std::string> canonical_serial(std::string_view hex) {
  const std::string quoted = "revoked serial \"" + std::string(hex.substr(0, 48)) + "\"";
  const bool all_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (hex.empty() || hex.size() > kMaxSerialHexDigits || !all_hex) {
    return {Errc::invalid_argument, quoted + ": must be 1.." +
                                        std::to_string(kMaxSerialHexDigits) + " hex digits"};
  }
  BIGNUM* bn = nullptr;
  const std::string text(hex);
  ANYA_ASSERT(BN_hex2bn(&bn, text.c_str()) == static_cast<int>(text.size()));
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  ANYA_ASSERT(serial != nullptr);
  std::string out = detail::serial_hex(serial);
  ASN1_INTEGER_free(serial);
  return out;
}

// A revocationDate as seconds since the epoch. It is informational (verification ignores it),
// so one that does not convert reads as the epoch rather than failing the whole CRL.
std::int64_t unix_seconds(const ASN1_TIME* time) {
  struct tm parts {};
  ANYA_ASSERT(time != nullptr);
  if (ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<std::int64_t>(::timegm(&parts));
}

// Appends one revoked entry; the CRL owns it afterwards.
Status add_revoked(X509_CRL* crl, const std::string& serial_hex, std::int64_t revoked_at) {
  BIGNUM* bn = nullptr;
  ANYA_ASSERT(BN_hex2bn(&bn, serial_hex.c_str()) == static_cast<int>(serial_hex.size()));
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  ASN1_TIME* when = ASN1_TIME_set(nullptr, static_cast<time_t>(revoked_at));
  X509_REVOKED* entry = X509_REVOKED_new();
  ANYA_ASSERT(serial != nullptr);
  ANYA_ASSERT(entry != nullptr);
  bool ok = when != nullptr && X509_REVOKED_set_serialNumber(entry, serial) == 1 &&
            X509_REVOKED_set_revocationDate(entry, when) == 1;
  ok = ok && X509_CRL_add0_revoked(crl, entry) == 1;
  if (!ok) X509_REVOKED_free(entry);
  ASN1_INTEGER_free(serial);
  ASN1_TIME_free(when);
  if (!ok) return {Errc::io_error, "cannot add a CRL entry" + openssl_suffix()};
  return Status::ok();
}

// authorityKeyIdentifier (which CA key signed it, for verifiers during a CA rotation) and the
// cRLNumber that RFC 5280 §5.2.3 requires: the issue time, so later CRLs have larger numbers.
Status add_crl_extensions(X509_CRL* crl, X509* ca_cert, std::int64_t now) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert, nullptr, nullptr, crl, 0);
  X509_EXTENSION* aki =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always");
  bool ok = aki != nullptr && X509_CRL_add_ext(crl, aki, -1) == 1;
  X509_EXTENSION_free(aki);
  ASN1_INTEGER* number = ASN1_INTEGER_new();
  ANYA_ASSERT(number != nullptr);
  ok = ok && ASN1_INTEGER_set_int64(number, now) == 1;
  ok = ok && X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) == 1;
  ASN1_INTEGER_free(number);
  if (!ok) return {Errc::io_error, "cannot add CRL extensions" + openssl_suffix()};
  return Status::ok();
}

// The issuer, the update times, the entries: everything but extensions and signature.
Status fill_crl(X509_CRL* crl, X509* ca_cert, const EntryMap& entries, int next_update_days) {
  ASN1_TIME* last_update = X509_gmtime_adj(nullptr, -kNotBeforeBackdateSeconds);
  ASN1_TIME* next_update = X509_time_adj_ex(nullptr, next_update_days, 0, nullptr);
  bool ok = X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1;
  ok = ok && X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) == 1;
  ok = ok && last_update != nullptr && X509_CRL_set1_lastUpdate(crl, last_update) == 1;
  ok = ok && next_update != nullptr && X509_CRL_set1_nextUpdate(crl, next_update) == 1;
  ASN1_TIME_free(last_update);
  ASN1_TIME_free(next_update);
  if (!ok) return {Errc::io_error, "cannot fill in CRL fields" + openssl_suffix()};
  for (const auto& [serial, revoked_at] : entries) {
    if (Status s = add_revoked(crl, serial, revoked_at); !s) return s;
  }
  return Status::ok();
}

Result<std::string> build_crl(const KeyPair& ca, const EntryMap& entries, int next_update_days) {
  if (next_update_days < 1 || next_update_days > kMaxValidityDays) {
    return {Errc::invalid_argument, "next_update_days: " + std::to_string(next_update_days) +
                                        " is outside 1.." + std::to_string(kMaxValidityDays)};
  }
  if (entries.size() > kMaxCrlEntries) {
    return {Errc::invalid_argument, std::to_string(entries.size()) + " revoked serials; a CRL " +
                                        "holds at most " + std::to_string(kMaxCrlEntries)};
  }
  auto signer = load_signing_ca(ca);
  if (!signer) return signer.status();
  if ((X509_get_key_usage(signer->cert.get()) & KU_CRL_SIGN) == 0) {
    return {Errc::invalid_argument, "CA certificate: may not sign CRLs (keyUsage lacks cRLSign)"};
  }
  detail::CrlPtr crl(X509_CRL_new());
  ANYA_ASSERT(crl != nullptr);
  if (Status s = fill_crl(crl.get(), signer->cert.get(), entries, next_update_days); !s) return s;
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (Status s = add_crl_extensions(crl.get(), signer->cert.get(), now); !s) return s;
  ANYA_ASSERT(X509_CRL_sort(crl.get()) == 1);
  if (X509_CRL_sign(crl.get(), signer->key.get(), EVP_sha256()) <= 0) {
    return {Errc::io_error, "cannot sign CRL" + openssl_suffix()};
  }
  return detail::crl_to_pem(crl.get());
}

}  // namespace

Result<std::string> make_crl(const KeyPair& ca, const std::vector<std::string>& revoked_serials_hex,
                             int next_update_days) {
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  EntryMap entries;
  for (const std::string& hex : revoked_serials_hex) {
    auto serial = canonical_serial(hex);
    if (!serial) return serial.status();
    entries.emplace(std::move(*serial), now);
  }
  return build_crl(ca, entries, next_update_days);
}

Result<std::string> make_crl_from_entries(const KeyPair& ca,
                                          const std::vector<RevokedEntry>& entries,
                                          int next_update_days) {
  EntryMap merged;
  for (const RevokedEntry& entry : entries) {
    auto serial = canonical_serial(entry.serial_hex);
    if (!serial) return serial.status();
    auto [it, inserted] = merged.emplace(std::move(*serial), entry.revoked_at_unix);
    if (!inserted) it->second = std::min(it->second, entry.revoked_at_unix);  // the first one
  }
  return build_crl(ca, merged, next_update_days);
}

Result<std::vector<RevokedEntry>> read_crl_entries(std::string_view crl_pem,
                                                   std::string_view ca_cert_pem,
                                                   std::string_view label) {
  auto ca = detail::parse_certificate(ca_cert_pem, "CA certificate");
  if (!ca) return ca.status();
  std::vector<X509Ptr> cas;
  cas.push_back(std::move(*ca));
  auto crls = detail::parse_crl_bundle(crl_pem, label);
  if (!crls) return crls.status();
  EntryMap merged;
  for (const detail::CrlPtr& crl : *crls) {
    auto issuer = detail::crl_issuer(crl.get(), cas, label, "the CA certificate");
    if (!issuer) return issuer.status();
    const STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
      const std::int64_t at = unix_seconds(X509_REVOKED_get0_revocationDate(entry));
      auto [it, inserted] =
          merged.emplace(detail::serial_hex(X509_REVOKED_get0_serialNumber(entry)), at);
      if (!inserted) it->second = std::min(it->second, at);
    }
  }
  std::vector<RevokedEntry> out;
  out.reserve(merged.size());
  for (const auto& [serial, at] : merged) out.push_back(RevokedEntry{serial, at});
  return out;
}

}  // namespace anya::transport::tls
