// The catalogue of named scenarios: fixed shapes of trouble, each still driven by the seed for
// everything it does not script. `anya-sim scenarios` lists them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/options.hpp"

namespace anya::sim {

struct ScenarioInfo {
  std::string name;
  std::string description;
};

const std::vector<ScenarioInfo>& scenario_catalogue();

// Options for `name` (or "swarm") with this seed; `nodes` 0 keeps the scenario's default.
// nullopt if the name is unknown.
std::optional<SimOptions> scenario_options(const std::string& name, std::uint64_t seed,
                                           std::uint32_t nodes);

}  // namespace anya::sim
