// Tests for transport/tls: identities, certificate issuance, PEM files, CRLs, contexts, real
// TLS 1.3 handshakes over 127.0.0.1 (including the refusals and the reasons they print), and
// reloading the TLS files under live connections.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>

#include "transport/tls/certs.hpp"
#include "transport/tls/context.hpp"
#include "transport/tls/identity.hpp"
#include "transport/tls/openssl_util.hpp"
#include "transport/tls/reloader.hpp"

namespace anya::transport::tls {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using ::testing::HasSubstr;

// ---------------------------------------------------------------- helpers

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/anya-tls-test-XXXXXX";
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

KeyPair must_ca(std::string_view name = "test CA") {
  auto ca = generate_ca(name, 30);
  EXPECT_TRUE(ca.is_ok()) << ca.status().to_string();
  return std::move(ca).value();
}

KeyPair must_issue(const KeyPair& ca, const Identity& id) {
  auto leaf = issue(ca, id, {"localhost"}, {"127.0.0.1", "::1"}, 30);
  EXPECT_TRUE(leaf.is_ok()) << leaf.status().to_string();
  return std::move(leaf).value();
}

detail::X509Ptr must_parse(std::string_view pem) {
  auto cert = detail::parse_certificate(pem, "test");
  EXPECT_TRUE(cert.is_ok()) << cert.status().to_string();
  return std::move(cert).value();
}

// Lets `mutate` change a copy of `leaf`'s certificate and signs it again with the CA key: how
// the tests make certificates that issue() rightly refuses to make (expired, odd SANs).
KeyPair resign(const KeyPair& leaf, const KeyPair& ca, const std::function<void(X509*)>& mutate) {
  detail::X509Ptr cert = must_parse(leaf.cert_pem);
  auto ca_key = detail::parse_private_key(ca.key_pem, "ca key");
  EXPECT_TRUE(ca_key.is_ok());
  mutate(cert.get());
  EXPECT_GT(X509_sign(cert.get(), ca_key->get(), EVP_sha256()), 0);
  auto pem = detail::certificate_to_pem(cert.get());
  EXPECT_TRUE(pem.is_ok());
  return KeyPair{*pem, leaf.key_pem};
}

void make_expired(X509* cert) {
  ASSERT_NE(X509_gmtime_adj(X509_getm_notBefore(cert), -2 * 86400), nullptr);
  ASSERT_NE(X509_gmtime_adj(X509_getm_notAfter(cert), -86400), nullptr);
}

// Replaces the subjectAltName with the given URIs (none: no extension at all).
void set_uris(X509* cert, const std::vector<std::string>& uris) {
  const int index = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
  ASSERT_GE(index, 0);
  X509_EXTENSION_free(X509_delete_ext(cert, index));
  if (uris.empty()) return;
  detail::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  for (const std::string& uri : uris) {
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASSERT_EQ(ASN1_STRING_set(text, uri.data(), static_cast<int>(uri.size())), 1);
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_URI, text);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  ASSERT_EQ(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT),
            1);
}

// Writes ca.crt, NAME.crt and NAME.key into `dir`.
TlsFiles write_files(const fs::path& dir, const std::string& name, const KeyPair& ca,
                     const KeyPair& leaf) {
  TlsFiles files{dir / "ca.crt", dir / (name + ".crt"), dir / (name + ".key")};
  Status s = write_pem_files(files.ca_cert, dir / "ca.key", ca);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  s = write_pem_files(files.cert, files.key, leaf);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return files;
}

void write_text(const fs::path& file, std::string_view text) {
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
  std::fclose(f);
}

std::string must_serial(const KeyPair& leaf) {
  auto serial = certificate_serial_hex(leaf.cert_pem);
  EXPECT_TRUE(serial.is_ok()) << serial.status().to_string();
  return serial.is_ok() ? *serial : std::string();
}

std::string must_crl(const KeyPair& ca, const std::vector<std::string>& serials, int days = 30) {
  auto crl = make_crl(ca, serials, days);
  EXPECT_TRUE(crl.is_ok()) << crl.status().to_string();
  return crl.is_ok() ? *crl : std::string();
}

// Lets `mutate` change the (first) CRL in `crl_pem` and signs it again with the CA key: how the
// tests make CRLs that make_crl rightly refuses to make (already expired).
std::string resign_crl(const std::string& crl_pem, const KeyPair& ca,
                       const std::function<void(X509_CRL*)>& mutate) {
  auto crls = detail::parse_crl_bundle(crl_pem, "crl");
  auto key = detail::parse_private_key(ca.key_pem, "ca key");
  EXPECT_TRUE(crls.is_ok());
  EXPECT_TRUE(key.is_ok());
  X509_CRL* crl = (*crls)[0].get();
  mutate(crl);
  EXPECT_GT(X509_CRL_sign(crl, key->get(), EVP_sha256()), 0);
  auto pem = detail::crl_to_pem(crl);
  EXPECT_TRUE(pem.is_ok());
  return *pem;
}

void make_crl_expired(X509_CRL* crl) {
  ASN1_TIME* last_update = X509_gmtime_adj(nullptr, -2 * 86400);
  ASN1_TIME* next_update = X509_gmtime_adj(nullptr, -86400);
  EXPECT_EQ(X509_CRL_set1_lastUpdate(crl, last_update), 1);
  EXPECT_EQ(X509_CRL_set1_nextUpdate(crl, next_update), 1);
  ASN1_TIME_free(last_update);
  ASN1_TIME_free(next_update);
}

// write_files plus DIR/NAME.crl holding `crl_pem`, named in TlsFiles::crl.
TlsFiles write_files_with_crl(const fs::path& dir, const std::string& name, const KeyPair& ca,
                              const KeyPair& leaf, const std::string& crl_pem) {
  TlsFiles files = write_files(dir, name, ca, leaf);
  files.crl = dir / (name + ".crl");
  write_text(files.crl, crl_pem);
  return files;
}

// ---------------------------------------------------------------- handshake harness

using Stream = asio::ssl::stream<asio::ip::tcp::socket>;

// What one side of a connection saw.
struct SideResult {
  bool handshake_done = false;  // the handshake handler ran
  boost::system::error_code handshake_error;
  boost::system::error_code io_error;  // of the one-byte exchange after the handshake
  bool exchanged = false;              // the byte went both ways
  std::string failure;                 // describe_handshake_failure of the first error
};

// A server and a client on one io_context over 127.0.0.1: both handshake, then the client
// sends one byte and the server echoes it (so a TLS 1.3 client learns that the server refused
// its certificate). The streams outlive run() so the tests can ask them for the peer identity.
struct Connection {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::unique_ptr<Stream> server, client;
  SideResult server_result, client_result;
  char server_byte = 0, client_byte = 'x';
  bool finished = false;  // run_for returned because all work was done

  void fail(Stream& stream, SideResult& result, const boost::system::error_code& error) {
    result.failure = describe_handshake_failure(stream.native_handle(), error);
    boost::system::error_code ignored;
    stream.lowest_layer().close(ignored);  // any alert was already written (asio flushes first)
  }

  void start_server() {
    acceptor.async_accept(server->next_layer(), [this](boost::system::error_code ec) {
      ASSERT_FALSE(ec) << ec.message();
      server->async_handshake(Stream::server, [this](boost::system::error_code ec) {
        server_result.handshake_done = true;
        server_result.handshake_error = ec;
        if (ec) return fail(*server, server_result, ec);
        asio::async_read(*server, asio::buffer(&server_byte, 1), [this](auto ec, std::size_t) {
          if (ec) {
            server_result.io_error = ec;
            return fail(*server, server_result, ec);
          }
          asio::async_write(*server, asio::buffer(&server_byte, 1), [this](auto ec, auto) {
            server_result.io_error = ec;
            server_result.exchanged = !ec;
          });
        });
      });
    });
  }

