// The subcommands of the anya-ha binary. Each registers its options on a CLI11 app and returns
// the function that runs it; main.cpp parses and dispatches. Exit codes (DESIGN.md): 0 success,
// 1 a failed check or operation, 2 bad usage or bad configuration.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace anya::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

using Runner = std::function<int()>;

Runner add_agent_command(CLI::App& app);
Runner add_dev_command(CLI::App& app);
Runner add_ctl_command(CLI::App& app);
Runner add_certs_command(CLI::App& app);
Runner add_audit_command(CLI::App& app);
Runner add_join_command(CLI::App& app);

}  // namespace anya::tools

#include <filesystem>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "transport/tls/identity.hpp"

namespace anya::tools {

// DIR/ca.crt and DIR/ca.key: made if missing, left alone (and checked) if present.
Status ensure_ca(const std::filesystem::path& dir, const std::string& name);
// A leaf certificate signed by the CA in `ca_dir`, made only if `cert` does not exist yet.
Status ensure_leaf(const std::filesystem::path& ca_dir, const transport::tls::Identity& id,
                   const std::filesystem::path& cert, const std::filesystem::path& key,
                   const std::vector<std::string>& ips, const std::vector<std::string>& dns);

}  // namespace anya::tools
