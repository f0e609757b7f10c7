#include "transport/tls/context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "transport/tls/certs.hpp"
#include "transport/tls/openssl_util.hpp"

namespace anya::transport::tls {
namespace {

using detail::CrlPtr;
using detail::openssl_suffix;
using detail::PkeyPtr;
using detail::X509Ptr;

// Leaf + CA: certificates are issued directly by the cluster CA. One spare level, so a future
// intermediate CA does not need a code change; longer chains are refused.
constexpr int kMaxVerifyDepth = 2;

// The checked contents of a TlsFiles.
struct LoadedFiles {
  std::vector<X509Ptr> cas;
  X509Ptr cert;
  PkeyPtr key;
  std::vector<CrlPtr> crls;  // empty when TlsFiles::crl is
};

Status check_cas(const std::vector<X509Ptr>& cas, const std::string& ca_name) {
  for (std::size_t i = 0; i < cas.size(); ++i) {
    const std::string label =
        cas.size() == 1 ? ca_name : ca_name + " (certificate " + std::to_string(i + 1) + ")";
    if (X509_check_ca(cas[i].get()) < 1) {
      return {Errc::invalid_argument, label + ": is not a CA certificate (CA:FALSE)"};
    }
    if (Status s = detail::check_validity_period(cas[i].get(), label); !s) return s;
  }
  return Status::ok();
}

// Every CRL signed by one of `cas` and current, and every CA covered by one: with
// X509_V_FLAG_CRL_CHECK, a certificate whose CA has no CRL fails with "unable to get
// certificate CRL", so a CA missing from the file would silently cut off all its nodes.
Result<std::vector<CrlPtr>> load_crls(const std::string& pem, const TlsFiles& files,
                                      const std::vector<X509Ptr>& cas) {
  const std::string crl_name = files.crl.string();
  const std::string ca_name = files.ca_cert.string();
  auto crls = detail::parse_crl_bundle(pem, crl_name);
  if (!crls) return crls.status();
  std::vector<const X509*> covered;
  for (std::size_t i = 0; i < crls->size(); ++i) {
    const std::string label =
        crls->size() == 1 ? crl_name : crl_name + " (CRL " + std::to_string(i + 1) + ")";
    auto issuer = detail::crl_issuer((*crls)[i].get(), cas, label, ca_name);
    if (!issuer) return issuer.status();
    if (Status s = detail::check_crl_time((*crls)[i].get(), label); !s) return s;
    covered.push_back(*issuer);
  }
  for (const X509Ptr& ca : cas) {
    if (std::find(covered.begin(), covered.end(), ca.get()) != covered.end()) continue;
    return {Errc::invalid_argument,
            crl_name + ": has no CRL from the CA " +
                detail::name_text(X509_get_subject_name(ca.get())) + " in " + ca_name +
                "; with a CRL file every CA needs one, or all its certificates are refused"};
  }
  ANYA_ASSERT(covered.size() == crls->size());
  return crls;
}

Result<LoadedFiles> load_files(const TlsFiles& files, const TlsMaterial& material, Side side) {
  ANYA_ASSERT(files.crl.empty() == material.crl_pem.empty());
  const std::string ca_name = files.ca_cert.string();
  const std::string cert_name = files.cert.string();
  const std::string key_name = files.key.string();
  LoadedFiles out;
  auto cas = detail::parse_certificate_bundle(material.ca_pem, ca_name);
  if (!cas) return cas.status();
  out.cas = std::move(*cas);
  if (Status s = check_cas(out.cas, ca_name); !s) return s;
  if (!files.crl.empty()) {
    auto crls = load_crls(material.crl_pem, files, out.cas);
    if (!crls) return crls.status();
    out.crls = std::move(*crls);
  }
  auto cert = detail::parse_certificate(material.cert_pem, cert_name);
  if (!cert) return cert.status();
  out.cert = std::move(*cert);
  auto key = detail::parse_private_key(material.key_pem, key_name);
  if (!key) return key.status();
  out.key = std::move(*key);

  if (Status s = detail::check_validity_period(out.cert.get(), cert_name); !s) return s;
  if (Status s = detail::check_key_matches(out.cert.get(), out.key.get(), cert_name, key_name);
      !s) {
    return s;
  }
  // With CRLs, this also refuses our own certificate when it is listed: every peer would.
  const int purpose = side == Side::server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
  if (Status s = detail::check_chain(out.cert.get(), out.cas, purpose, cert_name, ca_name,
                                     out.crls);
      !s) {
    return s;
  }
  if (auto id = detail::identity_of(out.cert.get()); !id) {
    return {Errc::invalid_argument, cert_name + ": " + id.status().message()};
  }
  return out;
}

// The CAs (and CRLs, with revocation checking) peers are verified against.
Status install_trust(SSL_CTX* ctx, const LoadedFiles& loaded, Side side, const TlsFiles& files) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  ANYA_ASSERT(store != nullptr);
  for (const X509Ptr& ca : loaded.cas) {
    if (X509_STORE_add_cert(store, ca.get()) != 1) {
      return {Errc::invalid_argument,
              files.ca_cert.string() + ": cannot add CA certificate" + openssl_suffix()};
    }
    // Tells clients which CA to pick a certificate for (curl with several, for instance).
    if (side == Side::server && SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      return {Errc::invalid_argument,
              files.ca_cert.string() + ": cannot list CA for clients" + openssl_suffix()};
    }
  }
  if (loaded.crls.empty()) return Status::ok();
  for (const CrlPtr& crl : loaded.crls) {
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      return {Errc::invalid_argument,
              files.crl.string() + ": cannot add CRL" + openssl_suffix()};
    }
  }
  // On the store and on the context's own parameters: a handshake's verification starts from
  // the store's and then applies the context's, so either alone would do; both make it plain.
  ANYA_ASSERT(X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) == 1);
  ANYA_ASSERT(X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK) == 1);
  return Status::ok();
}

