// How each discovery method knows a peer's node id (docs/discovery.md). Identity is the node id
// that the peer's certificate names, never its address, so each method needs a rule that gives
// the id from what it sees:
// - DNS SRV: the target's first label ends in "-N": `node-3.cluster.example.` is node 3.
// - Kubernetes EndpointSlices: the endpoint's `hostname` (else `targetRef.name`) is a
//   StatefulSet pod name `NAME-ORDINAL`; its node id is ORDINAL + offset. The offset defaults to
//   1 because ordinals start at 0 and node ids at 1 (`anya-0` is node 1).
// - multicast: the announcement carries the id.
// A name that does not follow its rule is not proposed; the method reports it (its status names
// the name), since a peer whose id is unknown cannot be checked against its certificate anyway.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine::discovery {

// The number after the last '-' of `label` ("anya-12" -> 12): 1 to 18 decimal digits without a
// leading zero (except "0" itself), after a non-empty prefix of letters, digits and '-'.
std::optional<std::uint64_t> trailing_number(std::string_view label);

// "node-3.cluster.example." -> 3. Errc::invalid_argument naming the target otherwise.
Result<NodeId> node_id_from_srv_target(std::string_view target);

// "anya-3", offset 1 -> 4. Errc::invalid_argument naming the pod otherwise (also when the sum
// is 0 or above kMaxNodeId).
Result<NodeId> node_id_from_pod_name(std::string_view name, std::uint64_t offset);

}  // namespace anya::engine::discovery