  void start_client() {
    client->next_layer().async_connect(acceptor.local_endpoint(), [this](auto ec) {
      ASSERT_FALSE(ec) << ec.message();
      client->async_handshake(Stream::client, [this](boost::system::error_code ec) {
        client_result.handshake_done = true;
        client_result.handshake_error = ec;
        if (ec) return fail(*client, client_result, ec);
        asio::async_write(*client, asio::buffer(&client_byte, 1), [this](auto ec, auto) {
          if (ec) {
            client_result.io_error = ec;
            return fail(*client, client_result, ec);
          }
          asio::async_read(*client, asio::buffer(&client_byte, 1), [this](auto ec, auto) {
            client_result.io_error = ec;
            if (ec) return fail(*client, client_result, ec);
            client_result.exchanged = true;
          });
        });
      });
    });
  }

  // One more byte each way over the connection run() opened: true when it came back.
  bool round_trip(char byte) {
    io.restart();
    bool server_ok = false, client_ok = false;
    client_byte = byte;
    asio::async_read(*server, asio::buffer(&server_byte, 1), [&](auto ec, std::size_t) {
      if (ec) return;
      asio::async_write(*server, asio::buffer(&server_byte, 1),
                        [&](auto ec, auto) { server_ok = !ec; });
    });
    asio::async_write(*client, asio::buffer(&client_byte, 1), [&](auto ec, auto) {
      if (ec) return;
      client_byte = 0;
      asio::async_read(*client, asio::buffer(&client_byte, 1),
                       [&](auto ec, auto) { client_ok = !ec; });
    });
    io.run_for(std::chrono::seconds(10));
    return server_ok && client_ok && client_byte == byte;
  }

  void run(asio::ssl::context& server_ctx, asio::ssl::context& client_ctx) {
    const asio::ip::tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(local.protocol());
    acceptor.bind(local);
    acceptor.listen();
    server = std::make_unique<Stream>(io, server_ctx);
    client = std::make_unique<Stream>(io, client_ctx);
    start_server();
    start_client();
    io.run_for(std::chrono::seconds(10));
    finished = io.stopped();
  }
};

std::shared_ptr<asio::ssl::context> must_context(const TlsFiles& files, Side side) {
  auto ctx = make_context(files, side);
  EXPECT_TRUE(ctx.is_ok()) << ctx.status().to_string();
  return ctx.is_ok() ? *ctx : nullptr;
}

// A client context built by hand, for clients make_context would never produce: no
// certificate, or a TLS version other than 1.3.
std::shared_ptr<asio::ssl::context> raw_client_context(const KeyPair& ca, const KeyPair* leaf,
                                                       int max_version) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->add_certificate_authority(asio::buffer(ca.cert_pem));
  ctx->set_verify_mode(asio::ssl::verify_peer);
  if (leaf != nullptr) {
    ctx->use_certificate(asio::buffer(leaf->cert_pem), asio::ssl::context::pem);
    ctx->use_private_key(asio::buffer(leaf->key_pem), asio::ssl::context::pem);
  }
  EXPECT_EQ(SSL_CTX_set_max_proto_version(ctx->native_handle(), max_version), 1);
  return ctx;
}

// ---------------------------------------------------------------- identities

TEST(Identity, RoundTripsCanonicalUris) {
  const std::uint64_t max_id = std::numeric_limits<std::uint64_t>::max();
  const std::string long_name(kMaxClientNameBytes, 'a');
  for (const Identity& id : {Identity::node(1), Identity::node(3), Identity::node(max_id),
                             Identity::client("alice.ops_1-x"), Identity::client(long_name)}) {
    const std::string uri = id.to_string();
    auto back = parse_identity(uri);
    ASSERT_TRUE(back.is_ok()) << uri << ": " << back.status().to_string();
    EXPECT_EQ(*back, id);
    EXPECT_EQ(back->to_string(), uri);
  }
  EXPECT_EQ(Identity::node(42).to_string(), "anya-ha://node/42");
  EXPECT_EQ(Identity::node(max_id).to_string(), "anya-ha://node/18446744073709551615");
  EXPECT_EQ(Identity::client("bob").to_string(), "anya-ha://client/bob");
  EXPECT_EQ(Identity::node(4).describe(), "node 4");
}

TEST(Identity, ParseRejectsWithReason) {
  const std::string overlong(kMaxClientNameBytes + 1, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"anya-ha://node/0", "must be positive"},
      {"anya-ha://node/abc", "not a decimal number"},
      {"anya-ha://node/3/", "not a decimal number"},
      {"anya-ha://node/-3", "not a decimal number"},
      {"anya-ha://node/", "node id is empty"},
      {"anya-ha://node/007", "leading zero"},
      {"anya-ha://node/18446744073709551616", "does not fit in 64 bits"},
      {"anya-ha://node/123456789012345678901", "more than 20 digits"},
      {"anya-ha://client/" + overlong, "65 characters long"},
      {"anya-ha://client/", "client name is empty"},
      {"anya-ha://client/a b", "outside [A-Za-z0-9._-] at position 1"},
      {"anya-ha://client/a/b", "outside [A-Za-z0-9._-] at position 1"},
      {"https://node/3", "expected anya-ha://node/<id>"},
      {"anya-ha://peer/3", "expected anya-ha://node/<id>"},
      {"ANYA-HA://node/3", "expected anya-ha://node/<id>"},
      {"spiffe://cluster/node/3", "expected anya-ha://node/<id>"},
      {"", "expected anya-ha://node/<id>"},
  };
  for (const auto& [uri, reason] : cases) {
    auto id = parse_identity(uri);
    ASSERT_FALSE(id.is_ok()) << uri;
    EXPECT_EQ(id.status().code(), Errc::invalid_argument);
    EXPECT_THAT(id.status().message(), HasSubstr(reason)) << uri;
  }
}

TEST(Identity, ValidateNamesTheField) {
  EXPECT_TRUE(validate_identity(Identity::node(7)).is_ok());
  EXPECT_THAT(validate_identity(Identity::node(0)).message(), HasSubstr("node_id"));
  EXPECT_THAT(validate_identity(Identity::client("")).message(), HasSubstr("client_name"));
  EXPECT_THAT(validate_identity(Identity::client("x\ny")).message(), HasSubstr("client_name"));
  Identity mixed = Identity::client("ops");
  mixed.node_id = 3;
  EXPECT_THAT(validate_identity(mixed).message(), HasSubstr("node_id: must be 0"));
}

// ---------------------------------------------------------------- certificates

TEST(Certs, CaIsAP256CaWithRandomSerial) {
  const KeyPair ca = must_ca("anya-ha test CA");
  const KeyPair other = must_ca("anya-ha test CA");
  detail::X509Ptr cert = must_parse(ca.cert_pem);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  EXPECT_TRUE(X509_get_extension_flags(cert.get()) & EXFLAG_CA);
  EXPECT_TRUE(X509_get_extension_flags(cert.get()) & EXFLAG_SS);  // self-signed
  int critical = -1;
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(critical, 1);
  BASIC_CONSTRAINTS_free(bc);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<std::uint32_t>(KU_KEY_CERT_SIGN |
                                                                       KU_CRL_SIGN));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char curve[64] = {};
  ASSERT_EQ(EVP_PKEY_get_group_name(key, curve, sizeof curve, nullptr), 1);
  EXPECT_STREQ(curve, "prime256v1");
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  EXPECT_EQ(ASN1_STRING_length(serial), 16);  // 128 bits
  detail::X509Ptr other_cert = must_parse(other.cert_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(other_cert.get())), 0);
  EXPECT_NE(ca.key_pem, other.key_pem);
}

