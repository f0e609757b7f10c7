// Quorum math: which index a set of voters has committed, and who won a vote. Knows nothing of
// progress tracking, membership changes or roles; callers hand in what each voter acknowledged.
//
// A joint configuration (Raft §6, joint consensus) is two majority configurations that must both
// agree. An empty majority configuration agrees to everything, so a joint configuration whose
// outgoing half is empty behaves exactly like its incoming half.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine {

enum class VoteResult { pending, lost, won };
const char* vote_result_name(VoteResult result);

// Index returned by an empty configuration: "no constraint", the neutral element of min().
inline constexpr Index kUnconstrainedIndex = std::numeric_limits<Index>::max();

class MajorityConfig {
 public:
  MajorityConfig() = default;
  explicit MajorityConfig(std::set<NodeId> voters) : voters_(std::move(voters)) {}

  const std::set<NodeId>& voters() const { return voters_; }
  bool empty() const { return voters_.empty(); }
  std::size_t size() const { return voters_.size(); }
  bool contains(NodeId id) const { return voters_.count(id) != 0; }
  // Smallest number of voters that forms a majority.
  std::size_t quorum_size() const { return voters_.size() / 2 + 1; }

  // The largest index acknowledged by a majority. `acked(id)` returns the index voter `id` has
  // durably acknowledged, or nullopt if unknown (counted as 0).
  template <typename AckedFn>
  Index committed_index(AckedFn&& acked) const;

  // `votes` maps voter id to granted (true) or rejected (false); absent voters have not answered.
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;

  // The largest value v such that a majority of the voters report a value >= v, counting only
  // voters whose `value_of(id)` is known: a voter reporting nothing holds no value at all (unlike
  // committed_index, where unknown counts as 0). nullopt when fewer than a majority report one;
  // kUnconstrainedIndex for an empty configuration.
  template <typename ValueFn>
  std::optional<std::uint64_t> quorum_value(ValueFn&& value_of) const;

  std::string describe() const;

  friend bool operator==(const MajorityConfig&, const MajorityConfig&) = default;

 private:
  std::set<NodeId> voters_;
};

class JointConfig {
 public:
  JointConfig() = default;
  explicit JointConfig(MajorityConfig incoming, MajorityConfig outgoing = {})
      : incoming_(std::move(incoming)), outgoing_(std::move(outgoing)) {}

  const MajorityConfig& incoming() const { return incoming_; }
  const MajorityConfig& outgoing() const { return outgoing_; }
  bool joint() const { return !outgoing_.empty(); }
  bool contains(NodeId id) const { return incoming_.contains(id) || outgoing_.contains(id); }
  std::set<NodeId> all_voters() const;

  template <typename AckedFn>
  Index committed_index(AckedFn&& acked) const {
    return std::min(incoming_.committed_index(acked), outgoing_.committed_index(acked));
  }
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;
  // Both halves must hold it: the smaller of the two. nullopt if either half has no quorum of
  // known values, or if there are no voters at all.
  template <typename ValueFn>
  std::optional<std::uint64_t> quorum_value(ValueFn&& value_of) const {
    if (incoming_.empty() && outgoing_.empty()) return std::nullopt;
    const std::optional<std::uint64_t> in = incoming_.quorum_value(value_of);
    const std::optional<std::uint64_t> out = outgoing_.quorum_value(value_of);
    if (!in || !out) return std::nullopt;
    return std::min(*in, *out);
  }

  std::string describe() const;

  friend bool operator==(const JointConfig&, const JointConfig&) = default;

 private:
  MajorityConfig incoming_;
  MajorityConfig outgoing_;
};

template <typename AckedFn>
Index MajorityConfig::committed_index(AckedFn&& acked) const {
  if (voters_.empty()) return kUnconstrainedIndex;
  // Called on every acknowledgement: keep the common sizes off the heap.
  constexpr std::size_t kInline = 16;
  std::array<Index, kInline> inline_buffer;
  std::vector<Index> heap_buffer;
  Index* indexes = inline_buffer.data();
  if (voters_.size() > kInline) {
    heap_buffer.resize(voters_.size());
    indexes = heap_buffer.data();
  }
  std::size_t n = 0;
  for (NodeId id : voters_) indexes[n++] = acked(id).value_or(0);
  // Sorted descending, the quorum_size-th highest index is held by at least a majority.
  const std::size_t q = quorum_size();
  ANYA_ASSERT(q >= 1);
  ANYA_ASSERT(q <= n);
  std::nth_element(indexes, indexes + (q - 1), indexes + n, std::greater<>());
  return indexes[q - 1];
}

template <typename ValueFn>
std::optional<std::uint64_t> MajorityConfig::quorum_value(ValueFn&& value_of) const {
  if (voters_.empty()) return kUnconstrainedIndex;
  std::vector<std::uint64_t> known;
  known.reserve(voters_.size());
  for (NodeId id : voters_) {
    if (const std::optional<std::uint64_t> v = value_of(id)) known.push_back(*v);
  }
  const std::size_t q = quorum_size();
  ANYA_ASSERT(q >= 1);
  ANYA_ASSERT(known.size() <= voters_.size());
  if (known.size() < q) return std::nullopt;
  // Sorted descending, the q-th highest known value is held by q voters, and no higher value is.
  std::nth_element(known.begin(), known.begin() + (q - 1), known.end(), std::greater<>());
  return known[q - 1];
}

}  // namespace anya::engine
