#include "engine/testing/cluster.hpp"

namespace anya::engine::testing {

namespace {
constexpr std::uint64_t kMaxDeliveriesPerRound = 1'000'000;  // far beyond any legal burst
}

Cluster::Cluster(const ClusterOptions& options) : options_(options) {
  ANYA_ASSERT(options.voters >= 1);
  const std::size_t total = options.voters + options.learners;
  for (NodeId id = 1; id <= total; id++) {
    Node& n = nodes_[id];
    n.storage = std::make_unique<MemoryStorage>();
    n.network = std::make_unique<CallbackNetwork>([this](const Message& m) {
      if (on_send) on_send(m);
      queue_.push_back(m);
    });
    start(id);
  }
}

RaftConfig Cluster::config_for(NodeId id) const {
  RaftConfig c;
  c.id = id;
  c.cluster_id = 0xC1;
  const bool bootstrap = id <= options_.voters + options_.learners;
  for (NodeId v = 1; bootstrap && v <= options_.voters; v++) c.voters.insert(v);
  for (NodeId l = options_.voters + 1; bootstrap && l <= options_.voters + options_.learners;
       l++) {
    c.learners.insert(l);
  }
  c.heartbeat_interval_ms = options_.heartbeat_interval_ms;
  c.election_timeout_ms = options_.election_timeout_ms;
  c.pre_vote = options_.pre_vote;
  c.check_quorum = options_.check_quorum;
  c.random_seed = options_.seed * 1000003 + id;
  c.snapshot_entries = options_.snapshot_entries;
  c.snapshot_keep_entries = options_.snapshot_keep_entries;
  return c;
}

void Cluster::start(NodeId id) {
  Node& n = nodes_.at(id);
  ANYA_ASSERT(n.host == nullptr);
  n.clock.set(now_ms_);
  n.applied.clear();
  n.validator.id = id;
  n.validator.fn = options_.validator;
  ConfigOptions config_options{&n.validator, options_.config_deadline_ms};
  Result<std::unique_ptr<Host>> host =
      Host::open(config_for(id), *n.storage, *n.network, n.applied, n.clock, config_options);
  ANYA_ASSERT(host.is_ok());
  n.host = std::move(host).value();
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

Host& Cluster::host(NodeId id) {
  Node& n = nodes_.at(id);
  ANYA_ASSERT(n.host != nullptr);
  return *n.host;
}

const Raft& Cluster::raft(NodeId id) const {
  const Node& n = nodes_.at(id);
  ANYA_ASSERT(n.host != nullptr);
  return n.host->raft();
}

bool Cluster::link_up(NodeId from, NodeId to) const {
  if (isolated_.count(from) != 0 || isolated_.count(to) != 0) return false;
  if (paused_.count(from) != 0 || paused_.count(to) != 0) return false;
  return cut_.count({from, to}) == 0;
}

void Cluster::deliver_all() {
  std::uint64_t round = 0;
  while (!queue_.empty()) {
    ANYA_ASSERT(round++ < kMaxDeliveriesPerRound);
    Message m = std::move(queue_.front());
    queue_.pop_front();
    auto it = nodes_.find(m.to);
    if (it == nodes_.end() || it->second.host == nullptr || !link_up(m.from, m.to)) continue;
    delivered_++;
    (void)it->second.host->receive(m);
  }
  if (options_.check_invariants) observe_all();
}

void Cluster::observe_all() {
  for (const auto& [id, n] : nodes_) {
    if (n.host == nullptr) continue;
    const Raft& r = n.host->raft();
    NodeView view{id, r.term(), r.role(), r.log().committed(), r.log().first_index(),
                  r.log().entries()};
    view.snapshot_term = r.log().snapshot_term();
    checker_.observe(view);
  }
}

void Cluster::run_for(std::uint64_t ms) {
  for (std::uint64_t step = 0; step < ms; step++) {
    now_ms_++;
    for (auto& [id, n] : nodes_) {
      if (n.host == nullptr) continue;
      n.clock.set(now_ms_);
      if (paused_.count(id) == 0) (void)n.host->tick();
    }
    deliver_all();
  }
}

std::optional<NodeId> Cluster::leader() const {
  std::optional<NodeId> best;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.host == nullptr || !n.host->raft().is_leader()) continue;
    if (!best || n.host->raft().term() > best_term) {
      best = id;
      best_term = n.host->raft().term();
    }
  }
  return best;
}

std::optional<NodeId> Cluster::run_until_leader(std::uint64_t max_ms) {
  for (std::uint64_t waited = 0; waited <= max_ms; waited++) {
    if (std::optional<NodeId> l = leader()) {
      // A quorum of live nodes must follow it (a stale, isolated leader does not count).
      std::size_t followers = 0;
      for (const auto& [id, n] : nodes_) {
        if (n.host != nullptr && n.host->raft().leader() == *l &&
            n.host->raft().term() == raft(*l).term() && link_up(id, *l)) {
          followers++;
        }
      }
      if (followers >= options_.voters / 2 + 1) return l;
    }
    run_for(1);
  }
  return std::nullopt;
}

bool Cluster::run_until_applied(Index index, std::uint64_t max_ms) {
  for (std::uint64_t waited = 0; waited <= max_ms; waited++) {
    bool all = true;
    for (const auto& [id, n] : nodes_) {
      if (n.host == nullptr || isolated_.count(id) != 0) continue;
      if (n.host->raft().log().applied() < index) all = false;
    }
    if (all) return true;
    run_for(1);
  }
  return false;
}

Result<Index> Cluster::propose(NodeId on, std::string data) {
  Result<Index> index = host(on).propose(std::move(data));
  deliver_all();
  return index;
}

void Cluster::isolate(NodeId id) { isolated_.insert(id); }

void Cluster::cut(NodeId a, NodeId b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void Cluster::heal() {
  isolated_.clear();
  cut_.clear();
}

void Cluster::crash(NodeId id) {
  Node& n = nodes_.at(id);
  ANYA_ASSERT(n.host != nullptr);
  n.host.reset();
  n.storage->drop_unsynced();
  std::erase_if(queue_, [id](const Message& m) { return m.to == id || m.from == id; });
}

void Cluster::add_node(NodeId id) {
  ANYA_ASSERT(nodes_.count(id) == 0);
  Node& n = nodes_[id];
  n.storage = std::make_unique<MemoryStorage>();
  n.network = std::make_unique<CallbackNetwork>([this](const Message& m) {
    if (on_send) on_send(m);
    queue_.push_back(m);
  });
  start(id);
}

void Cluster::restart(NodeId id) {
  start(id);
  const HardState& hs = nodes_.at(id).storage->durable().hard_state;
  checker_.on_restart(id, hs.term, hs.commit);
}

}  // namespace anya::engine::testing
