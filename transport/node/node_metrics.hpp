// The node's Prometheus metrics (GET /metrics). Counters that other parts keep as plain totals
// (the engine's RaftStats, the peer links' PeerStats) are copied in at scrape time: the registry
// only ever adds the difference, so its counters stay monotonic.
#pragma once

#include "engine/host/host.hpp"
#include "transport/metrics/metrics.hpp"
#include "transport/peer/peer_links.hpp"

namespace anya::transport {

struct NodeMetrics {
  NodeMetrics();
  // Refreshes every gauge and copied counter from the engine's host and the peer links.
  void update(const engine::Host& host, const PeerLinks& peers);
  void update_chain(const engine::Raft& raft);

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
};

}  // namespace anya::transport
