#include "transport/tls/reloader.hpp"

#include <openssl/evp.h>

#include <boost/asio/ssl/context.hpp>
#include <utility>

#include "transport/tls/certs.hpp"
#include "transport/tls/openssl_util.hpp"

namespace anya::transport::tls {
namespace {

// The node-id check on bytes already read, so load() checks exactly the certificate it installs.
Status check_node_identity(std::string_view cert_pem, const std::filesystem::path& file,
                           engine::NodeId node) {
  ANYA_ASSERT(node != engine::kNoNode);
  // A file that does not parse or names no identity gets make_context's wording.
  auto cert = detail::parse_certificate(cert_pem, file.string());
  if (!cert) return cert.status();
  auto id = detail::identity_of(cert->get());
  if (!id) return {Errc::invalid_argument, file.string() + ": " + id.status().message()};
  const Identity expected = Identity::node(node);
  if (*id == expected) return Status::ok();
  return {Errc::invalid_argument,
          "tls.cert: " + file.string() + " names " + id->describe() + ", but this node runs as " +
              expected.describe() + "; each node needs its own certificate (anya-ha certs " +
              "issue --node " + std::to_string(node) + ")"};
}

// SHA-256 over every file's length and bytes, so moving bytes between files changes it too.
std::string fingerprint_of(const TlsMaterial& material) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ANYA_ASSERT(ctx != nullptr);
  ANYA_ASSERT(EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1);
  for (const std::string* text :
       {&material.ca_pem, &material.cert_pem, &material.key_pem, &material.crl_pem}) {
    const std::string length = std::to_string(text->size()) + ":";
    ANYA_ASSERT(EVP_DigestUpdate(ctx, length.data(), length.size()) == 1);
    ANYA_ASSERT(EVP_DigestUpdate(ctx, text->data(), text->size()) == 1);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  ANYA_ASSERT(EVP_DigestFinal_ex(ctx, digest, &digest_size) == 1);
  EVP_MD_CTX_free(ctx);
  ANYA_ASSERT(digest_size == 32);
  return std::string(reinterpret_cast<const char*>(digest), digest_size);
}

std::string plural(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// The log-line summary of material that has already passed make_context.
std::string describe_material(const TlsMaterial& material) {
  auto cert = detail::parse_certificate(material.cert_pem, "certificate");
  auto cas = detail::parse_certificate_bundle(material.ca_pem, "CA");
  ANYA_ASSERT(cert.is_ok());
  ANYA_ASSERT(cas.is_ok());
  auto id = detail::identity_of(cert->get());
  std::string out = id ? id->describe() + " (" + id->to_string() + ")" : "(no identity)";
  out += ", serial " + detail::serial_hex(X509_get0_serialNumber(cert->get()));
  out += ", expires " + detail::format_time(X509_get0_notAfter(cert->get()));
  out += "; CA file: " + plural(cas->size(), "certificate");
  if (material.crl_pem.empty()) return out + "; no CRL";
  auto crls = detail::parse_crl_bundle(material.crl_pem, "CRL");
  ANYA_ASSERT(crls.is_ok());
  std::size_t revoked = 0;
  for (const detail::CrlPtr& crl : *crls) {
    // The stack is null, and its size -1, for a CRL without entries.
    const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
    if (entries != nullptr) revoked += static_cast<std::size_t>(sk_X509_REVOKED_num(entries));
  }
  return out + "; CRL: " + plural(crls->size(), "list") + ", " + std::to_string(revoked) +
         " revoked";
}

}  // namespace

Status check_node_certificate(const TlsFiles& files, engine::NodeId node) {
  auto cert_pem = detail::read_text_file(files.cert);
  if (!cert_pem) return cert_pem.status();
  return check_node_identity(*cert_pem, files.cert, node);
}

struct TlsReloader::Built {
  std::shared_ptr<boost::asio::ssl::context> server;
  std::shared_ptr<boost::asio::ssl::context> client;
  std::string description;
};

TlsReloader::TlsReloader(TlsFiles files, std::optional<engine::NodeId> node)
    : files_(std::move(files)), node_(node) {
  ANYA_ASSERT(!node_ || *node_ != engine::kNoNode);
}

Result<TlsReloader::Built> TlsReloader::build(const TlsMaterial& material) const {
  // The node id first: "another node's certificate" is the likelier mistake, and clearer than
  // whatever else might be wrong with that file.
  if (node_) {
    if (Status s = check_node_identity(material.cert_pem, files_.cert, *node_); !s) return s;
  }
  auto server = make_context(files_, material, Side::server);
  if (!server) return server.status();
  auto client = make_context(files_, material, Side::client);
  if (!client) return client.status();
  ANYA_ASSERT(*server != nullptr);
  ANYA_ASSERT(*client != nullptr);
  return Built{std::move(*server), std::move(*client), describe_material(material)};
}

Result<bool> TlsReloader::rebuild(Mode mode) {
  std::lock_guard reload_lock(reload_mutex_);
  // The first load is not a reload: it counts neither as a reload nor as a failure.
  const bool counts = mode != Mode::first_load;
  auto material = read_tls_files(files_);
  if (!material) {
    std::lock_guard state_lock(state_mutex_);
    if (counts) ++reload_failures_;
    return material.status();
  }
  const std::string fingerprint = fingerprint_of(*material);
  if (mode == Mode::if_changed) {
    std::lock_guard state_lock(state_mutex_);
    if (fingerprint == fingerprint_ || fingerprint == failed_fingerprint_) return false;
  }
  auto built = build(*material);  // the slow part, outside state_mutex_
  std::lock_guard state_lock(state_mutex_);
  if (!built) {
    if (counts) ++reload_failures_;
    if (counts) failed_fingerprint_ = fingerprint;
    return built.status();
  }
  server_ = std::move(built->server);
  client_ = std::move(built->client);
  description_ = std::move(built->description);
  fingerprint_ = fingerprint;
  failed_fingerprint_.clear();
  if (counts) ++reloads_;
  ANYA_ASSERT(!fingerprint_.empty());
  return true;
}

Status TlsReloader::load() {
  ANYA_ASSERT(server() == nullptr);  // load() once; reload() afterwards
  auto done = rebuild(Mode::first_load);
  if (!done) return done.status();
  ANYA_ASSERT(*done);
  return Status::ok();
}

Result<bool> TlsReloader::reload_if_changed() {
  ANYA_ASSERT(server() != nullptr);  // after a successful load()
  return rebuild(Mode::if_changed);
}

Result<bool> TlsReloader::reload() {
  ANYA_ASSERT(server() != nullptr);
  return rebuild(Mode::forced);
}

std::shared_ptr<boost::asio::ssl::context> TlsReloader::server() const {
  std::lock_guard state_lock(state_mutex_);
  return server_;
}

std::shared_ptr<boost::asio::ssl::context> TlsReloader::client() const {
  std::lock_guard state_lock(state_mutex_);
  return client_;
}

std::uint64_t TlsReloader::reloads() const {
  std::lock_guard state_lock(state_mutex_);
  return reloads_;
}

std::uint64_t TlsReloader::reload_failures() const {
  std::lock_guard state_lock(state_mutex_);
  return reload_failures_;
}

std::string TlsReloader::describe() const {
  std::lock_guard state_lock(state_mutex_);
  return description_.empty() ? std::string("(not loaded)") : description_;
}

}  // namespace anya::transport::tls
