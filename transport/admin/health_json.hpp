// The "health" object of GET /v1/status: this node's verdict on the service it protects, its
// probes and its resources (transport/node/api.hpp HealthStatusView; docs/health.md). Values
// the node does not know are null. Text from probes (a command's stderr, an error message) is
// made valid UTF-8 first.
#pragma once

#include <boost/json.hpp>

#include "transport/node/api.hpp"

namespace anya::transport {

boost::json::object health_json(const HealthStatusView& health);

}  // namespace anya::transport