TEST(Certs, NodeCertificateCarriesIdentityNamesAndUsages) {
  const KeyPair ca = must_ca();
  auto leaf = issue(ca, Identity::node(3), {"localhost"}, {"127.0.0.1", "::1"}, 30);
  ASSERT_TRUE(leaf.is_ok()) << leaf.status().to_string();
  auto id = certificate_identity(leaf->cert_pem);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(*id, Identity::node(3));

  detail::X509Ptr cert = must_parse(leaf->cert_pem);
  detail::X509Ptr ca_cert = must_parse(ca.cert_pem);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(ca_cert.get())), 1);
  EXPECT_EQ(X509_check_issued(ca_cert.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
            static_cast<std::uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);
  EXPECT_EQ(detail::check_validity_period(cert.get(), "leaf").to_string(), "ok");
  EXPECT_TRUE(detail::check_key_matches(cert.get(), detail::parse_private_key(
                                                        leaf->key_pem, "k")->get(), "c", "k")
                  .is_ok());
}

TEST(Certs, ClientCertificateIsForClientAuthOnly) {
  const KeyPair ca = must_ca();
  auto leaf = issue(ca, Identity::client("ops.alice"), {}, {}, 30);
  ASSERT_TRUE(leaf.is_ok()) << leaf.status().to_string();
  auto id = certificate_identity(leaf->cert_pem);
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(*id, Identity::client("ops.alice"));
  detail::X509Ptr cert = must_parse(leaf->cert_pem);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<std::uint32_t>(XKU_SSL_CLIENT));
}

TEST(Certs, IssueRefusesBadInputNamingTheField) {
  const KeyPair ca = must_ca();
  const KeyPair other_ca = must_ca();
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  const std::vector<std::string> many(kMaxSanEntries + 1, "localhost");
  struct Case {
    Result<KeyPair> result;
    std::string reason;
  };
  const Case cases[] = {
      {issue(ca, Identity::node(0), {}, {}, 30), "node_id: must be positive"},
      {issue(ca, Identity::client("a b"), {}, {}, 30), "client_name"},
      {issue(ca, Identity::node(1), {}, {}, 0), "validity_days: 0 is outside"},
      {issue(ca, Identity::node(1), {}, {}, kMaxValidityDays + 1), "validity_days"},
      {issue(ca, Identity::node(1), {"bad_name"}, {}, 30), "dns_names: \"bad_name\""},
      {issue(ca, Identity::node(1), {"-a.example"}, {}, 30), "hyphen-edged"},
      {issue(ca, Identity::node(1), {}, {"300.1.1.1"}, 30), "ip_addresses: \"300.1.1.1\""},
      {issue(ca, Identity::node(1), many, {}, 30), "at most 32"},
      {issue(leaf, Identity::node(2), {}, {}, 30), "CA certificate: is not a CA"},
      {issue(KeyPair{ca.cert_pem, other_ca.key_pem}, Identity::node(2), {}, {}, 30),
       "CA key: private key does not match the certificate in CA certificate"},
      {issue(KeyPair{"junk", ca.key_pem}, Identity::node(2), {}, {}, 30),
       "CA certificate: not a PEM certificate"},
  };
  for (const Case& c : cases) {
    ASSERT_FALSE(c.result.is_ok()) << c.reason;
    EXPECT_THAT(c.result.status().message(), HasSubstr(c.reason));
  }
  EXPECT_THAT(generate_ca("", 30).status().message(), HasSubstr("common_name"));
  EXPECT_THAT(generate_ca(std::string(65, 'c'), 30).status().message(), HasSubstr("common_name"));
  EXPECT_THAT(generate_ca("ca", -1).status().message(), HasSubstr("validity_days: -1"));
}

TEST(Certs, IdentityNeedsExactlyOneWellFormedUri) {
  const KeyPair ca = must_ca();
  const KeyPair leaf = must_issue(ca, Identity::node(5));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no subjectAltName"},
      {{"anya-ha://node/5", "anya-ha://node/6"}, "2 URI subjectAltNames"},
      {{"https://node5.example"}, "expected anya-ha://node/<id>"},
      {{"anya-ha://node/0"}, "must be positive"},
  };
  for (const auto& [uris, reason] : cases) {
    const KeyPair odd = resign(leaf, ca, [&uris = uris](X509* cert) { set_uris(cert, uris); });
    auto id = certificate_identity(odd.cert_pem);
    ASSERT_FALSE(id.is_ok()) << reason;
    EXPECT_THAT(id.status().message(), HasSubstr(reason));
  }
  // A DNS name alone names no identity either.
  const KeyPair dns_only = resign(leaf, ca, [](X509* cert) {
    set_uris(cert, {});
    detail::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASN1_STRING_set(text, "localhost", 9);
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    sk_GENERAL_NAME_push(names.get(), name);
    X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT);
  });
  EXPECT_THAT(certificate_identity(dns_only.cert_pem).status().message(),
              HasSubstr("no URI subjectAltName"));
}

// ---------------------------------------------------------------- PEM files

TEST(PemFiles, WriteIsAtomicWithPrivateKeyMode) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair leaf = must_issue(ca, Identity::node(2));
  const fs::path cert = dir.path() / "node.crt";
  const fs::path key = dir.path() / "node.key";
  ASSERT_TRUE(write_pem_files(cert, key, leaf).is_ok());
  struct stat info {};
  ASSERT_EQ(::stat(key.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(cert.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
  auto back = read_pem_files(cert, key);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->cert_pem, leaf.cert_pem);
  EXPECT_EQ(back->key_pem, leaf.key_pem);

  // Overwriting replaces both, and no temporary file is left behind.
  const KeyPair next = must_issue(ca, Identity::node(2));
  ASSERT_TRUE(write_pem_files(cert, key, next).is_ok());
  EXPECT_EQ(read_pem_files(cert, key)->cert_pem, next.cert_pem);
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2);
}

TEST(PemFiles, WriteRefusesAMismatchedPairAndWritesNothing) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair a = must_issue(ca, Identity::node(1));
  const KeyPair b = must_issue(ca, Identity::node(2));
  const Status s = write_pem_files(dir.path() / "n.crt", dir.path() / "n.key",
                                   KeyPair{a.cert_pem, b.key_pem});
  EXPECT_THAT(s.message(), HasSubstr("n.key: private key does not match the certificate in"));
  EXPECT_FALSE(fs::exists(dir.path() / "n.key"));
  EXPECT_THAT(write_pem_files(dir.path() / "missing" / "n.crt", dir.path() / "missing" / "n.key",
                              a)
                  .message(),
              HasSubstr("missing/n.key: cannot create temporary file"));
}

TEST(PemFiles, ReadErrorsNameTheFile) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair a = must_issue(ca, Identity::node(1));
  const KeyPair b = must_issue(ca, Identity::node(2));
  const fs::path crt = dir.path() / "a.crt";
  const fs::path key = dir.path() / "a.key";
  ASSERT_TRUE(write_pem_files(crt, key, a).is_ok());

  EXPECT_THAT(read_pem_files(dir.path() / "nope.crt", key).status().message(),
              HasSubstr("nope.crt: cannot open: No such file or directory"));
  write_text(dir.path() / "bad.key", "-----BEGIN PRIVATE KEY-----\nnot base64!\n"
                                     "-----END PRIVATE KEY-----\n");
  EXPECT_THAT(read_pem_files(crt, dir.path() / "bad.key").status().message(),
              HasSubstr("bad.key: not a PEM private key"));
  write_text(dir.path() / "b.key", b.key_pem);
  EXPECT_THAT(read_pem_files(crt, dir.path() / "b.key").status().message(),
              HasSubstr("b.key: private key does not match the certificate in " + crt.string()));
  write_text(dir.path() / "empty.crt", "");
  EXPECT_THAT(read_pem_files(dir.path() / "empty.crt", key).status().message(),
              HasSubstr("empty.crt: not a PEM certificate"));
  // An encrypted key is refused instead of prompting for a passphrase on the terminal.
  auto plain = detail::parse_private_key(a.key_pem, "a.key");
  ASSERT_TRUE(plain.is_ok());
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), plain->get(), EVP_aes_256_cbc(),
                                     reinterpret_cast<const unsigned char*>("secret"), 6,
                                     nullptr, nullptr),
            1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  write_text(dir.path() / "enc.key", std::string(data, static_cast<std::size_t>(size)));
  EXPECT_THAT(read_pem_files(crt, dir.path() / "enc.key").status().message(),
              HasSubstr("enc.key: private key is encrypted"));
}

