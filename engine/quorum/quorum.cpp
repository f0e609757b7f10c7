#include "engine/quorum/quorum.hpp"

#include "engine/base/result.hpp"

namespace anya::engine {

const char* vote_result_name(VoteResult result) {
  switch (result) {
    case VoteResult::pending: return "pending";
    case VoteResult::lost: return "lost";
    case VoteResult::won: return "won";
  }
  return "unknown";
}

VoteResult MajorityConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  // An empty configuration wins every vote, so joint decisions reduce to the other half.
  if (voters_.empty()) return VoteResult::won;
  std::size_t granted = 0;
  std::size_t missing = 0;
  for (NodeId id : voters_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      missing++;
    } else if (it->second) {
      granted++;
    }
  }
  const std::size_t q = quorum_size();
  if (granted >= q) return VoteResult::won;
  if (granted + missing >= q) return VoteResult::pending;
  return VoteResult::lost;
}

std::string MajorityConfig::describe() const {
  std::string out = "(";
  bool first = true;
  for (NodeId id : voters_) {
    if (!first) out += " ";
    out += std::to_string(id);
    first = false;
  }
  return out + ")";
}

std::set<NodeId> JointConfig::all_voters() const {
  std::set<NodeId> all = incoming_.voters();
  all.insert(outgoing_.voters().begin(), outgoing_.voters().end());
  return all;
}

VoteResult JointConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  const VoteResult in = incoming_.vote_result(votes);
  const VoteResult out = outgoing_.vote_result(votes);
  if (in == out) return in;
  if (in == VoteResult::lost || out == VoteResult::lost) return VoteResult::lost;
  return VoteResult::pending;  // one won, the other is still open
}

std::string JointConfig::describe() const {
  if (!joint()) return incoming_.describe();
  return incoming_.describe() + "&&" + outgoing_.describe();
}

}  // namespace anya::engine
