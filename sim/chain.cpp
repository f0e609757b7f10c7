// Chain views in the simulator: a Bitcoin backend beside every node, its probe, and the checks
// that chain-gated leadership keeps its promises.
//
// The chain grows one block every chain_block_ms. Each backend sees a block after a lag (or not
// at all while stalled, catching up when the stall ends); a blind probe reports nothing. The
// node's engine gets the view through Host::set_chain_view, as production's probe posts it.
//
// Ground truth is computed here from the backends' heights, independently of the engine's
// quorum math: the height a quorum of a node's voters holds, and whether the node is more than
// max_blocks_behind below it (or blind while a quorum view exists). Checked after every event:
//   - no node wins an election it began while behind. Exact, not a matter of timing: every
//     voter compares the candidate's height with its own current view and heights only grow,
//     so a quorum that elects it overlaps the quorum holding the height it was behind;
//   - a leader behind the chain stops leading within chain_handoff_bound_ms (when set);
//   - a leader exists again chain_handoff_bound_ms after a stall or blind probe ends (when set).
#include "sim/sim_node.hpp"
#include "sim/simulation.hpp"

#include <algorithm>

namespace anya::sim {

namespace {
constexpr std::uint64_t kMs = 1000;

// A tip hash that differs per height, so the tip travels visibly with the height.
engine::ChainView view_at(std::uint64_t height) {
  engine::ChainView v;
  v.height = height;
  for (std::size_t i = 0; i < v.tip.size(); i++) {
    v.tip[i] = static_cast<std::uint8_t>((height >> (8 * (i % 8))) ^ (0x5a + i));
  }
  return v;
}
}  // namespace

void Simulation::chain_block() {
  ANYA_ASSERT(chain_on());
  chain_tip_++;
  result_.stats.chain_blocks++;
  schedule(now_us_ + options_.chain_block_ms * kMs, Event{EventKind::chain_block, 0, 0, {}});
  for (const auto& [id, n] : nodes_) {
    if (n->chain_stalled_until_us > now_us_) continue;  // it catches up when the stall ends
    const std::uint64_t lag_us = rng_.between(0, options_.chain_lag_max_ms * kMs);
    schedule(now_us_ + lag_us, Event{EventKind::chain_seen, id, chain_tip_, {}});
  }
}

void Simulation::chain_seen(NodeId id, std::uint64_t height) {
  Node& n = *nodes_.at(id);
  if (n.chain_stalled_until_us > now_us_) return;
  if (height <= n.chain_height) return;  // a later block got here first
  n.chain_height = height;
  update_chain_truth();
  push_chain_view(id);
}

std::optional<engine::ChainView> Simulation::chain_view_of(NodeId id) const {
  const Node& n = *nodes_.at(id);
  if (n.chain_blind) return std::nullopt;
  return view_at(n.chain_height);
}

void Simulation::push_chain_view(NodeId id) {
  // A stopped process reads nothing; it gets the view first thing on resume (see dispatch).
  if (!up(id) || paused(id)) return;
  Node& n = *nodes_.at(id);
  const Status s = n.host->set_chain_view(chain_view_of(id));
  ANYA_ASSERT(s.is_ok() || n.host->failed());
  after_node_event(id);
}

void Simulation::chain_stall(NodeId id, std::uint64_t ms) {
  Node& n = *nodes_.at(id);
  n.chain_stalled_until_us = std::max(n.chain_stalled_until_us, now_us_ + ms * kMs);
  result_.stats.chain_stalls++;
  schedule(n.chain_stalled_until_us, Event{EventKind::chain_restore, id, 0, {}});
}

void Simulation::chain_blind(NodeId id, std::uint64_t ms) {
  Node& n = *nodes_.at(id);
  n.chain_blind = true;
  result_.stats.chain_blinds++;
  update_chain_truth();
  push_chain_view(id);
  schedule(now_us_ + ms * kMs, Event{EventKind::chain_restore, id, 1, {}});
}

void Simulation::chain_restore(NodeId id, std::uint64_t what) {
  Node& n = *nodes_.at(id);
  if (what == 0) {
    if (n.chain_stalled_until_us == 0 || n.chain_stalled_until_us > now_us_) return;
    n.chain_stalled_until_us = 0;
    n.chain_height = std::max(n.chain_height, chain_tip_);  // it catches up with the tip
  } else {
    if (!n.chain_blind) return;
    n.chain_blind = false;
  }
  update_chain_truth();
  push_chain_view(id);
  if (options_.chain_handoff_bound_ms > 0 && !liveness_phase_) {
    schedule(now_us_ + options_.chain_handoff_bound_ms * kMs,
             Event{EventKind::chain_check, 0, 0, {}});
  }
}

std::optional<std::uint64_t> Simulation::chain_truth_quorum(const std::set<NodeId>& voters) const {
  std::vector<std::uint64_t> heights;
  for (NodeId v : voters) {
    const Node& n = *nodes_.at(v);
    if (!n.chain_blind) heights.push_back(n.chain_height);
  }
  const std::size_t quorum = voters.size() / 2 + 1;
  if (voters.empty() || heights.size() < quorum) return std::nullopt;
  std::sort(heights.begin(), heights.end(), std::greater<>());
  return heights[quorum - 1];
}

bool Simulation::chain_truth_behind(NodeId id, const std::set<NodeId>& voters) const {
  const std::optional<std::uint64_t> quorum = chain_truth_quorum(voters);
  if (!quorum) return false;
  const Node& n = *nodes_.at(id);
  return n.chain_blind || n.chain_height + options_.max_blocks_behind < *quorum;
}

void Simulation::update_chain_truth() {
  for (auto& [id, n] : nodes_) {
    if (!chain_truth_behind(id, n->last_voters)) {
      n->chain_behind_since_us.reset();
    } else if (!n->chain_behind_since_us) {
      n->chain_behind_since_us = now_us_;
    }
  }
}

std::string Simulation::chain_describe(const std::set<NodeId>& voters) const {
  std::string out = "heights";
  for (NodeId v : voters) {
    const Node& n = *nodes_.at(v);
    out += " n" + std::to_string(v) + "=" +
           (n.chain_blind ? std::string("unknown") : std::to_string(n.chain_height));
  }
  const std::optional<std::uint64_t> quorum = chain_truth_quorum(voters);
  return out + ", quorum height " + (quorum ? std::to_string(*quorum) : std::string("none")) +
         ", max_blocks_behind " + std::to_string(options_.max_blocks_behind);
}

void Simulation::check_chain(NodeId id) {
  if (!chain_on()) return;
  Node& n = *nodes_.at(id);
  const engine::Raft& r = n.host->raft();
  const std::set<NodeId>& voters = r.membership().voters;
  if (r.role() == Role::candidate && (n.last_role != Role::candidate || r.term() != n.last_term)) {
    // The vote requests of this election left in this very event, carrying today's view.
    n.campaign_term = r.term();
    n.campaign_behind = chain_truth_behind(id, voters);
  }
  if (r.is_leader() && n.last_role != Role::leader) {
    if (n.campaign_term == r.term() && n.campaign_behind) {
      return violation("chain: node " + std::to_string(id) + " won the election of term " +
                           std::to_string(r.term()) + " that it began while behind the chain (" +
                           chain_describe(voters) + ")",
                       id);
    }
    n.leading_since_us = now_us_;
  }
  if (!r.is_leader() && n.last_role == Role::leader && n.chain_behind_since_us) {
    result_.stats.chain_handoffs++;
  }
  if (!r.is_leader() || !n.chain_behind_since_us) return;
  const std::uint64_t since_us = std::max(*n.chain_behind_since_us, n.leading_since_us);
  const std::uint64_t behind_ms = (now_us_ - since_us) / kMs;
  result_.stats.chain_behind_max_ms = std::max(result_.stats.chain_behind_max_ms, behind_ms);
  if (options_.chain_handoff_bound_ms > 0 && behind_ms > options_.chain_handoff_bound_ms) {
    violation("chain: node " + std::to_string(id) + " has led for " + std::to_string(behind_ms) +
                  " ms while behind the chain, beyond the bound of " +
                  std::to_string(options_.chain_handoff_bound_ms) + " ms (" +
                  chain_describe(voters) + ")",
              id);
  }
}

void Simulation::chain_check() {
  // A stall or blind probe ended chain_handoff_bound_ms ago: the views have converged (unless a
  // later one began, which only ever gates a minority), so someone leads.
  if (believed_leader() != engine::kNoNode) return;
  std::set<NodeId> all;
  for (const auto& [id, n] : nodes_) all.insert(id);
  violation("chain: no leader " + std::to_string(options_.chain_handoff_bound_ms) +
                " ms after the chain views converged (" + chain_describe(all) + ")",
            engine::kNoNode);
}

}  // namespace anya::sim
