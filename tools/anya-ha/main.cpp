// anya-ha: the node binary. `agent` runs one node, `dev` a local cluster, `ctl` talks to the
// admin API, `certs` makes the cluster CA and certificates. See docs/operations.md.
#include <iostream>

#include "tools/anya-ha/commands.hpp"

int main(int argc, char** argv) {
  using namespace anya::tools;
  CLI::App app{"anya-ha: high-availability cluster manager"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, Runner>> commands;
  auto add = [&](Runner (*fn)(CLI::App&)) {
    const std::size_t before = app.get_subcommands({}).size();
    Runner r = fn(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(r));
  };
  add(add_agent_command);
  add(add_dev_command);
  add(add_ctl_command);
  add(add_certs_command);
  add(add_audit_command);
  add(add_join_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "anya-ha: " << e.what() << "\n(run anya-ha --help)\n";
    return kExitUsage;
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return kExitUsage;
}