// Applies the policy in the header to a fresh context and installs the loaded files.
Status configure(SSL_CTX* ctx, const LoadedFiles& loaded, Side side, const TlsFiles& files) {
  ERR_clear_error();
  bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1;
  ok = ok && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1;
  if (!ok) return {Errc::unsupported, "this OpenSSL cannot do TLS 1.3" + openssl_suffix()};
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(ctx, kMaxVerifyDepth);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  // Send only our own certificate, not the CA that OpenSSL would otherwise append from the
  // trust store: every peer already holds the CA, and a peer of another cluster then reports
  // "unable to get local issuer certificate" rather than a confusing "self-signed certificate
  // in certificate chain".
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  if (side == Side::server && SSL_CTX_set_num_tickets(ctx, 0) != 1) {
    return {Errc::io_error, "cannot disable session tickets" + openssl_suffix()};
  }
  if (Status s = install_trust(ctx, loaded, side, files); !s) return s;
  if (SSL_CTX_use_certificate(ctx, loaded.cert.get()) != 1) {
    return {Errc::invalid_argument,
            files.cert.string() + ": certificate not accepted by OpenSSL" + openssl_suffix()};
  }
  if (SSL_CTX_use_PrivateKey(ctx, loaded.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return {Errc::invalid_argument,
            files.key.string() + ": private key not accepted by OpenSSL" + openssl_suffix()};
  }
  return Status::ok();
}

// X509_verify_cert_error_string, with what to do for the errors revocation brings.
std::string verify_reason(long verify) {
  std::string out = X509_verify_cert_error_string(verify);
  switch (verify) {
    case X509_V_ERR_CERT_REVOKED:
      return out + " (the peer's certificate is listed in our CRL; it needs a new certificate)";
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return out + " (our CRL file is out of date: renew it with anya-ha certs revoke, reload)";
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return out + " (check the clock)";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
      return out + " (our CRL file has no CRL from the peer's CA)";
    default:
      return out;
  }
}

}  // namespace

Result<TlsMaterial> read_tls_files(const TlsFiles& files) {
  TlsMaterial out;
  for (auto [file, text] : {std::pair{&files.ca_cert, &out.ca_pem},
                            std::pair{&files.cert, &out.cert_pem},
                            std::pair{&files.key, &out.key_pem},
                            std::pair{&files.crl, &out.crl_pem}}) {
    if (file == &files.crl && file->empty()) continue;  // no CRL configured
    auto contents = detail::read_text_file(*file);
    if (!contents) return contents.status();
    *text = std::move(*contents);
  }
  // An empty CRL file must still be refused by name, not mistaken for "no CRL".
  if (!files.crl.empty() && out.crl_pem.empty()) {
    return {Errc::invalid_argument, files.crl.string() + ": CRL file is empty"};
  }
  return out;
}