// ---------------------------------------------------------------- CRLs

TEST(JoinRequest, SignedForTheIdentityTheSignerChoosesOverTheRequestsKey) {
  auto ca = generate_ca("join-ca", 30);
  ASSERT_TRUE(ca.is_ok());
  auto request = make_request(Identity::node(5));
  ASSERT_TRUE(request.is_ok()) << request.status().message();
  // The requester asked as node 5; the signer decides it is node 6.
  auto cert = sign_request(*ca, request->csr_pem, Identity::node(6), {}, {"127.0.0.1"}, 30);
  ASSERT_TRUE(cert.is_ok()) << cert.status().message();
  auto id = certificate_identity(*cert);
  ASSERT_TRUE(id.is_ok());
  EXPECT_EQ(*id, Identity::node(6));
  EXPECT_TRUE(check_issued_by(*cert, ca->cert_pem).is_ok());
  // The certificate carries the request's key: the pair loads as a node's files.
  TempDir dir;
  ASSERT_TRUE(write_pem_files(dir.path() / "n.crt", dir.path() / "n.key",
                              KeyPair{*cert, request->key_pem}).is_ok());
  EXPECT_TRUE(read_pem_files(dir.path() / "n.crt", dir.path() / "n.key").is_ok());
}

TEST(JoinRequest, BadRequestsAreRefusedNamingTheCsr) {
  auto ca = generate_ca("join-ca", 30);
  ASSERT_TRUE(ca.is_ok());
  auto request = make_request(Identity::node(5));
  ASSERT_TRUE(request.is_ok());
  for (const std::string& bad : {std::string("garbage"), std::string(), std::string(20000, 'a')}) {
    auto r = sign_request(*ca, bad, Identity::node(5), {}, {}, 30);
    ASSERT_FALSE(r.is_ok());
    EXPECT_THAT(r.status().message(), HasSubstr("csr"));
  }
  // A request whose signature does not match its contents (a byte of the body changed).
  std::string tampered = request->csr_pem;
  const std::size_t at = tampered.find('\n') + 40;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  auto r = sign_request(*ca, tampered, Identity::node(5), {}, {}, 30);
  ASSERT_FALSE(r.is_ok());
  EXPECT_THAT(r.status().message(), HasSubstr("csr"));
}

TEST(JoinRequest, PinsAreStableAndDifferPerKey) {
  auto a = generate_ca("a", 30);
  auto b = generate_ca("b", 30);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  auto pa = public_key_pin(a->cert_pem);
  ASSERT_TRUE(pa.is_ok());
  EXPECT_EQ(pa->size(), 7u + 64u);
  EXPECT_EQ(pa->rfind("sha256:", 0), 0u);
  EXPECT_EQ(*pa, *public_key_pin(a->cert_pem));
  EXPECT_NE(*pa, *public_key_pin(b->cert_pem));
  // A second certificate behind the pinned one would be trusted too: refused.
  EXPECT_TRUE(single_certificate(a->cert_pem).is_ok());
  auto bundle = single_certificate(a->cert_pem + b->cert_pem);
  ASSERT_FALSE(bundle.is_ok());
  EXPECT_THAT(bundle.status().message(), HasSubstr("exactly one certificate, got 2"));
}

TEST(Crl, CertificateSerialHexIsOpensslsSpelling) {
  const KeyPair ca = must_ca();
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  const std::string serial = must_serial(leaf);
  EXPECT_EQ(serial.size(), 32u);  // 16 bytes, the first in 0x40..0x7f: no leading zero
  EXPECT_EQ(serial.find_first_not_of("0123456789ABCDEF"), std::string::npos) << serial;
  detail::X509Ptr cert = must_parse(leaf.cert_pem);
  BIGNUM* bn = nullptr;
  ASSERT_EQ(BN_hex2bn(&bn, serial.c_str()), 32);
  ASN1_INTEGER* back = BN_to_ASN1_INTEGER(bn, nullptr);
  EXPECT_EQ(ASN1_INTEGER_cmp(back, X509_get0_serialNumber(cert.get())), 0);
  ASN1_INTEGER_free(back);
  BN_free(bn);
  EXPECT_NE(serial, must_serial(must_issue(ca, Identity::node(1))));
  EXPECT_THAT(certificate_serial_hex("junk").status().message(),
              HasSubstr("not a PEM certificate"));
}

TEST(Crl, MakeCrlRoundTripListsTheSerials) {
  const KeyPair ca = must_ca();
  const std::string a = must_serial(must_issue(ca, Identity::node(1)));
  const std::string b = must_serial(must_issue(ca, Identity::node(2)));
  std::string b_lower = b;
  for (char& c : b_lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::int64_t before = static_cast<std::int64_t>(std::time(nullptr));
  const std::string pem = must_crl(ca, {a, b_lower, a, "00" + a}, 30);
  const std::int64_t after = static_cast<std::int64_t>(std::time(nullptr));

  auto entries = read_crl_entries(pem, ca.cert_pem);
  ASSERT_TRUE(entries.is_ok()) << entries.status().to_string();
  ASSERT_EQ(entries->size(), 2u);  // case, leading zeros and repeats merged
  EXPECT_EQ((*entries)[0].serial_hex, std::min(a, b));
  EXPECT_EQ((*entries)[1].serial_hex, std::max(a, b));
  for (const RevokedEntry& e : *entries) {
    EXPECT_GE(e.revoked_at_unix, before);
    EXPECT_LE(e.revoked_at_unix, after);
  }

  auto crls = detail::parse_crl_bundle(pem, "crl");
  ASSERT_TRUE(crls.is_ok());
  ASSERT_EQ(crls->size(), 1u);
  X509_CRL* crl = (*crls)[0].get();
  detail::X509Ptr ca_cert = must_parse(ca.cert_pem);
  EXPECT_EQ(X509_CRL_verify(crl, X509_get0_pubkey(ca_cert.get())), 1);
  EXPECT_EQ(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
  EXPECT_EQ(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_cert.get())), 0);
  EXPECT_GE(X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1), 0);
  EXPECT_GE(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1), 0);
  EXPECT_EQ(X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)), -1);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_CRL_get0_nextUpdate(crl)), 1);
  EXPECT_TRUE(days == 30 || (days == 29 && seconds > 86000)) << days << "d " << seconds << "s";

  // A CRL with no entries is valid too (what a CA publishes before its first revocation).
  auto empty = read_crl_entries(must_crl(ca, {}), ca.cert_pem);
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
}

