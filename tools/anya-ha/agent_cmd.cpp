// anya-ha agent --config FILE: run one node until SIGTERM/SIGINT.
#include <iostream>

#include "tools/anya-ha/commands.hpp"
#include "transport/agent/agent.hpp"

namespace anya::tools {

Runner add_agent_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("agent", "Run one node");
  auto config_file = std::make_shared<std::string>();
  cmd->add_option("--config", *config_file, "The node's TOML configuration file")->required();
  return [config_file]() {
    Result<transport::NodeConfig> config = transport::load_node_config(*config_file);
    if (!config) {
      std::cerr << "anya-ha agent: " << config.status().message() << "\n";
      return kExitUsage;
    }
    transport::LogLevel level = transport::LogLevel::info;
    transport::parse_log_level(config->log_level, level);
    transport::Logger log(transport::stderr_sink(), level,
                          "node=" + std::to_string(config->node_id));
    transport::Agent agent(*config, log);
    if (Status s = agent.start(); !s) {
      log.error("cannot start: ", s.message());
      return s.code() == Errc::invalid_argument ? kExitUsage : kExitFailed;
    }
    return agent.run(/*handle_signals=*/true);
  };
}

}  // namespace anya::tools
