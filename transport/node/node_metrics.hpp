// The node's Prometheus metrics (GET /metrics). Counters that other parts keep as plain totals
// (the engine's RaftStats, the peer links' PeerStats) are copied in at scrape time: the registry
// only ever adds the difference, so its counters stay monotonic.
#pragma once

#include "engine/host/host.hpp"
#include "transport/metrics/metrics.hpp"
#include "transport/node/api.hpp"
#include "transport/peer/peer_links.hpp"

namespace anya::transport {

struct NodeMetrics {
  NodeMetrics();
  // Refreshes every gauge and copied counter from the engine's host and the peer links.
  void update(const engine::Host& host, const PeerLinks& peers);
  void update_chain(const engine::Raft& raft);
  // The health of the protected service ([health]): probes and resources (node_health.cpp).
  void update_health(const HealthStatusView& health);
  // The failure detector's verdict on each member (engine/progress/liveness.hpp).
  void update_liveness(const engine::Raft& raft);

  metrics::Registry registry;
  metrics::Family<metrics::Gauge>* role;
  metrics::Gauge* term;
  metrics::Counter* leader_changes;
  metrics::Counter* elections_started;
  metrics::Counter* elections_won;
  metrics::Counter* pre_votes_started;
  metrics::Counter* fast_failovers;
  metrics::Counter* followers_lost_entries;
  metrics::Counter* read_rounds;
  metrics::Counter* lease_guarded;
  metrics::Gauge* commit_index;
  metrics::Gauge* applied_index;
  metrics::Gauge* has_quorum;
  metrics::Gauge* config_version;
  metrics::Family<metrics::Gauge>* peer_last_contact;
  metrics::Family<metrics::Gauge>* peer_rtt;
  metrics::Family<metrics::Gauge>* peer_connected;
  metrics::Family<metrics::Gauge>* member_liveness;          // by member, state: 1 for its state
  metrics::Family<metrics::Gauge>* member_heartbeat_rtt;     // by member: smoothed, seconds
  metrics::Family<metrics::Counter>* member_liveness_changes;  // by member: flapping
  metrics::Family<metrics::Counter>* messages_sent;
  metrics::Family<metrics::Counter>* messages_received;
  metrics::Family<metrics::Counter>* bytes_sent;
  metrics::Family<metrics::Counter>* bytes_received;
  metrics::Family<metrics::Counter>* messages_dropped;
  metrics::Family<metrics::Counter>* rejected;
  metrics::Family<metrics::Counter>* engine_refused;
  metrics::Family<metrics::Counter>* snapshots;
  metrics::Histogram* wal_fsync_seconds;
  // Chain-gated leadership. Heights are NaN while unknown; blocks_behind is the quorum height
  // less this node's (0 when ahead), NaN unless both are known.
  metrics::Gauge* chain_height;
  metrics::Gauge* chain_quorum_height;
  metrics::Gauge* chain_blocks_behind;
  metrics::Gauge* chain_behind;
  metrics::Counter* chain_probe_failures;  // counted by the node as results arrive
  metrics::Family<metrics::Counter>* gated_transfers;  // by reason: health, chain
  metrics::Counter* chain_votes_refused;
  // Health of the protected service. Probe families are by probe name; values the node does
  // not know (no result in the window, a resource the sampler could not read) are NaN.
  metrics::Gauge* healthy;                                 // 1 unless [health] says otherwise
  metrics::Counter* health_changes;                        // verdict changes, counted by the node
  metrics::Family<metrics::Gauge>* probe_up;               // 1 passing, 0 failing or unknown
  metrics::Family<metrics::Gauge>* probe_error_ratio;      // in the rolling window
  metrics::Family<metrics::Gauge>* probe_latency_ms;       // by probe and quantile (0.5, 0.99)
  metrics::Gauge* resource_cpu_percent;
  metrics::Gauge* resource_memory_percent;
  metrics::Gauge* resource_disk_free_bytes;
  metrics::Gauge* resource_disk_free_percent;
  metrics::Gauge* resource_open_fds;
  metrics::Gauge* resource_max_fds;
  metrics::Family<metrics::Gauge>* resource_limit;         // by limit key: the configured value
  metrics::Family<metrics::Gauge>* resource_exceeded;      // by limit key: 1 counts against it
};

}  // namespace anya::transport