TEST(Crl, RemakingKeepsEarlierRevocationDates) {
  const KeyPair ca = must_ca();
  const std::string a = must_serial(must_issue(ca, Identity::node(1)));
  const std::string b = must_serial(must_issue(ca, Identity::node(2)));
  auto crl = make_crl_from_entries(ca, {{a, 1'600'000'000}, {b, 1'700'000'000},
                                        {a, 1'650'000'000}}, 30);
  ASSERT_TRUE(crl.is_ok()) << crl.status().to_string();
  auto entries = read_crl_entries(*crl, ca.cert_pem);
  ASSERT_TRUE(entries.is_ok()) << entries.status().to_string();
  std::vector<RevokedEntry> expected = {{a, 1'600'000'000}, {b, 1'700'000'000}};
  if (b < a) expected = {{b, 1'700'000'000}, {a, 1'600'000'000}};
  EXPECT_EQ(*entries, expected);
}

TEST(Crl, RefusesBadInputNamingIt) {
  const KeyPair ca = must_ca();
  const KeyPair other_ca = must_ca("other CA");
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  const std::vector<std::pair<Result<std::string>, std::string>> cases = {
      {make_crl(ca, {"xyz"}, 30), "revoked serial \"xyz\": must be 1..40 hex digits"},
      {make_crl(ca, {""}, 30), "revoked serial \"\""},
      {make_crl(ca, {"-1"}, 30), "hex digits"},
      {make_crl(ca, {std::string(41, 'A')}, 30), "must be 1..40 hex digits"},
      {make_crl(ca, {"1"}, 0), "next_update_days: 0 is outside"},
      {make_crl(ca, {"1"}, kMaxValidityDays + 1), "next_update_days"},
      {make_crl(leaf, {"1"}, 30), "CA certificate: is not a CA"},
      {make_crl(KeyPair{ca.cert_pem, other_ca.key_pem}, {"1"}, 30),
       "CA key: private key does not match"},
  };
  for (const auto& [result, reason] : cases) {
    ASSERT_FALSE(result.is_ok()) << reason;
    EXPECT_THAT(result.status().message(), HasSubstr(reason));
  }
  const std::vector<std::string> too_many(kMaxCrlEntries + 1, "1");  // merged: only one
  EXPECT_TRUE(make_crl(ca, too_many, 30).is_ok());
  std::vector<std::string> distinct;
  for (std::size_t i = 1; i <= kMaxCrlEntries + 1; ++i) distinct.push_back(std::to_string(i));
  EXPECT_THAT(make_crl(ca, distinct, 30).status().message(), HasSubstr("at most 10000"));

  // Reading checks who signed it.
  EXPECT_THAT(read_crl_entries(must_crl(other_ca, {"1"}), ca.cert_pem, "x.crl").status().message(),
              HasSubstr("x.crl: CRL issued by O = anya-ha, CN = other CA is not signed by a CA"));
  EXPECT_THAT(read_crl_entries("junk", ca.cert_pem, "x.crl").status().message(),
              HasSubstr("x.crl: CRL 1 is not a PEM CRL"));
}

TEST(Crl, CheckIssuedBy) {
  const KeyPair ca = must_ca();
  const KeyPair other_ca = must_ca("other CA");
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  EXPECT_TRUE(check_issued_by(leaf.cert_pem, ca.cert_pem).is_ok());
  EXPECT_THAT(check_issued_by(leaf.cert_pem, other_ca.cert_pem).message(),
              HasSubstr("not issued by this CA (its issuer is O = anya-ha, CN = test CA)"));
  // Same name, other key: the signature decides.
  const KeyPair twin = must_ca();
  EXPECT_FALSE(check_issued_by(leaf.cert_pem, twin.cert_pem).is_ok());
}

TEST(Crl, WriteCrlFileIsAtomicAndReadable) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const fs::path file = dir.path() / "crl.pem";
  const std::string pem = must_crl(ca, {"ABC"});
  ASSERT_TRUE(write_crl_file(file, pem).is_ok());
  struct stat info {};
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
  auto back = read_pem_file(file);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, pem);
  EXPECT_THAT(write_crl_file(file, "junk").message(), HasSubstr("is not a PEM CRL"));
  EXPECT_EQ(*read_pem_file(file), pem);  // untouched
}

// ---------------------------------------------------------------- contexts

TEST(Context, ErrorsNameTheFile) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair other_ca = must_ca("other CA");
  const TlsFiles good = write_files(dir.path(), "node", ca, must_issue(ca, Identity::node(1)));
  ASSERT_TRUE(make_context(good, Side::server).is_ok());
  ASSERT_TRUE(make_context(good, Side::client).is_ok());
  const std::string d = dir.path().string() + "/";
  auto error_of = [](const TlsFiles& files, Side side) {
    auto ctx = make_context(files, side);
    EXPECT_FALSE(ctx.is_ok());
    return ctx.status().message();
  };

  TlsFiles missing = good;
  missing.cert = dir.path() / "absent.crt";
  EXPECT_THAT(error_of(missing, Side::server),
              HasSubstr(d + "absent.crt: cannot open: No such file or directory"));

  write_text(dir.path() / "other.key", must_issue(ca, Identity::node(1)).key_pem);
  TlsFiles wrong_key = good;
  wrong_key.key = dir.path() / "other.key";
  EXPECT_THAT(error_of(wrong_key, Side::server),
              HasSubstr(d + "other.key: private key does not match the certificate in " + d +
                        "node.crt"));

  fs::create_directory(dir.path() / "foreign");
  const TlsFiles foreign_files = write_files(dir.path() / "foreign", "node", other_ca,
                                             must_issue(other_ca, Identity::node(1)));
  TlsFiles foreign = good;
  foreign.cert = foreign_files.cert;
  foreign.key = foreign_files.key;
  const std::string foreign_error = error_of(foreign, Side::client);
  EXPECT_THAT(foreign_error, HasSubstr(foreign_files.cert.string() +
                                       ": does not chain to the CA in " + d + "ca.crt: " +
                                       "unable to get local issuer certificate"));

  write_text(dir.path() / "garbage.crt", "-----BEGIN CERTIFICATE-----\n@@@@\n"
                                         "-----END CERTIFICATE-----\n");
  TlsFiles malformed_cert = good;
  malformed_cert.cert = dir.path() / "garbage.crt";
  EXPECT_THAT(error_of(malformed_cert, Side::server),
              HasSubstr(d + "garbage.crt: not a PEM certificate"));
  TlsFiles malformed_ca = good;
  malformed_ca.ca_cert = dir.path() / "garbage.crt";
  EXPECT_THAT(error_of(malformed_ca, Side::server),
              HasSubstr(d + "garbage.crt: certificate 1 is not a PEM certificate"));
  write_text(dir.path() / "truncated.key", ca.key_pem.substr(0, ca.key_pem.size() / 2));
  TlsFiles malformed_key = good;
  malformed_key.key = dir.path() / "truncated.key";
  EXPECT_THAT(error_of(malformed_key, Side::server),
              HasSubstr(d + "truncated.key: not a PEM private key"));
}

TEST(Context, RefusesExpiredCertificatesAndWrongUsage) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair expired = resign(must_issue(ca, Identity::node(1)), ca, make_expired);
  const TlsFiles expired_files = write_files(dir.path(), "expired", ca, expired);
  auto ctx = make_context(expired_files, Side::server);
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_THAT(ctx.status().message(),
              HasSubstr(expired_files.cert.string() + ": certificate expired on "));

  // A client certificate has no serverAuth: it can dial but not listen.
  const TlsFiles client =
      write_files(dir.path(), "ops", ca, must_issue(ca, Identity::client("ops")));
  EXPECT_TRUE(make_context(client, Side::client).is_ok());
  auto as_server = make_context(client, Side::server);
  ASSERT_FALSE(as_server.is_ok());
  EXPECT_THAT(as_server.status().message(),
              HasSubstr(client.cert.string() + ": certificate cannot be used by a TLS server"));

  // A leaf in the CA file is not a CA.
  TlsFiles leaf_as_ca = client;
  leaf_as_ca.ca_cert = client.cert;
  EXPECT_THAT(make_context(leaf_as_ca, Side::client).status().message(),
              HasSubstr(client.cert.string() + ": is not a CA certificate"));

  // A certificate without an identity cannot start a node.
  const KeyPair anonymous = resign(must_issue(ca, Identity::node(1)), ca,
                                   [](X509* cert) { set_uris(cert, {}); });
  const TlsFiles anonymous_files = write_files(dir.path(), "anon", ca, anonymous);
  EXPECT_THAT(make_context(anonymous_files, Side::server).status().message(),
              HasSubstr(anonymous_files.cert.string() + ": certificate has no subjectAltName"));
}

