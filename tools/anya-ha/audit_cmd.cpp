// anya-ha audit verify|init-secret: checks an audit log's MAC chain offline (optionally against a
// head the cluster vouches for), and makes the cluster's audit secret.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>

#include "tools/anya-ha/commands.hpp"
#include "transport/audit/audit_log.hpp"

namespace anya::tools {

namespace audit = transport;
namespace fs = std::filesystem;

namespace {

struct AuditArgs {
  std::string file, secret_file, head_mac;
  std::uint64_t head_seq = 0;
  CLI::Option* head_mac_opt = nullptr;
  CLI::Option* head_seq_opt = nullptr;
};

// --head-mac as the verifier wants it (lower case), or nullopt when it is not 64 hex digits.
std::optional<std::string> normalized_mac(std::string hex) {
  if (hex.size() != audit::kAuditMacHexChars) return std::nullopt;
  for (char& c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return hex;
}

int run_verify(const AuditArgs& a) {
  constexpr const char* who = "anya-ha audit verify: ";
  std::error_code ec;
  if (!fs::is_regular_file(a.file, ec)) {
    std::cerr << who << "FILE " << a.file << ": not a file (or it cannot be read)\n";
    return kExitUsage;
  }
  Result<std::string> secret = audit::load_audit_secret(a.secret_file);
  if (!secret) {
    std::cerr << who << "--secret-file: " << secret.status().message() << "\n";
    return kExitUsage;
  }
  std::optional<std::string> head_mac;
  if (a.head_mac_opt->count() > 0) {
    head_mac = normalized_mac(a.head_mac);
    if (!head_mac) {
      std::cerr << who << "--head-mac: want " << audit::kAuditMacHexChars << " hex digits\n";
      return kExitUsage;
    }
  }
  std::optional<std::uint64_t> head_seq;
  if (a.head_seq_opt->count() > 0) head_seq = a.head_seq;
  const audit::VerifyReport r = audit::verify_audit_file(a.file, *secret, head_mac, head_seq);
  if (!r.ok) {
    std::cerr << who << a.file << ": " << r.problem << "\n";
    return kExitFailed;
  }
  std::cout << "ok: " << r.records << " records, head seq " << r.head_seq << " mac "
            << r.head_mac_hex << "\n";
  return kExitOk;
}

int run_init_secret(const AuditArgs& a) {
  constexpr const char* who = "anya-ha audit init-secret: ";
  if (Status s = audit::create_audit_secret(a.file); !s) {
    std::cerr << who << s.message() << "\n";
    return s.code() == Errc::invalid_argument ? kExitUsage : kExitFailed;
  }
  std::cout << "wrote " << a.file << " (" << audit::kMinAuditSecretBytes
            << " random bytes as hex, mode 0600); give every node the same secret\n";
  return kExitOk;
}

}  // namespace

Runner add_audit_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("audit", "Verify an audit log; make the audit secret");
  cmd->require_subcommand(1);
  auto a = std::make_shared<AuditArgs>();
  CLI::App* verify = cmd->add_subcommand("verify", "Check an audit log's MAC chain");
  verify->add_option("file", a->file, "The audit log (JSON Lines)")->required();
  verify->add_option("--secret-file", a->secret_file, "The cluster's audit secret")->required();
  a->head_mac_opt =
      verify->add_option("--head-mac", a->head_mac, "The head mac the cluster recorded (hex)");
  a->head_seq_opt =
      verify->add_option("--head-seq", a->head_seq, "The head seq the cluster recorded");
  CLI::App* init = cmd->add_subcommand("init-secret", "Make a new audit secret file (0600)");
  init->add_option("file", a->file, "Where to write it (must not exist)")->required();
  return [a, verify, init]() {
    if (verify->parsed()) return run_verify(*a);
    if (init->parsed()) return run_init_secret(*a);
    return kExitUsage;
  };
}

}  // namespace anya::tools
