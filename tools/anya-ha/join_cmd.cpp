// anya-ha join: secure bootstrap of a new node. It needs a one-time join token (an admin makes
// one with `anya-ha ctl token create --join --ttl 1h`) and the CA's pin (`anya-ha certs pin`),
// handed to it out of band. Then:
//   1. It fetches the CA certificate (GET /v1/ca, no credential, the server not yet verified)
//      and checks its public key against the pin; a mismatch stops here, before the token has
//      gone anywhere.
//   2. It makes its own key, and sends only a certificate request, with the token, over TLS
//      that now verifies the server against that CA (POST /v1/join). The cluster spends the
//      token and signs a certificate for this node id, which must not be a member yet.
//   3. It writes DIR/node.crt, DIR/node.key (0600) and DIR/ca.crt, refusing to replace
//      existing files unless --force; a refused join writes nothing.
// The node is then added with `anya-ha ctl members add ID ADDR` (or join_cluster()).
#include <boost/json.hpp>

#include <iostream>

#include "tools/anya-ha/commands.hpp"
#include "transport/admin/client.hpp"
#include "transport/tls/certs.hpp"

namespace anya::tools {

namespace tls = transport::tls;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr int kMaxLeaderHops = 3;

struct JoinArgs {
  std::string endpoint, token, pin, dir = ".";
  std::uint64_t node = 0;
  std::vector<std::string> ips, dns;
  bool force = false;
};

int fail(const std::string& message, int code) {
  std::cerr << "anya-ha join: " << message << "\n";
  return code;
}

// The CA certificate the endpoint serves, if its public key has the pin.
Result<std::string> fetch_pinned_ca(const JoinArgs& a) {
  transport::AdminClientOptions o;
  o.verify_server = false;
  Result<transport::HttpReply> r = transport::admin_request(o, a.endpoint, "GET", "/v1/ca");
  if (!r) return r.status();
  boost::system::error_code ec;
  const json::value v = json::parse(r->body, ec);
  const json::value* ca = (!ec && v.is_object()) ? v.as_object().if_contains("ca") : nullptr;
  if (r->status != 200 || ca == nullptr || !ca->is_string()) {
    return Status(Errc::io_error, a.endpoint + " did not serve a CA certificate: HTTP " +
                                      std::to_string(r->status));
  }
  // Exactly one certificate, re-encoded: a second one after the genuine CA would pass the pin
  // check and then be trusted for the join.
  Result<std::string> single = tls::single_certificate(std::string(ca->as_string()));
  if (!single) return Status(Errc::invalid_argument, a.endpoint + ": /v1/ca: " +
                                                         single.status().message());
  const std::string pem = *single;
  Result<std::string> pin = tls::public_key_pin(pem);
  if (!pin) return pin.status();
  if (*pin != a.pin) {
    return Status(Errc::invalid_argument,
                  "--ca-pin: the CA served by " + a.endpoint + " has pin " + *pin +
                      ", not the one given; not sending the token (wrong cluster, or someone "
                      "in between)");
  }
  return pem;
}

// POSTs the join, following not_leader hints to the leader (the token is spent there).
Result<transport::HttpReply> post_join(const JoinArgs& a, const fs::path& ca_file,
                                       const std::string& body) {
  transport::AdminClientOptions o;
  o.ca_cert = ca_file;
  o.token = a.token;
  std::string endpoint = a.endpoint;
  for (int hop = 0;; ++hop) {
    Result<transport::HttpReply> r =
        transport::admin_request(o, endpoint, "POST", "/v1/join", body);
    if (!r || r->status != 421 || hop == kMaxLeaderHops) return r;
    boost::system::error_code ec;
    const json::value v = json::parse(r->body, ec);
    const json::value* hint = (!ec && v.is_object()) ? v.as_object().if_contains("leader_admin")
                                                     : nullptr;
    if (hint == nullptr || !hint->is_string() || hint->as_string().empty()) return r;
    endpoint = std::string(hint->as_string());
  }
}

int run_join(const JoinArgs& a) {
  const fs::path dir(a.dir), ca_file = dir / "ca.crt", cert = dir / "node.crt",
                 key = dir / "node.key";
  for (const fs::path& f : {ca_file, cert, key}) {
    std::error_code ec;
    if (fs::exists(f, ec) && !a.force) {
      return fail(f.string() + " exists; pass --force to replace it", kExitUsage);
    }
  }
  const tls::Identity id = tls::Identity::node(a.node);
  if (Status s = tls::validate_identity(id); !s) return fail("--node: " + s.message(), kExitUsage);
  Result<std::string> ca = fetch_pinned_ca(a);
  if (!ca) return fail(ca.status().message(), kExitFailed);
  std::error_code ec;
  fs::create_directories(dir, ec);
  // The pinned CA verifies the server for the join itself; it becomes DIR/ca.crt only once the
  // join succeeded, so a refused join leaves nothing behind.
  const fs::path pinned_ca = dir / "ca.crt.joining";
  if (Status s = tls::write_certificate_file(pinned_ca, *ca); !s) {
    return fail(s.message(), kExitFailed);
  }
  Result<tls::CertificateRequest> request = tls::make_request(id);
  if (!request) return fail(request.status().message(), kExitFailed);
  json::array ips(a.ips.begin(), a.ips.end()), dns(a.dns.begin(), a.dns.end());
  const std::string body = json::serialize(json::object{
      {"node_id", a.node}, {"csr", request->csr_pem}, {"ip", ips}, {"dns", dns}});
  Result<transport::HttpReply> r = post_join(a, pinned_ca, body);
  fs::remove(pinned_ca, ec);
  if (!r) return fail(r.status().message(), kExitFailed);
  const json::value v = json::parse(r->body, ec);
  const json::value* issued = (!ec && v.is_object()) ? v.as_object().if_contains("certificate")
                                                     : nullptr;
  if (r->status != 201 || issued == nullptr || !issued->is_string()) {
    return fail("the cluster refused: HTTP " + std::to_string(r->status) + ": " + r->body,
                kExitFailed);
  }
  const tls::KeyPair pair{std::string(issued->as_string()), request->key_pem};
  Result<tls::Identity> got = tls::certificate_identity(pair.cert_pem);
  if (!got || !(*got == id) || !tls::check_issued_by(pair.cert_pem, *ca)) {
    return fail("the certificate received is not for node " + std::to_string(a.node) +
                    " from the pinned CA",
                kExitFailed);
  }
  if (Status s = tls::write_pem_files(cert, key, pair); !s) return fail(s.message(), kExitFailed);
  if (Status s = tls::write_certificate_file(ca_file, *ca); !s) {
    return fail(s.message(), kExitFailed);
  }
  std::cout << "wrote " << cert.string() << ", " << key.string() << " and " << ca_file.string()
            << " for node " << a.node << "\n";
  return kExitOk;
}

}  // namespace

Runner add_join_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("join", "Get a node certificate with a one-time join token");
  auto a = std::make_shared<JoinArgs>();
  cmd->add_option("--endpoint", a->endpoint, "A member's admin API, https://HOST:PORT")
      ->required();
  cmd->add_option("--token", a->token, "The join token (anya-ha ctl token create --join)")
      ->required();
  cmd->add_option("--ca-pin", a->pin, "sha256:HEX of the CA's public key (anya-ha certs pin)")
      ->required();
  cmd->add_option("--node", a->node, "This node's id (not a member yet)")->required();
  cmd->add_option("--dir", a->dir, "Where to write ca.crt, node.crt and node.key");
  cmd->add_option("--ip", a->ips, "IP address SAN (repeatable)");
  cmd->add_option("--dns", a->dns, "DNS name SAN (repeatable)");
  cmd->add_flag("--force", a->force, "Replace existing files");
  return [a]() { return run_join(*a); };
}

}  // namespace anya::tools