TEST(Context, CrlFromAnotherCaIsRefusedNamingTheFile) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair other_ca = must_ca("other CA");
  const TlsFiles files = write_files_with_crl(dir.path(), "node", ca,
                                              must_issue(ca, Identity::node(1)),
                                              must_crl(other_ca, {"1"}));
  auto ctx = make_context(files, Side::server);
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_THAT(ctx.status().message(),
              HasSubstr(files.crl.string() + ": CRL issued by O = anya-ha, CN = other CA is not "
                        "signed by a CA in " + files.ca_cert.string()));
  // Same name as the cluster CA but another key: the signature is what counts.
  write_text(files.crl, must_crl(must_ca(), {"1"}));
  EXPECT_THAT(make_context(files, Side::client).status().message(),
              HasSubstr(files.crl.string() + ": CRL issued by O = anya-ha, CN = test CA is not"));
  write_text(files.crl, must_crl(ca, {"1"}));
  EXPECT_TRUE(make_context(files, Side::client).is_ok());
}

TEST(Context, ExpiredCrlIsRefused) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const TlsFiles files = write_files_with_crl(
      dir.path(), "node", ca, must_issue(ca, Identity::node(1)),
      resign_crl(must_crl(ca, {"1"}), ca, make_crl_expired));
  auto ctx = make_context(files, Side::server);
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_THAT(ctx.status().message(), HasSubstr(files.crl.string() + ": CRL expired on "));
}

TEST(Context, CrlFileMustCoverEveryCaAndParse) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair next_ca = must_ca("next CA");
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  const TlsFiles files = write_files_with_crl(dir.path(), "node", ca, leaf, must_crl(ca, {}));
  ASSERT_TRUE(make_context(files, Side::server).is_ok());
  // A CA rotation: two CAs, a CRL from only one of them.
  write_text(files.ca_cert, ca.cert_pem + next_ca.cert_pem);
  EXPECT_THAT(make_context(files, Side::server).status().message(),
              HasSubstr(files.crl.string() + ": has no CRL from the CA O = anya-ha, CN = next CA"));
  write_text(files.crl, must_crl(ca, {}) + must_crl(next_ca, {"1"}));
  EXPECT_TRUE(make_context(files, Side::server).is_ok());

  write_text(files.crl, "");
  EXPECT_THAT(make_context(files, Side::server).status().message(),
              HasSubstr(files.crl.string() + ": CRL file is empty"));
  write_text(files.crl,
             must_crl(ca, {}) + "-----BEGIN X509 CRL-----\n@@\n-----END X509 CRL-----\n");
  EXPECT_THAT(make_context(files, Side::server).status().message(),
              HasSubstr(files.crl.string() + ": CRL 2 is not a PEM CRL"));
  TlsFiles missing = files;
  missing.crl = dir.path() / "absent.crl";
  EXPECT_THAT(make_context(missing, Side::server).status().message(),
              HasSubstr("absent.crl: cannot open: No such file or directory"));
}

TEST(Context, OwnRevokedCertificateIsRefused) {
  TempDir dir;
  const KeyPair ca = must_ca();
  const KeyPair leaf = must_issue(ca, Identity::node(1));
  const TlsFiles files =
      write_files_with_crl(dir.path(), "node", ca, leaf, must_crl(ca, {must_serial(leaf)}));
  auto ctx = make_context(files, Side::client);
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_THAT(ctx.status().message(),
              HasSubstr(files.cert.string() + ": certificate revoked (serial " +
                        must_serial(leaf) + " is listed in the CRL)"));
}

// ---------------------------------------------------------------- handshakes

// One CA, node 3 listening, and the files the tests combine.
class Handshake : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = must_ca();
    node3_ = must_issue(ca_, Identity::node(3));
    node4_ = must_issue(ca_, Identity::node(4));
    server_ = must_context(write_files(dir_.path(), "node3", ca_, node3_), Side::server);
    ASSERT_NE(server_, nullptr);
  }

  TlsFiles files_for(const std::string& name, const KeyPair& leaf) {
    return write_files(dir_.path(), name, ca_, leaf);
  }

  TempDir dir_;
  KeyPair ca_, node3_, node4_;
  std::shared_ptr<asio::ssl::context> server_;
};

TEST_F(Handshake, TwoNodesOfOneCaSeeEachOthersIdentity) {
  auto client_ctx = must_context(files_for("node4", node4_), Side::client);
  ASSERT_NE(client_ctx, nullptr);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_FALSE(c.server_result.handshake_error) << c.server_result.failure;
  ASSERT_FALSE(c.client_result.handshake_error) << c.client_result.failure;
  EXPECT_TRUE(c.server_result.exchanged);
  EXPECT_TRUE(c.client_result.exchanged);
  EXPECT_EQ(c.client_byte, 'x');  // echoed by the server
  EXPECT_STREQ(SSL_get_version(c.server->native_handle()), "TLSv1.3");
  EXPECT_EQ(SSL_session_reused(c.client->native_handle()), 0);

  auto seen_by_server = peer_identity(c.server->native_handle());
  ASSERT_TRUE(seen_by_server.is_ok()) << seen_by_server.status().to_string();
  EXPECT_EQ(*seen_by_server, Identity::node(4));
  auto seen_by_client = peer_identity(c.client->native_handle());
  ASSERT_TRUE(seen_by_client.is_ok()) << seen_by_client.status().to_string();
  EXPECT_EQ(*seen_by_client, Identity::node(3));

  EXPECT_TRUE(expect_peer(c.server->native_handle(), Identity::node(4)).is_ok());
  EXPECT_TRUE(expect_peer(c.client->native_handle(), Identity::node(3)).is_ok());
  const Status mismatch = expect_peer(c.server->native_handle(), Identity::node(3));
  EXPECT_EQ(mismatch.message(), "peer certificate is for node 4, but it claims to be node 3");
  EXPECT_EQ(expect_peer(c.client->native_handle(), Identity::client("ops")).message(),
            "peer certificate is for node 3, but it claims to be client ops");
}

TEST_F(Handshake, ClientCertificateReachesANodeAsAClient) {
  auto client_ctx = must_context(files_for("ops", must_issue(ca_, Identity::client("ops"))),
                                 Side::client);
  ASSERT_NE(client_ctx, nullptr);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.client_result.exchanged) << c.client_result.failure;
  auto seen = peer_identity(c.server->native_handle());
  ASSERT_TRUE(seen.is_ok()) << seen.status().to_string();
  EXPECT_EQ(*seen, Identity::client("ops"));
}

TEST_F(Handshake, ServerFromAnotherCaIsRefusedByTheClient) {
  const KeyPair other_ca = must_ca("other CA");
  fs::create_directory(dir_.path() / "other");
  auto other_server = must_context(
      write_files(dir_.path() / "other", "node3", other_ca, must_issue(other_ca,
                                                                      Identity::node(3))),
      Side::server);
  auto client_ctx = must_context(files_for("node4", node4_), Side::client);
  ASSERT_NE(other_server, nullptr);
  ASSERT_NE(client_ctx, nullptr);
  Connection c;
  c.run(*other_server, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.client_result.handshake_error);
  EXPECT_EQ(c.client_result.failure,
            "certificate verify failed: unable to get local issuer certificate");
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_THAT(c.server_result.failure, HasSubstr("unknown ca"));
  EXPECT_THAT(c.server_result.failure, HasSubstr("does not trust the CA"));
  EXPECT_FALSE(peer_identity(c.client->native_handle()).is_ok());
}

TEST_F(Handshake, ClientWithoutCertificateIsRefused) {
  auto client_ctx = raw_client_context(ca_, nullptr, TLS1_3_VERSION);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_THAT(c.server_result.failure, HasSubstr("TLS error: peer did not return a certificate"));
  // TLS 1.3: the client's handshake completes; the refusal arrives on its first read.
  EXPECT_FALSE(c.client_result.exchanged);
  EXPECT_THAT(c.client_result.failure, HasSubstr("certificate required"));
}

