// The Kubernetes discovery.k8s.io/v1 EndpointSlice JSON that discovery reads (an
// EndpointSliceList, a watch event, a Status error body), and the peers it proposes from them.
// Pure: text in, data out, so it is unit-tested on the API's real shapes.
//
// Which endpoints become peers (docs/discovery.md):
// - slices whose addressType is "IPv4" (the peer links speak IPv4 only; others are skipped);
// - endpoints whose conditions.ready is not false (the API says an absent condition means
//   unknown and should be read as ready); not-ready endpoints are never proposed;
// - the node id from the endpoint's `hostname`, else its `targetRef.name` (a StatefulSet pod
//   name NAME-ORDINAL), plus the offset (engine/discovery/names.hpp);
// - the address is the endpoint's first address, the port the slice's port named port_name
//   (or its only port when port_name is empty).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/discovery/discovered_peers.hpp"

namespace anya::transport::discovery {

inline constexpr std::size_t kMaxApiBodyBytes = 8u << 20;   // a list of many slices
inline constexpr std::size_t kMaxSlices = 1024;
inline constexpr std::size_t kMaxEndpointsPerSlice = 1000;  // the API's own bound
inline constexpr std::size_t kMaxWatchLineBytes = 1u << 20; // one event

struct SliceEndpoint {
  std::string pod;              // hostname, else targetRef.name; may be empty
  std::string address;          // first of addresses; may be empty
  bool ready = true;
};

struct SlicePort {
  std::string name;
  std::uint16_t port = 0;
};

struct Slice {
  std::string name;
  std::string address_type;
  std::vector<SliceEndpoint> endpoints;
  std::vector<SlicePort> ports;
};

struct SliceList {
  std::string resource_version;  // of the list, to watch from
  std::vector<Slice> items;
};

struct WatchEvent {
  std::string type;              // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  std::string resource_version;  // of the object (not for ERROR)
  std::optional<Slice> slice;    // ADDED, MODIFIED, DELETED
  int error_code = 0;            // ERROR: the Status's code (410: the version is gone)
  std::string error_message;     // ERROR: the Status's message
};

// Errc::malformed naming what was wrong ("items[2].endpoints[0].addresses: expected a list").
Result<SliceList> parse_slice_list(std::string_view json);
Result<WatchEvent> parse_watch_event(std::string_view json);
// The `message` of an API Status body, bounded; empty when the body is not one.
std::string status_message(std::string_view json);

struct SliceProposals {
  std::vector<engine::discovery::Proposal> peers;
  std::vector<std::string> skipped;  // endpoints left out that an operator may want to know of
};

// Errc::invalid_argument when a slice has no usable port (none named port_name, or several
// and port_name is empty): the configuration is wrong for every endpoint of it.
Result<SliceProposals> proposals_from(const std::map<std::string, Slice>& slices,
                                      const std::string& port_name,
                                      std::uint64_t node_id_offset);

}  // namespace anya::transport::discovery
