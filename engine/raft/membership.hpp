// Who belongs to the cluster: voters, learners and their addresses, and the changes that move a
// node between them. Changes travel through the log as EntryType::config_change entries and
// take effect as soon as they are appended (Raft thesis §4.1, one server at a time): a leader
// allows one uncommitted change at a time, and only after it has committed an entry of its own
// term, so any two consecutive configurations share a majority.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine {

enum class ConfChangeOp : std::uint8_t {
  add_learner = 1,  // a new member that receives the log but does not vote yet
  promote = 2,      // a caught-up learner becomes a voter
  remove = 3,       // any member, the leader included, leaves
};
const char* conf_change_op_name(ConfChangeOp op);

struct ConfChange {
  ConfChangeOp op = ConfChangeOp::add_learner;
  NodeId node = kNoNode;
  std::string address;  // add_learner: how peers reach it (host:port); otherwise empty

  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

inline constexpr std::size_t kMaxAddressBytes = 256;
inline constexpr std::size_t kMaxMembers = 64;  // voters plus learners

struct Membership {
  std::set<NodeId> voters;
  std::set<NodeId> learners;  // Invariant: disjoint from voters
  std::map<NodeId, std::string> addresses;

  bool contains(NodeId id) const { return voters.count(id) != 0 || learners.count(id) != 0; }
  // OK if `change` makes sense against this membership; otherwise invalid_argument naming why.
  Status check(const ConfChange& change) const;
  // Applies a change that passed check().
  void apply(const ConfChange& change);

  friend bool operator==(const Membership&, const Membership&) = default;
};

// What a config_change entry carries: the change, and the whole membership it results in, so
// that a node joining with no configuration learns all of it from the first change it sees.
struct ConfChangeRecord {
  ConfChange change;
  Membership result;

  friend bool operator==(const ConfChangeRecord&, const ConfChangeRecord&) = default;
};

// Layout (little-endian): op u8, node u64, address (u16 length + bytes), then voter count u16
// and learner count u16, then each member: id u64, address (u16 length + bytes).
std::string encode_conf_change(const ConfChangeRecord& record);
Result<ConfChangeRecord> decode_conf_change(std::string_view bytes);

// A membership alone (snapshots): voter count u16, learner count u16, then the members as above.
// Unlike a change's result it may hold no voter (a joining node that has not learnt its
// configuration yet). Strict: Errc::malformed naming the field and byte offset.
std::string encode_membership(const Membership& membership);
Result<Membership> decode_membership(std::string_view bytes);

}  // namespace anya::engine