TEST_F(Handshake, ExpiredClientCertificateIsRefused) {
  const KeyPair expired = resign(node4_, ca_, make_expired);
  auto client_ctx = raw_client_context(ca_, &expired, TLS1_3_VERSION);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_EQ(c.server_result.failure, "certificate verify failed: certificate has expired");
  EXPECT_FALSE(c.client_result.exchanged);
  EXPECT_THAT(c.client_result.failure, HasSubstr("certificate expired"));
  // The reason, not merely "the handshake has not completed".
  EXPECT_EQ(peer_identity(c.server->native_handle()).status().message(),
            "peer certificate did not verify: certificate has expired");
}

// A certificate for servers only (extendedKeyUsage serverAuth, no clientAuth) presented by a
// client: the server refuses it for its purpose.
TEST_F(Handshake, AServerOnlyCertificateUsedAsAClientIsRefused) {
  const KeyPair server_only = resign(node4_, ca_, [](X509* cert) {
    const int at = X509_get_ext_by_NID(cert, NID_ext_key_usage, -1);
    ASSERT_GE(at, 0);
    X509_EXTENSION_free(X509_delete_ext(cert, at));
    X509_EXTENSION* eku = X509V3_EXT_conf_nid(nullptr, nullptr, NID_ext_key_usage, "serverAuth");
    ASSERT_NE(eku, nullptr);
    X509_add_ext(cert, eku, -1);
    X509_EXTENSION_free(eku);
  });
  auto client_ctx = raw_client_context(ca_, &server_only, TLS1_3_VERSION);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_EQ(c.server_result.failure,
            "certificate verify failed: unsuitable certificate purpose");
  EXPECT_FALSE(c.client_result.exchanged);
}

TEST_F(Handshake, Tls12OnlyClientIsRefused) {
  auto client_ctx = raw_client_context(ca_, &node4_, TLS1_2_VERSION);
  Connection c;
  c.run(*server_, *client_ctx);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_THAT(c.server_result.failure, HasSubstr("TLS error: unsupported protocol"));
  ASSERT_TRUE(c.client_result.handshake_error);
  EXPECT_THAT(c.client_result.failure, HasSubstr("protocol version"));
  EXPECT_THAT(c.client_result.failure, HasSubstr("does not speak TLS 1.3"));
}

TEST_F(Handshake, RevokedClientCertificateIsRefusedByTheServer) {
  const std::string crl = must_crl(ca_, {must_serial(node4_)});
  auto strict_server = must_context(
      write_files_with_crl(dir_.path(), "node3-crl", ca_, node3_, crl), Side::server);
  auto revoked_client = must_context(files_for("node4", node4_), Side::client);
  ASSERT_NE(strict_server, nullptr);
  ASSERT_NE(revoked_client, nullptr);
  Connection c;
  c.run(*strict_server, *revoked_client);
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_EQ(c.server_result.failure,
            "certificate verify failed: certificate revoked (the peer's certificate is listed in "
            "our CRL; it needs a new certificate)");
  EXPECT_THAT(peer_identity(c.server->native_handle()).status().message(),
              HasSubstr("peer certificate did not verify: certificate revoked"));
  // TLS 1.3: the client learns it on its first read, with the alert's reason.
  EXPECT_FALSE(c.client_result.exchanged);
  EXPECT_THAT(c.client_result.failure, HasSubstr("certificate revoked"));
  EXPECT_THAT(c.client_result.failure, HasSubstr("the peer says our certificate is revoked"));

  // The same server still accepts a certificate that is not listed.
  auto other_client = must_context(files_for("node5", must_issue(ca_, Identity::node(5))),
                                   Side::client);
  Connection ok;
  ok.run(*strict_server, *other_client);
  ASSERT_TRUE(ok.finished);
  EXPECT_TRUE(ok.client_result.exchanged) << ok.client_result.failure;
  EXPECT_TRUE(ok.server_result.exchanged) << ok.server_result.failure;
}

TEST_F(Handshake, RevokedServerCertificateIsRefusedByTheClient) {
  const std::string crl = must_crl(ca_, {must_serial(node3_)});
  auto strict_client = must_context(
      write_files_with_crl(dir_.path(), "node4-crl", ca_, node4_, crl), Side::client);
  ASSERT_NE(strict_client, nullptr);
  Connection c;
  c.run(*server_, *strict_client);  // server_ is node 3, which does not know it is revoked
  ASSERT_TRUE(c.finished);
  ASSERT_TRUE(c.client_result.handshake_error);
  EXPECT_THAT(c.client_result.failure,
              HasSubstr("certificate verify failed: certificate revoked (the peer's certificate "
                        "is listed in our CRL"));
  ASSERT_TRUE(c.server_result.handshake_error);
  EXPECT_THAT(c.server_result.failure, HasSubstr("the peer says our certificate is revoked"));
  EXPECT_FALSE(c.server_result.exchanged);

  // The same client still reaches a server whose certificate is not listed.
  auto node5_server = must_context(files_for("node5", must_issue(ca_, Identity::node(5))),
                                   Side::server);
  Connection ok;
  ok.run(*node5_server, *strict_client);
  ASSERT_TRUE(ok.finished);
  EXPECT_TRUE(ok.client_result.exchanged) << ok.client_result.failure;
  auto seen = peer_identity(ok.client->native_handle());
  ASSERT_TRUE(seen.is_ok()) << seen.status().to_string();
  EXPECT_EQ(*seen, Identity::node(5));
}

TEST(DescribeHandshakeFailure, SocketErrorsWithoutSsl) {
  EXPECT_THAT(describe_handshake_failure(nullptr, asio::error::eof),
              HasSubstr("closed the connection during the handshake"));
  EXPECT_EQ(describe_handshake_failure(nullptr, asio::error::connection_refused),
            boost::system::error_code(asio::error::connection_refused).message());
  EXPECT_EQ(describe_handshake_failure(nullptr, {}), "no error");
}

// ---------------------------------------------------------------- reloader

// Node 3's files in a temporary directory, a reloader over them, and node 4 to talk to it.
class Reloader : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = must_ca();
    node3_ = must_issue(ca_, Identity::node(3));
    files_ = write_files(dir_.path(), "node3", ca_, node3_);
    fs::create_directory(dir_.path() / "peer");
    peer_client_ = must_context(write_files(dir_.path() / "peer", "node4", ca_,
                                            must_issue(ca_, Identity::node(4))),
                                Side::client);
    ASSERT_NE(peer_client_, nullptr);
  }

  // Replaces node 3's certificate and key in place, as an operator renewing them would.
  void replace_leaf(const KeyPair& leaf) {
    ASSERT_TRUE(write_pem_files(files_.cert, files_.key, leaf).is_ok());
  }

  // The identity and serial node 4 sees when it dials a server made from `server_ctx`.
  std::pair<Identity, std::string> seen_by_peer(asio::ssl::context& server_ctx) {
    Connection c;
    c.run(server_ctx, *peer_client_);
    EXPECT_TRUE(c.client_result.exchanged) << c.client_result.failure;
    auto id = peer_identity(c.client->native_handle());
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    X509* cert = SSL_get0_peer_certificate(c.client->native_handle());
    if (!id.is_ok() || cert == nullptr) return {Identity::client("none"), ""};
    return {*id, detail::serial_hex(X509_get0_serialNumber(cert))};
  }

  TempDir dir_;
  KeyPair ca_, node3_;
  TlsFiles files_;
  std::shared_ptr<asio::ssl::context> peer_client_;
};

