// anya-ha certs init|issue|revoke: the cluster CA, the certificates it signs, and the CRL that
// withdraws them (OpenSSL API, in process).
//
// `init` and `issue` never replace an existing file unless --force is given: a new CA key makes
// every certificate of the cluster untrusted, and a new node key breaks a running node's next
// restart. `anya-ha dev` goes through ensure_ca/ensure_leaf instead, which reuse what exists.
#include <algorithm>
#include <ctime>
#include <iostream>
#include <utility>

#include "tools/anya-ha/commands.hpp"
#include "transport/tls/certs.hpp"

namespace anya::tools {

namespace tls = transport::tls;
namespace fs = std::filesystem;

namespace {
constexpr int kCaDays = 3650;
constexpr int kLeafDays = 825;
// A CRL's nextUpdate. When it passes, nodes refuse every peer (OpenSSL treats an expired CRL as
// a verification failure), so it is as long as a certificate issued today; `certs revoke`
// re-signs the list, which is also how it is renewed.
constexpr int kCrlDays = kLeafDays;

// Makes a new CA in `dir`, replacing any there.
Status make_ca(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return {Errc::io_error, dir.string() + ": cannot create: " + ec.message()};
  Result<tls::KeyPair> ca = tls::generate_ca("anya-ha CA " + name, kCaDays);
  if (!ca) return ca.status();
  return tls::write_pem_files(dir / "ca.crt", dir / "ca.key", *ca);
}

// The first of `files` that exists, or an empty path.
fs::path first_existing(std::initializer_list<fs::path> files) {
  for (const fs::path& file : files) {
    std::error_code ec;
    if (fs::exists(file, ec)) return file;
  }
  return {};
}

}  // namespace

Status ensure_ca(const fs::path& dir, const std::string& name) {
  const fs::path cert = dir / "ca.crt", key = dir / "ca.key";
  std::error_code ec;
  if (fs::exists(cert, ec)) return tls::read_pem_files(cert, key).status();
  return make_ca(dir, name);
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

namespace {

struct CertsArgs {
  std::string dir = ".", name = "anya-ha", ca_dir = ".", out, client, cert, crl;
  std::uint64_t node = 0;
  std::vector<std::string> ips, dns;
  int days = kLeafDays;
  int crl_days = kCrlDays;
  bool force = false;
};

int fail(const char* command, const Status& status, int code) {
  std::cerr << "anya-ha certs " << command << ": " << status.message() << "\n";
  return code;
}

// Bad input (a bad --days, a serial that does not parse) is a usage error; the rest failed.
int usage_or_failure(Errc code) {
  return code == Errc::invalid_argument ? kExitUsage : kExitFailed;
}

int run_init(const CertsArgs& a) {
  const fs::path dir(a.dir);
  const fs::path existing = first_existing({dir / "ca.crt", dir / "ca.key"});
  if (!existing.empty() && !a.force) {
    std::cerr << "anya-ha certs init: " << existing.string()
              << " exists; pass --force to replace the CA (every certificate it signed stops "
                 "being trusted)\n";
    return kExitUsage;
  }
  if (Status s = make_ca(dir, a.name); !s) return fail("init", s, kExitFailed);
  std::cout << (existing.empty() ? "wrote " : "replaced ") << (dir / "ca.crt").string()
            << " and " << (dir / "ca.key").string() << "\n";
  Result<std::string> ca = tls::read_pem_file(dir / "ca.crt");
  Result<std::string> pin = ca ? tls::public_key_pin(*ca) : Result<std::string>(ca.status());
  if (pin) std::cout << "CA pin (for anya-ha join --ca-pin): " << *pin << "\n";
  return kExitOk;
}

int run_issue(const CertsArgs& a) {
  if ((a.node == 0) == a.client.empty()) {
    std::cerr << "anya-ha certs issue: give exactly one of --node ID or --client NAME\n";
    return kExitUsage;
  }
  const tls::Identity id =
      a.node != 0 ? tls::Identity::node(a.node) : tls::Identity::client(a.client);
  if (Status s = tls::validate_identity(id); !s) return fail("issue", s, kExitUsage);
  const fs::path cert = a.out + ".crt", key = a.out + ".key";
  if (const fs::path existing = first_existing({cert, key}); !existing.empty() && !a.force) {
    std::cerr << "anya-ha certs issue: " << existing.string()
              << " exists; pass --force to replace it\n";
    return kExitUsage;
  }
  Result<tls::KeyPair> ca =
      tls::read_pem_files(fs::path(a.ca_dir) / "ca.crt", fs::path(a.ca_dir) / "ca.key");
  if (!ca) return fail("issue", ca.status(), kExitFailed);
  Result<tls::KeyPair> leaf = tls::issue(*ca, id, a.dns, a.ips, a.days);
  if (!leaf) return fail("issue", leaf.status(), usage_or_failure(leaf.status().code()));
  if (Status s = tls::write_pem_files(cert, key, *leaf); !s) return fail("issue", s, kExitFailed);
  std::cout << "wrote " << cert.string() << " and " << key.string() << " for " << id.to_string()
            << "\n";
  return kExitOk;
}

// The entries already in `crl_file` (none if it does not exist), checked against the CA.
Result<std::vector<tls::RevokedEntry>> existing_entries(const fs::path& crl_file,
                                                        const tls::KeyPair& ca) {
  std::error_code ec;
  if (!fs::exists(crl_file, ec)) return std::vector<tls::RevokedEntry>{};
  Result<std::string> pem = tls::read_pem_file(crl_file);
  if (!pem) return pem.status();
  return tls::read_crl_entries(*pem, ca.cert_pem, crl_file.string());
}

// The certificate to revoke: a leaf of this CA (it names an identity, which the CA itself does
// not, and the CA signed it). Its identity and serial.
Result<std::pair<tls::Identity, std::string>> revocable(const std::string& cert_file,
                                                        const tls::KeyPair& ca,
                                                        const fs::path& ca_file) {
  Result<std::string> pem = tls::read_pem_file(cert_file);
  if (!pem) return pem.status();
  Result<tls::Identity> id = tls::certificate_identity(*pem);
  if (!id) {
    return Status{Errc::invalid_argument, cert_file + ": " + id.status().message() +
                                              " (only node and client certificates are revoked)"};
  }
  if (Status s = tls::check_issued_by(*pem, ca.cert_pem); !s) {
    return Status{Errc::invalid_argument,
                  cert_file + ": " + s.message() + "; the CA is " + ca_file.string()};
  }
  Result<std::string> serial = tls::certificate_serial_hex(*pem);
  if (!serial) return serial.status();
  return std::pair{std::move(*id), std::move(*serial)};
}

int run_revoke(const CertsArgs& a) {
  const fs::path dir(a.dir);
  const fs::path crl_file = a.crl.empty() ? dir / "crl.pem" : fs::path(a.crl);
  Result<tls::KeyPair> ca = tls::read_pem_files(dir / "ca.crt", dir / "ca.key");
  if (!ca) return fail("revoke", ca.status(), kExitFailed);
  auto entries = existing_entries(crl_file, *ca);
  if (!entries) {
    const std::string ca_file = (dir / "ca.crt").string();
    return fail("revoke", {Errc::io_error, entries.status().message() + "; the CA is " + ca_file},
                kExitFailed);
  }
  std::string done = entries->empty() ? "made an empty CRL" : "renewed the CRL";
  if (!a.cert.empty()) {
    auto target = revocable(a.cert, *ca, dir / "ca.crt");
    if (!target) return fail("revoke", target.status(), usage_or_failure(target.status().code()));
    const tls::Identity& id = target->first;
    const std::string& serial = target->second;
    const bool already = std::any_of(entries->begin(), entries->end(),
                                     [&](const auto& e) { return e.serial_hex == serial; });
    done = (already ? "already revoked: " : "revoked ") + id.describe() + " (" +
           id.to_string() + "), serial " + serial;
    if (!already) entries->push_back({serial, static_cast<std::int64_t>(std::time(nullptr))});
  }
  Result<std::string> crl = tls::make_crl_from_entries(*ca, *entries, a.crl_days);
  if (!crl) return fail("revoke", crl.status(), usage_or_failure(crl.status().code()));
  if (Status s = tls::write_crl_file(crl_file, *crl); !s) return fail("revoke", s, kExitFailed);
  std::cout << done << "\nwrote " << crl_file.string() << ": " << entries->size()
            << " revoked, next update in " << a.crl_days
            << " days; reload the nodes (SIGHUP) to apply\n";
  return kExitOk;
}

}  // namespace

Runner add_certs_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("certs", "Make the cluster CA and certificates");
  cmd->require_subcommand(1);
  auto a = std::make_shared<CertsArgs>();
  CLI::App* init = cmd->add_subcommand("init", "Make DIR/ca.crt and DIR/ca.key");
  init->add_option("--dir", a->dir, "Where to write the CA");
  init->add_option("--name", a->name, "The cluster's name, in the CA's common name");
  init->add_flag("--force", a->force, "Replace an existing CA");
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
  issue->add_flag("--force", a->force, "Replace existing PREFIX.crt and PREFIX.key");
  CLI::App* revoke =
      cmd->add_subcommand("revoke", "Add a certificate to the CRL and re-sign it (or renew it)");
  revoke->add_option("--dir", a->dir, "Folder holding ca.crt and ca.key");
  revoke->add_option("--cert", a->cert,
                     "The certificate to revoke (PEM); without it the CRL is only re-signed, "
                     "which renews its nextUpdate (or makes an empty one)");
  revoke->add_option("--crl", a->crl, "The CRL file to update (default DIR/crl.pem)");
  revoke->add_option("--days", a->crl_days, "Days until the CRL's nextUpdate");
  CLI::App* pin = cmd->add_subcommand("pin", "Print the CA's pin for anya-ha join --ca-pin");
  pin->add_option("--ca", a->cert, "The CA certificate (default DIR/ca.crt)");
  pin->add_option("--dir", a->dir, "Folder holding ca.crt");
  return [a, init, issue, revoke, pin]() {
    if (pin->parsed()) {
      const fs::path file = a->cert.empty() ? fs::path(a->dir) / "ca.crt" : fs::path(a->cert);
      Result<std::string> ca = tls::read_pem_file(file);
      Result<std::string> p = ca ? tls::public_key_pin(*ca) : Result<std::string>(ca.status());
      if (!p) return fail("pin", p.status(), usage_or_failure(p.status().code()));
      std::cout << *p << "\n";
      return kExitOk;
    }
    if (init->parsed()) return run_init(*a);
    if (issue->parsed()) return run_issue(*a);
    if (revoke->parsed()) return run_revoke(*a);
    return kExitUsage;
  };
}

}  // namespace anya::tools
