#include "transport/node/node_metrics.hpp"

#include <chrono>
#include <limits>

namespace anya::transport {

namespace {
// Adds to `counter` what `total` grew by since the last copy.
void copy_total(metrics::Counter& counter, std::uint64_t total) {
  if (total > counter.whole()) counter.inc(total - counter.whole());
}
std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

// The health of the protected service ([health], docs/health.md).
void register_health_metrics(NodeMetrics& m) {
  auto& r = m.registry;
  m.healthy = &r.gauge("anya_healthy", "1 while this node's health verdict on the service it "
                                       "protects is healthy (always 1 without [health])");
  m.health_changes = &r.counter("anya_health_changes_total",
                                "Times this node's health verdict changed");
  m.probe_up = &r.gauge_family("anya_probe_up", "1 while the probe is passing, 0 while it is "
                                                "failing or has no result yet",
                               {"probe"});
  m.probe_error_ratio = &r.gauge_family(
      "anya_probe_error_ratio", "Failed share of the probe's results in the rolling window "
                                "(NaN without results)",
      {"probe"});
  m.probe_latency_ms = &r.gauge_family(
      "anya_probe_latency_ms", "Response time of the probe in the rolling window, failures "
                               "included (NaN without results)",
      {"probe", "quantile"});
  m.resource_cpu_percent = &r.gauge("anya_resource_cpu_percent",
                                    "Busy time of the whole machine over the last sampling "
                                    "interval (NaN: unknown)");
  m.resource_memory_percent = &r.gauge("anya_resource_memory_percent",
                                       "Memory in use: MemTotal less MemAvailable (NaN: unknown)");
  m.resource_disk_free_bytes = &r.gauge("anya_resource_disk_free_bytes",
                                        "Space left for unprivileged writes on the data "
                                        "directory's file system (NaN: unknown)");
  m.resource_disk_free_percent = &r.gauge("anya_resource_disk_free_percent",
                                          "The same, in percent of the file system");
  m.resource_open_fds = &r.gauge("anya_resource_open_fds", "File descriptors this process has "
                                                           "open (NaN: unknown)");
  m.resource_max_fds = &r.gauge("anya_resource_max_fds", "This process's RLIMIT_NOFILE (soft)");
  m.resource_limit = &r.gauge_family("anya_resource_limit", "A configured [health] resource "
                                                            "limit, by its key",
                                     {"limit"});
  m.resource_exceeded = &r.gauge_family(
      "anya_resource_exceeded", "1 while the resource is past its limit for resource_fall "
                                "samples in a row (it makes the node unhealthy)",
      {"limit"});
  m.healthy->set(1);
  // Unknown until a monitor samples them: 0 would read as an idle machine with a full disk.
  for (metrics::Gauge* g : {m.resource_cpu_percent, m.resource_memory_percent,
                            m.resource_disk_free_bytes, m.resource_disk_free_percent,
                            m.resource_open_fds, m.resource_max_fds}) {
    g->set(std::numeric_limits<double>::quiet_NaN());
  }
}

}  // namespace

NodeMetrics::NodeMetrics() {
  auto& r = registry;
  role = &r.gauge_family("anya_role", "1 for the role this node is in, 0 for the others",
                         {"role"});
  term = &r.gauge("anya_term", "The current Raft term");
  leader_changes = &r.counter("anya_leader_changes_total",
                              "Times the known leader changed to another node");
  elections_started = &r.counter("anya_elections_started_total",
                                 "Elections this node started (pre-votes excluded)");
  elections_won = &r.counter("anya_elections_won_total", "Elections this node won");
  pre_votes_started = &r.counter("anya_pre_votes_started_total", "Pre-votes this node started");
  fast_failovers = &r.counter("anya_fast_failovers_total",
                              "Campaigns started early because the leader's process was gone "
                              "(its peer port refused connections)");
  followers_lost_entries = &r.counter(
      "anya_followers_lost_entries_total",
      "Leader: followers found to have lost log entries they had acknowledged (sent them again)");
  read_rounds = &r.counter("anya_read_rounds_total",
                           "Leader heartbeat rounds sent to confirm linearizable reads");
  lease_guarded = &r.counter("anya_lease_guarded_total",
                             "Votes refused or elections not started because a leader's lease "
                             "could still hold");
  commit_index = &r.gauge("anya_commit_index", "Highest log index known committed");
  applied_index = &r.gauge("anya_applied_index", "Highest log index applied");
  has_quorum = &r.gauge("anya_quorum", "1 if this node is part of a quorum (leader heard or "
                                       "leader hearing a majority)");
  config_version = &r.gauge("anya_config_version", "Active configuration document version");
  peer_last_contact = &r.gauge_family("anya_peer_last_contact_seconds",
                                      "Seconds since anything was heard from the peer", {"peer"});
  peer_rtt = &r.gauge_family("anya_peer_rtt_seconds", "Last ping round trip to the peer",
                             {"peer"});
  peer_connected = &r.gauge_family("anya_peer_connected", "1 while a link to the peer is up",
                                   {"peer"});
  member_liveness = &r.gauge_family(
      "anya_member_liveness",
      "1 for the failure detector's verdict on the member (reachable, suspect, down, unknown), "
      "0 for the others; a follower judges only its leader",
      {"member", "state"});
  member_heartbeat_rtt = &r.gauge_family(
      "anya_member_heartbeat_rtt_seconds",
      "Leader: smoothed round trip of heartbeats to the member (RFC 6298 srtt)", {"member"});
  member_liveness_changes = &r.counter_family(
      "anya_member_liveness_changes_total",
      "Times the member went between reachable and suspect or down, as this node saw it",
      {"member"});
  messages_sent = &r.counter_family("anya_messages_sent_total", "Messages sent, by peer",
                                    {"peer"});
  messages_received = &r.counter_family("anya_messages_received_total",
                                        "Messages received, by peer", {"peer"});
  bytes_sent = &r.counter_family("anya_bytes_sent_total", "Frame bytes sent, by peer", {"peer"});
  bytes_received = &r.counter_family("anya_bytes_received_total",
                                     "Frame bytes received, by peer", {"peer"});
  messages_dropped = &r.counter_family("anya_messages_dropped_total",
                                       "Messages not sent, by peer and reason",
                                       {"peer", "reason"});
  rejected = &r.counter_family("anya_rejected_total",
                               "Connections and frames refused by the peer links, by reason",
                               {"reason"});
  engine_refused = &r.counter_family("anya_engine_refused_messages_total",
                                     "Messages the engine refused, by reason", {"reason"});
  snapshots = &r.counter_family(
      "anya_snapshots_total",
      "Snapshots taken, restored (at start or installed from the leader), and refused from the "
      "leader because their data would not restore",
      {"event"});
  wal_fsync_seconds = &r.histogram(
      "anya_wal_fsync_seconds", "Latency of each WAL fsync",
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
  chain_height = &r.gauge("anya_chain_height",
                          "This node's Bitcoin chain height as its probe last reported it "
                          "(NaN: unknown)");
  chain_quorum_height = &r.gauge(
      "anya_chain_quorum_height",
      "The chain height a quorum of voters holds, as this node knows it (NaN: no quorum view)");
  chain_blocks_behind = &r.gauge(
      "anya_chain_blocks_behind",
      "Blocks this node is below the quorum height (0 when level or ahead; NaN when unknown)");
  chain_behind = &r.gauge("anya_chain_behind",
                          "1 while this node is behind the chain by more than "
                          "bitcoin.max_blocks_behind (it will not lead)");
  chain_probe_failures = &r.counter("anya_chain_probe_failures_total",
                                    "Chain probes that failed (the view became unknown)");
  gated_transfers = &r.counter_family(
      "anya_gated_transfers_total",
      "Leadership handed over because this leader was unhealthy or behind the chain",
      {"reason"});
  chain_votes_refused = &r.counter(
      "anya_chain_votes_refused_total",
      "Votes refused to candidates more than max_blocks_behind below this node's chain view");
  register_health_metrics(*this);
}

void NodeMetrics::update_chain(const engine::Raft& raft) {
  constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  const std::optional<engine::ChainView>& view = raft.chain_view();
  const std::optional<std::uint64_t> quorum = raft.chain_quorum_height();
  chain_height->set(view ? static_cast<double>(view->height) : kUnknown);
  chain_quorum_height->set(quorum ? static_cast<double>(*quorum) : kUnknown);
  if (view && quorum) {
    chain_blocks_behind->set(
        *quorum > view->height ? static_cast<double>(*quorum - view->height) : 0.0);
  } else {
    chain_blocks_behind->set(kUnknown);
  }
  chain_behind->set(raft.chain_behind() ? 1 : 0);
  const engine::RaftStats& st = raft.stats();
  copy_total(gated_transfers->with({"health"}), st.health_transfers);
  copy_total(gated_transfers->with({"chain"}), st.chain_transfers);
  copy_total(*chain_votes_refused, st.chain_votes_refused);
}

void NodeMetrics::update_liveness(const engine::Raft& raft) {
  for (const engine::MemberStatus& m : raft.members()) {
    const std::string id = std::to_string(m.id);
    for (engine::Liveness state : {engine::Liveness::unknown, engine::Liveness::reachable,
                                   engine::Liveness::suspect, engine::Liveness::down}) {
      member_liveness->with({id, engine::liveness_name(state)}).set(m.liveness == state ? 1 : 0);
    }
    if (m.rtt_ms) member_heartbeat_rtt->with({id}).set(static_cast<double>(*m.rtt_ms) / 1000.0);
    copy_total(member_liveness_changes->with({id}), m.liveness_transitions);
  }
}

void NodeMetrics::update(const engine::Host& host, const PeerLinks& peers) {
  const engine::Raft& raft = host.raft();
  for (engine::Role r : {engine::Role::follower, engine::Role::pre_candidate,
                         engine::Role::candidate, engine::Role::leader, engine::Role::learner}) {
    role->with({engine::role_name(r)}).set(raft.role() == r ? 1 : 0);
  }
  term->set(static_cast<double>(raft.term()));
  const engine::RaftStats& st = raft.stats();
  copy_total(*leader_changes, st.leader_changes);
  copy_total(*elections_started, st.elections_started);
  copy_total(*elections_won, st.elections_won);
  copy_total(*pre_votes_started, st.pre_votes_started);
  copy_total(*followers_lost_entries, st.followers_regressed);
  copy_total(*read_rounds, st.read_rounds);
  copy_total(*lease_guarded, st.lease_guarded);
  commit_index->set(static_cast<double>(raft.log().committed()));
  applied_index->set(static_cast<double>(raft.log().applied()));
  has_quorum->set(raft.has_quorum() ? 1 : 0);
  config_version->set(static_cast<double>(host.config_state().active_version()));
  copy_total(engine_refused->with({"stale_term"}), st.stale_messages);
  copy_total(engine_refused->with({"invalid"}), st.invalid_messages);
  copy_total(engine_refused->with({"non_member"}), st.non_member_messages);
  copy_total(engine_refused->with({"foreign_cluster"}), st.foreign_cluster_messages);
  copy_total(snapshots->with({"taken"}), host.snapshots_taken());
  copy_total(snapshots->with({"restored"}), host.snapshots_restored());
  copy_total(snapshots->with({"refused"}), host.snapshots_refused());
  update_chain(raft);
  update_liveness(raft);
  const std::uint64_t now = steady_ms();
  for (const auto& [peer, ps] : peers.stats()) {
    const std::string id = std::to_string(peer);
    if (ps.last_contact_ms) {
      peer_last_contact->with({id}).set(static_cast<double>(now - *ps.last_contact_ms) / 1000.0);
    }
    if (ps.rtt_ms) peer_rtt->with({id}).set(*ps.rtt_ms / 1000.0);
    peer_connected->with({id}).set(ps.connected ? 1 : 0);
    copy_total(messages_sent->with({id}), ps.messages_sent);
    copy_total(messages_received->with({id}), ps.messages_received);
    copy_total(bytes_sent->with({id}), ps.bytes_sent);
    copy_total(bytes_received->with({id}), ps.bytes_received);
    copy_total(messages_dropped->with({id, "not_connected"}), ps.dropped_not_connected);
    copy_total(messages_dropped->with({id, "queue_full"}), ps.dropped_queue_full);
  }
  for (const auto& [reason, count] : peers.rejections()) {
    copy_total(rejected->with({reason}), count);
  }
}

void NodeMetrics::update_health(const HealthStatusView& h) {
  constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  const auto value = [](const auto& optional) {
    return optional ? static_cast<double>(*optional) : kUnknown;
  };
  healthy->set(h.healthy ? 1 : 0);
  for (const ProbeStatusView& p : h.probes) {
    probe_up->with({p.name}).set(p.state == "passing" ? 1 : 0);
    probe_error_ratio->with({p.name}).set(p.window_samples == 0 ? kUnknown : p.error_ratio);
    probe_latency_ms->with({p.name, "0.5"}).set(value(p.p50_ms));
    probe_latency_ms->with({p.name, "0.99"}).set(value(p.p99_ms));
  }
  if (!h.monitored) return;
  const ResourceLevelsView& r = h.resources;
  resource_cpu_percent->set(value(r.cpu_percent));
  resource_memory_percent->set(value(r.memory_used_percent));
  resource_disk_free_bytes->set(value(r.data_dir_free_bytes));
  resource_disk_free_percent->set(value(r.data_dir_free_percent));
  resource_open_fds->set(value(r.open_fds));
  resource_max_fds->set(value(r.max_fds));
  for (const ResourceLimitView& l : h.limits) {
    resource_limit->with({l.limit_key}).set(l.limit);
    resource_exceeded->with({l.limit_key}).set(l.exceeded ? 1 : 0);
  }
}

}  // namespace anya::transport
