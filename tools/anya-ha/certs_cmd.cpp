// anya-ha certs init|issue: the cluster CA and the certificates it signs (OpenSSL API, in process).
#include <iostream>

#include "tools/anya-ha/commands.hpp"
#include "transport/tls/certs.hpp"

namespace anya::tools {

namespace tls = transport::tls;
namespace fs = std::filesystem;

namespace {
constexpr int kCaDays = 3650;
constexpr int kLeafDays = 825;
}  // namespace

Status ensure_ca(const fs::path& dir, const std::string& name) {
  const fs::path cert = dir / "ca.crt", key = dir / "ca.key";
  std::error_code ec;
  if (fs::exists(cert, ec)) return tls::read_pem_files(cert, key).status();
  fs::create_directories(dir, ec);
  if (ec) return {Errc::io_error, dir.string() + ": cannot create: " + ec.message()};
  Result<tls::KeyPair> ca = tls::generate_ca("anya-ha CA " + name, kCaDays);
  if (!ca) return ca.status();
  return tls::write_pem_files(cert, key, *ca);
}

Status ensure_leaf(const fs::path& ca_dir, const tls::Identity& id, const fs::path& cert,
                   const fs::path& key, const std::vector<std::string>& ips,
                   const std::vector<std::string>& dns) {
  std::error_code ec;
  if (fs::exists(cert, ec)) return {};
  Result<tls::KeyPair> ca = tls::read_pem_files(ca_dir / "ca.crt", ca_dir / "ca.key");
  if (!ca) return ca.status();
  Result<tls::KeyPair> leaf = tls::issue(*ca, id, dns, ips, kLeafDays);
  if (!leaf) return leaf.status();
  fs::create_directories(cert.parent_path(), ec);
  return tls::write_pem_files(cert, key, *leaf);
}

Runner add_certs_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("certs", "Make the cluster CA and certificates");
  cmd->require_subcommand(1);
  struct Args {
    std::string dir = ".", name = "anya-ha", ca_dir = ".", out, client;
    std::uint64_t node = 0;
    std::vector<std::string> ips, dns;
    int days = kLeafDays;
  };
  auto a = std::make_shared<Args>();
  CLI::App* init = cmd->add_subcommand("init", "Make DIR/ca.crt and DIR/ca.key");
  init->add_option("--dir", a->dir, "Where to write the CA");
  init->add_option("--name", a->name, "The cluster's name, in the CA's common name");
  CLI::App* issue = cmd->add_subcommand("issue", "Issue a node or client certificate");
  issue->add_option("--ca-dir", a->ca_dir, "Folder holding ca.crt and ca.key");
  auto* node_opt = issue->add_option("--node", a->node, "Node id (anya-ha://node/ID)");
  auto* client_opt = issue->add_option("--client", a->client, "Client name");
  node_opt->excludes(client_opt);
  issue->add_option("--out", a->out, "Output prefix: writes PREFIX.crt and PREFIX.key")
      ->required();
  issue->add_option("--ip", a->ips, "IP address SAN (repeatable)");
  issue->add_option("--dns", a->dns, "DNS name SAN (repeatable)");
  issue->add_option("--days", a->days, "Validity in days");
  return [a, init, issue]() {
    if (init->parsed()) {
      const fs::path cert = fs::path(a->dir) / "ca.crt";
      std::error_code ec;
      if (fs::exists(cert, ec)) {
        std::cerr << "anya-ha certs init: " << cert.string()
                  << " exists; remove it first to make a new CA\n";
        return kExitFailed;
      }
      if (Status s = ensure_ca(a->dir, a->name); !s) {
        std::cerr << "anya-ha certs init: " << s.message() << "\n";
        return kExitFailed;
      }
      std::cout << "wrote " << cert.string() << " and " << (fs::path(a->dir) / "ca.key").string()
                << "\n";
      return kExitOk;
    }
    if (issue->parsed()) {
      if ((a->node == 0) == a->client.empty()) {
        std::cerr << "anya-ha certs issue: give exactly one of --node ID or --client NAME\n";
        return kExitUsage;
      }
      const tls::Identity id =
          a->node != 0 ? tls::Identity::node(a->node) : tls::Identity::client(a->client);
      if (Status s = tls::validate_identity(id); !s) {
        std::cerr << "anya-ha certs issue: " << s.message() << "\n";
        return kExitUsage;
      }
      Result<tls::KeyPair> ca =
          tls::read_pem_files(fs::path(a->ca_dir) / "ca.crt", fs::path(a->ca_dir) / "ca.key");
      if (!ca) {
        std::cerr << "anya-ha certs issue: " << ca.status().message() << "\n";
        return kExitFailed;
      }
      Result<tls::KeyPair> leaf = tls::issue(*ca, id, a->dns, a->ips, a->days);
      if (!leaf) {
        std::cerr << "anya-ha certs issue: " << leaf.status().message() << "\n";
        return leaf.status().code() == Errc::invalid_argument ? kExitUsage : kExitFailed;
      }
      if (Status s = tls::write_pem_files(a->out + ".crt", a->out + ".key", *leaf); !s) {
        std::cerr << "anya-ha certs issue: " << s.message() << "\n";
        return kExitFailed;
      }
      std::cout << "wrote " << a->out << ".crt and " << a->out << ".key for " << id.to_string()
                << "\n";
      return kExitOk;
    }
    return kExitUsage;
  };
}

}  // namespace anya::tools