Result<std::shared_ptr<boost::asio::ssl::context>> make_context(const TlsFiles& files,
                                                                Side side) {
  auto material = read_tls_files(files);
  if (!material) return material.status();
  return make_context(files, *material, side);
}

Result<std::shared_ptr<boost::asio::ssl::context>> make_context(const TlsFiles& files,
                                                                const TlsMaterial& material,
                                                                Side side) {
  auto loaded = load_files(files, material, side);
  if (!loaded) return loaded.status();
  std::shared_ptr<boost::asio::ssl::context> ctx;
  try {
    ctx = std::make_shared<boost::asio::ssl::context>(side == Side::server
                                                          ? boost::asio::ssl::context::tls_server
                                                          : boost::asio::ssl::context::tls_client);
  } catch (const std::exception& e) {
    return {Errc::io_error, std::string("cannot create TLS context: ") + e.what()};
  }
  ANYA_ASSERT(ctx->native_handle() != nullptr);
  if (Status s = configure(ctx->native_handle(), *loaded, side, files); !s) return s;
  return ctx;
}

Result<Identity> peer_identity(SSL* ssl) {
  ANYA_ASSERT(ssl != nullptr);
  // The verification result first: after a refused handshake it is the reason, which
  // "the handshake has not completed" would hide.
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return {Errc::invalid_argument, "peer certificate did not verify: " + verify_reason(verify)};
  }
  if (SSL_is_init_finished(ssl) != 1) {
    return {Errc::invalid_argument, "the TLS handshake has not completed"};
  }
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return {Errc::invalid_argument, "peer presented no certificate"};
  auto id = detail::identity_of(cert);
  if (!id) return {Errc::invalid_argument, "peer " + id.status().message()};
  return id;
}

Status expect_peer(SSL* ssl, const Identity& expected) {
  auto actual = peer_identity(ssl);
  if (!actual) return actual.status();
  if (*actual == expected) return Status::ok();
  return {Errc::invalid_argument, "peer certificate is for " + actual->describe() +
                                      ", but it claims to be " + expected.describe()};
}

namespace {

// A hint for the TLS errors that usually mean a configuration mistake, or nullptr.
const char* hint_for(int reason) {
  switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return "the client must present a certificate from the cluster CA";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return "the peer requires a client certificate and we sent none";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return "the peer does not trust the CA that issued our certificate (another cluster?)";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return "the peer says our certificate has expired";
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
      return "the peer says our certificate is revoked (listed in its CRL); issue a new one";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      return "the peer refused our certificate";
    case SSL_R_UNSUPPORTED_PROTOCOL:
      return "the peer does not offer TLS 1.3, the only version anya-ha speaks";
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return "the peer does not speak TLS 1.3, the only version anya-ha speaks";
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
      return "the peer is not speaking TLS (plain HTTP?)";
    default:
      return nullptr;
  }
}

std::string describe_ssl_error(const boost::system::error_code& error) {
  const auto code = static_cast<unsigned long>(static_cast<unsigned int>(error.value()));
  const char* reason_text = ERR_reason_error_string(code);
  std::string out = "TLS error: ";
  out += reason_text != nullptr ? reason_text : error.message();
  if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
    if (const char* hint = hint_for(ERR_GET_REASON(code))) out += std::string("; ") + hint;
  }
  return out;
}

}  // namespace

std::string describe_handshake_failure(SSL* ssl, const boost::system::error_code& error) {
  if (ssl != nullptr) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return "certificate verify failed: " + verify_reason(verify);
    }
  }
  if (!error) return "no error";
  if (error.category() == boost::asio::error::get_ssl_category()) {
    return describe_ssl_error(error);
  }
  if (error == boost::asio::ssl::error::stream_truncated) {
    return "the peer closed the connection without a TLS close_notify (it may have refused "
           "our certificate; see its log)";
  }
  if (error == boost::asio::error::eof) {
    return "the peer closed the connection during the handshake (it may have refused us; see "
           "its log)";
  }
  return error.message();
}

}  // namespace anya::transport::tls