TEST_F(Reloader, UnchangedFilesAreNotReloaded) {
  TlsReloader reloader(files_, 3);
  ASSERT_TRUE(reloader.load().is_ok());
  const auto server = reloader.server();
  const auto client = reloader.client();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(client, nullptr);
  EXPECT_NE(server, client);
  auto changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_FALSE(*changed);
  // Rewriting the same bytes (a new mtime) is not a change: the fingerprint is of the contents.
  replace_leaf(node3_);
  changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(reloader.server(), server);
  EXPECT_EQ(reloader.client(), client);
  EXPECT_EQ(reloader.reloads(), 0u);
  EXPECT_EQ(reloader.reload_failures(), 0u);
  EXPECT_THAT(reloader.describe(), HasSubstr("node 3 (anya-ha://node/3), serial " +
                                             must_serial(node3_) + ", expires 20"));
  EXPECT_THAT(reloader.describe(), HasSubstr("; CA file: 1 certificate; no CRL"));
  // A forced reload (SIGHUP) rebuilds all the same.
  auto forced = reloader.reload();
  ASSERT_TRUE(forced.is_ok());
  EXPECT_TRUE(*forced);
  EXPECT_NE(reloader.server(), server);
  EXPECT_EQ(reloader.reloads(), 1u);
}

TEST_F(Reloader, ChangedCertificateIsUsedByNewHandshakes) {
  TlsReloader reloader(files_);  // no node id: any identity may follow
  ASSERT_TRUE(reloader.load().is_ok());
  EXPECT_EQ(seen_by_peer(*reloader.server()).first, Identity::node(3));
  const KeyPair node5 = must_issue(ca_, Identity::node(5));
  replace_leaf(node5);
  auto changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(reloader.reloads(), 1u);
  const auto [id, serial] = seen_by_peer(*reloader.server());
  EXPECT_EQ(id, Identity::node(5));
  EXPECT_EQ(serial, must_serial(node5));
  EXPECT_THAT(reloader.describe(), HasSubstr("node 5 (anya-ha://node/5)"));
  changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok());
  EXPECT_FALSE(*changed);
}

TEST_F(Reloader, BrokenNewFileKeepsTheOldContexts) {
  TlsReloader reloader(files_, 3);
  ASSERT_TRUE(reloader.load().is_ok());
  const auto server = reloader.server();
  const std::string description = reloader.describe();
  // Half of a certificate, as a non-atomic copy leaves it mid-write.
  const KeyPair next = must_issue(ca_, Identity::node(3));
  write_text(files_.cert, next.cert_pem.substr(0, next.cert_pem.size() / 2));
  auto changed = reloader.reload_if_changed();
  ASSERT_FALSE(changed.is_ok());
  EXPECT_THAT(changed.status().message(), HasSubstr(files_.cert.string() +
                                                    ": not a PEM certificate"));
  EXPECT_EQ(reloader.server(), server);
  EXPECT_EQ(reloader.describe(), description);
  EXPECT_EQ(reloader.reload_failures(), 1u);
  EXPECT_EQ(seen_by_peer(*reloader.server()).second, must_serial(node3_));
  // The same broken bytes are reported once, not at every poll.
  changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(reloader.reload_failures(), 1u);
  // The whole certificate but the old key: refused too (the key comes in the next write).
  write_text(files_.cert, next.cert_pem);
  changed = reloader.reload_if_changed();
  ASSERT_FALSE(changed.is_ok());
  EXPECT_THAT(changed.status().message(), HasSubstr("private key does not match"));
  EXPECT_EQ(reloader.server(), server);
  EXPECT_EQ(reloader.reload_failures(), 2u);
  write_text(files_.key, next.key_pem);
  changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(seen_by_peer(*reloader.server()).second, must_serial(next));
  // A file that disappears is an error at every call, and changes nothing.
  fs::remove(files_.key);
  EXPECT_THAT(reloader.reload_if_changed().status().message(),
              HasSubstr(files_.key.string() + ": cannot open"));
  EXPECT_FALSE(reloader.reload().is_ok());
  EXPECT_EQ(reloader.reload_failures(), 4u);
  EXPECT_EQ(reloader.reloads(), 1u);
  EXPECT_EQ(seen_by_peer(*reloader.server()).second, must_serial(next));
}

TEST_F(Reloader, NodeIdMismatchIsRefusedNamingBothIds) {
  const std::string expected = "tls.cert: " + files_.cert.string() +
                               " names node 3, but this node runs as node 7; each node needs "
                               "its own certificate (anya-ha certs issue --node 7)";
  TlsReloader wrong(files_, 7);
  EXPECT_EQ(wrong.load().message(), expected);
  EXPECT_EQ(check_node_certificate(files_, 7).message(), expected);
  EXPECT_TRUE(check_node_certificate(files_, 3).is_ok());

  // After a good start, a reload to another node's certificate is refused the same way.
  TlsReloader right(files_, 3);
  ASSERT_TRUE(right.load().is_ok());
  const auto server = right.server();
  replace_leaf(must_issue(ca_, Identity::node(9)));
  auto changed = right.reload_if_changed();
  ASSERT_FALSE(changed.is_ok());
  EXPECT_THAT(changed.status().message(), HasSubstr("names node 9, but this node runs as node 3"));
  EXPECT_EQ(right.server(), server);
  // A client certificate names no node at all.
  replace_leaf(must_issue(ca_, Identity::client("ops")));
  EXPECT_THAT(right.reload().status().message(),
              HasSubstr("names client ops, but this node runs as node 3"));
}

TEST_F(Reloader, ExistingConnectionSurvivesAReload) {
  TlsReloader reloader(files_, 3);
  ASSERT_TRUE(reloader.load().is_ok());
  std::shared_ptr<asio::ssl::context> old_server = reloader.server();
  const std::weak_ptr<asio::ssl::context> old_weak = old_server;
  Connection old_link;
  old_link.run(*old_server, *peer_client_);
  ASSERT_TRUE(old_link.client_result.exchanged) << old_link.client_result.failure;
  old_server.reset();

  const KeyPair renewed = must_issue(ca_, Identity::node(3));
  replace_leaf(renewed);
  auto changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  ASSERT_TRUE(*changed);
  // Nobody holds the old asio context any more; its SSL_CTX lives on in the stream's SSL*.
  EXPECT_TRUE(old_weak.expired());

  EXPECT_TRUE(old_link.round_trip('y'));
  EXPECT_TRUE(old_link.round_trip('z'));
  X509* old_peer = SSL_get0_peer_certificate(old_link.client->native_handle());
  ASSERT_NE(old_peer, nullptr);
  EXPECT_EQ(detail::serial_hex(X509_get0_serialNumber(old_peer)), must_serial(node3_));

  const auto [id, serial] = seen_by_peer(*reloader.server());
  EXPECT_EQ(id, Identity::node(3));
  EXPECT_EQ(serial, must_serial(renewed));
  EXPECT_NE(serial, must_serial(node3_));
}

TEST_F(Reloader, NewCrlRefusesARevokedPeerAtItsNextConnection) {
  files_.crl = dir_.path() / "crl.pem";
  ASSERT_TRUE(write_crl_file(files_.crl, must_crl(ca_, {})).is_ok());
  TlsReloader reloader(files_, 3);
  ASSERT_TRUE(reloader.load().is_ok());
  EXPECT_THAT(reloader.describe(), HasSubstr("; CRL: 1 list, 0 revoked"));
  Connection before;
  before.run(*reloader.server(), *peer_client_);
  EXPECT_TRUE(before.server_result.exchanged) << before.server_result.failure;

  auto peer_pem = read_pem_file(dir_.path() / "peer" / "node4.crt");
  ASSERT_TRUE(peer_pem.is_ok());
  auto peer_serial = certificate_serial_hex(*peer_pem);
  ASSERT_TRUE(peer_serial.is_ok());
  ASSERT_TRUE(write_crl_file(files_.crl, must_crl(ca_, {*peer_serial})).is_ok());
  auto changed = reloader.reload_if_changed();
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  EXPECT_TRUE(*changed);
  EXPECT_THAT(reloader.describe(), HasSubstr("; CRL: 1 list, 1 revoked"));
  Connection after;
  after.run(*reloader.server(), *peer_client_);
  ASSERT_TRUE(after.server_result.handshake_error);
  EXPECT_THAT(after.server_result.failure, HasSubstr("certificate revoked"));
}

}  // namespace
}  // namespace anya::transport::tls
