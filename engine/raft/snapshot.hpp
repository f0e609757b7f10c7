// Snapshots of the replicated state: what a node keeps instead of a compacted log prefix, what
// it stores (StoragePort::save_snapshot) and what a leader sends to a follower that needs a
// compacted entry (MessageType::snapshot).
//
// A snapshot covers the log up to `meta.index` (an applied, hence committed, entry of term
// `meta.term`). `meta.membership` is the membership as of that index: the log after the
// snapshot starts from it. `data` is the host's image of everything the log built up to that
// index (engine/host: its configuration document state and the application's state machine);
// the engine treats it as opaque bytes.
//
// On the wire the membership travels inside the message payload, in an envelope:
//   membership length u32 | encode_membership bytes | data
// so the message needs no field of its own, and the codec stays unaware of memberships.
// The whole envelope must fit Limits::max_snapshot_payload_bytes (one frame, no chunking).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/raft/membership.hpp"

namespace anya::engine {

struct SnapshotMeta {
  Index index = 0;  // the last log index the snapshot covers (0: no snapshot)
  Term term = 0;    // the term of that entry
  Membership membership;  // as of `index`

  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// The message payload for `snapshot` (membership and data, not index and term, which travel in
// Message::index and Message::log_term).
std::string encode_snapshot_envelope(const Membership& membership, std::string_view data);
// Strict: Errc::malformed naming the field and byte offset. Index and term are set by the caller.
Result<Snapshot> decode_snapshot_envelope(std::string_view payload);
// The size encode_snapshot_envelope would produce, to refuse an oversized one without building it.
std::size_t snapshot_envelope_size(const Membership& membership, std::size_t data_bytes);

}  // namespace anya::engine
