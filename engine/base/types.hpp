// The vocabulary of the consensus engine: ids, log entries, messages and durable state.
// Plain data only; behaviour lives in the modules that use these (log, progress, raft, codec).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::engine {

using NodeId = std::uint64_t;  // 0 means "nobody" (no leader, no vote).
using Term = std::uint64_t;
using Index = std::uint64_t;   // log positions start at 1; index 0 is the empty log.
inline constexpr NodeId kNoNode = 0;
// Node ids are 1..kMaxNodeId: the top half is kept free so an id never reads as a negative
// number in a signed language or JSON parser, and 2^64-1 never looks like a sentinel.
inline constexpr NodeId kMaxNodeId = (NodeId{1} << 63) - 1;

// Limits on everything that crosses a boundary. The codec rejects frames over these before it
// allocates; the leader never builds an append larger than max_entry_bytes_per_message.
struct Limits {
  static constexpr std::size_t max_entry_data_bytes = 1u << 20;      // 1 MiB per entry
  static constexpr std::size_t max_entries_per_message = 4096;
  static constexpr std::size_t max_frame_bytes = 8u << 20;            // 8 MiB per frame
  // A snapshot message carries the whole snapshot (membership and state) in its payload, in one
  // frame: no chunking. A leader whose snapshot is larger refuses to send it, counts it
  // (RaftStats::snapshots_too_large) and leaves the follower in probe; it retries later.
  static constexpr std::size_t max_snapshot_payload_bytes = max_frame_bytes - 64 * 1024;
  // Terms grow by one per election; 2^62 is out of reach of any real cluster, so a term above
  // it can only be hostile or corrupt. Refusing it keeps term + 1 from ever wrapping around.
  static constexpr std::uint64_t max_term = std::uint64_t{1} << 62;
  // The same for log indexes: a message naming a higher index (an entry, a commit, a snapshot)
  // is refused, so that index + 1 and index + entry count never wrap either.
  static constexpr std::uint64_t max_index = std::uint64_t{1} << 62;
  // Bitcoin's chain grows by about 52'560 blocks a year: a height above this is not a chain
  // but a broken or hostile report. Refusing it keeps height + max_blocks_behind from wrapping.
  static constexpr std::uint64_t max_chain_height = std::uint64_t{1} << 62;
};
static_assert(Limits::max_entry_data_bytes < Limits::max_frame_bytes);
static_assert(Limits::max_entry_data_bytes < Limits::max_snapshot_payload_bytes);

enum class EntryType : std::uint8_t {
  normal = 0,         // an application command
  noop = 1,           // appended by a new leader so it can commit entries of earlier terms
  config_change = 2,  // a membership change (data: engine/raft/membership.hpp encoding)
  config_txn = 3,     // a configuration-document 2PC record (data: engine/config encoding)
};
inline constexpr std::uint8_t kMaxEntryType = 3;

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::normal;
  std::string data;  // opaque bytes

  friend bool operator==(const Entry&, const Entry&) = default;
};

// A node's view of the Bitcoin chain, as its backend last reported it: the height of the best
// block and that block's hash (32 bytes in the order `bitcoin-cli getbestblockhash` prints
// them). Leadership is gated on it: see RaftConfig::max_blocks_behind.
struct ChainView {
  std::uint64_t height = 0;  // Invariant: <= Limits::max_chain_height
  std::array<std::uint8_t, 32> tip{};

  friend bool operator==(const ChainView&, const ChainView&) = default;
};

// The most RaftConfig::max_blocks_behind may be: about nineteen years of Bitcoin blocks. More
// than that is a typo, not a tolerance.
inline constexpr std::uint64_t kMaxBlocksBehind = 1'000'000;

enum class MessageType : std::uint8_t {
  pre_vote = 1,            // would you vote for me at `term` (not yet incremented)?
  pre_vote_response = 2,
  vote = 3,
  vote_response = 4,
  append = 5,              // log_term/index: the entry before `entries`
  append_response = 6,     // index: last index accepted, or the rejected index with a hint
  heartbeat = 7,
  heartbeat_response = 8,
  timeout_now = 9,         // leadership transfer: campaign at once, skipping PreVote
  config_ack = 10,         // a member's verdict on a prepared configuration (engine/config)
  // InstallSnapshot: index/log_term = the snapshot's last index and its term; payload = the
  // snapshot envelope (membership at that index, then the host's state; see raft.hpp). The
  // answer is an append_response whose index is the snapshot index (or the follower's commit).
  snapshot = 11,
};
inline constexpr std::uint8_t kMinMessageType = 1;
inline constexpr std::uint8_t kMaxMessageType = 11;

const char* message_type_name(MessageType type);

struct Message {
  MessageType type = MessageType::heartbeat;
  std::uint64_t cluster_id = 0;  // messages from another cluster are refused and counted
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  // append: term and index of the entry preceding `entries`. (pre_)vote: candidate's last entry.
  // append_response: on success the last matching index; on reject the index that was refused.
  Term log_term = 0;
  Index index = 0;
  Index commit = 0;            // append/heartbeat: the leader's commit index
  bool reject = false;
  bool transfer = false;       // (pre_)vote caused by a leadership transfer: ignore stickiness
  bool unhealthy = false;      // responses: the sender's host marked it unhealthy
  Index reject_hint = 0;       // append_response reject: follower's guess of the match point
  Term reject_hint_term = 0;   // term of the follower's entry at reject_hint (fast back-off)
  std::uint64_t context = 0;   // heartbeat round number, echoed in heartbeat_response
  // Responses to appends and heartbeats, and (pre)vote requests: the sender's chain view, if
  // its host has one. Voters refuse a candidate far behind their own view.
  std::optional<ChainView> chain_view;
  // Heartbeats: the height a quorum of voters holds, as the leader computed it (none: fewer
  // than a quorum of voters reported a view). Followers judge whether they are behind by it.
  std::optional<std::uint64_t> chain_quorum_height;
  std::vector<Entry> entries;
  // config_ack: the member's reason for rejecting (empty when accepted). At most
  // Limits::max_entry_data_bytes. snapshot: the snapshot envelope, at most
  // Limits::max_snapshot_payload_bytes.
  std::string payload;

  friend bool operator==(const Message&, const Message&) = default;
};

// What must be on disk before any message that depends on it leaves the node.
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  friend bool operator==(const HardState&, const HardState&) = default;
};

enum class Role : std::uint8_t { follower, pre_candidate, candidate, leader, learner };
const char* role_name(Role role);

// How a client's read is answered (engine/node/node_core.hpp has the rules): linearizable
// (ReadIndex), lease (from the leader's state while its lease holds), serializable (from any
// node's state, possibly stale).
enum class ReadMode : std::uint8_t { linearizable, lease, serializable };
const char* read_mode_name(ReadMode mode);
// "linearizable", "lease" or "serializable"; anything else is invalid_argument quoting it.
Result<ReadMode> parse_read_mode(std::string_view text);

}  // namespace anya::engine
