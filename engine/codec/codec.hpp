// The versioned binary wire codec: how a Message crosses the network and how a HardState is laid
// out on disk. Pure functions over bytes; the transport and the WAL own the I/O.
//
// Frame (all integers little-endian, fixed width, so the encoding of a value is unique):
//
//   offset  size  field
//   0       4     magic "ANYA"
//   4       1     format version, 1 (anything else: Errc::unsupported)
//   5       1     frame kind: 1 = message, 2 = hard state
//   6       4     payload length P (u32); the whole frame is at most Limits::max_frame_bytes
//   10      P     payload
//   10+P    4     CRC-32C (crc32c.hpp) of bytes [0, 10+P)
//
// Message payload:
//   type u8 (kMinMessageType..kMaxMessageType),
//   flags u8 (bit0 reject, bit1 transfer, bit2 unhealthy, bit3 chain view present, bit4 chain
//     quorum height present; the other bits must be 0),
//   cluster_id u64, from u64, to u64, term u64, log_term u64, index u64, commit u64,
//   reject_hint u64, reject_hint_term u64, context u64,
//   then, only if flag bit3: chain height u64, chain tip 32 bytes (Message::chain_view);
//   then, only if flag bit4: chain quorum height u64 (Message::chain_quorum_height);
//   entry count u32 (<= Limits::max_entries_per_message),
//   then per entry: term u64, index u64, type u8 (<= kMaxEntryType),
//     data length u32 (<= Limits::max_entry_data_bytes), data bytes;
//   then Message::payload: length u32 (<= Limits::max_entry_data_bytes, or
//   Limits::max_snapshot_payload_bytes for a snapshot message), bytes.
//   With no entries and an empty payload that is kMessageFixedBytes; the fixed fields of a message
//   start at frame offset 10 (type), 11 (flags), 12 (cluster_id) and 20 (from). The chain fields
//   are optional so that a message without them is byte for byte what format version 1 always
//   was: nodes that never set a chain view talk to builds that predate it.
// Hard state payload: term u64, vote u64, commit u64.
//
// Decoding is strict: every byte of a frame has exactly one meaning, so decode(bytes) succeeding
// implies encode(decode(bytes)) == bytes. Anything else (bad magic, unknown kind, tag or flag,
// lengths over the limits or past the end, trailing bytes, checksum mismatch) is Errc::malformed
// with a message naming the field and its byte offset in the frame. Every declared length or count
// is checked against the limits and the bytes actually present before anything is allocated, so a
// hostile peer cannot make a node reserve memory it did not send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::engine {

inline constexpr std::string_view kFrameMagic = "ANYA";
inline constexpr std::uint8_t kFormatVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 10;   // magic, version, kind, payload length
inline constexpr std::size_t kFrameChecksumBytes = 4;  // trailing CRC-32C
inline constexpr std::size_t kMaxFramePayloadBytes =
    Limits::max_frame_bytes - kFrameHeaderBytes - kFrameChecksumBytes;
static_assert(kFrameMagic.size() == 4);

enum class FrameKind : std::uint8_t {
  message = 1,
  hard_state = 2,
};
inline constexpr std::uint8_t kMaxFrameKind = 2;

// Fixed sizes of the payload parts, exposed so callers can budget batches without encoding.
// Every message field but the entries and the payload bytes: type, flags, ten u64 fields, the
// entry count and the payload length.
inline constexpr std::size_t kMessageFixedBytes = 1 + 1 + 10 * 8 + 4 + 4;
inline constexpr std::size_t kEntryFixedBytes = 8 + 8 + 1 + 4;        // up to the data bytes
inline constexpr std::size_t kChainViewBytes = 8 + 32;                 // height, tip
inline constexpr std::size_t kChainQuorumBytes = 8;                    // quorum height
inline constexpr std::size_t kHardStateBytes = 3 * 8;

// --- messages ---

// OK if `message` can be encoded: a known type, known entry types, at most
// Limits::max_entries_per_message entries of at most Limits::max_entry_data_bytes each, a payload
// of at most Limits::max_entry_data_bytes (Limits::max_snapshot_payload_bytes for a snapshot), and a frame (entries and payload included) of at most
// Limits::max_frame_bytes. Otherwise Errc::invalid_argument saying which limit.
Status check_message_limits(const Message& message);

// The exact size of encode_message(message), frame included. Lets the leader size its batches.
std::size_t encoded_message_size(const Message& message);

// Encodes a message frame. The message must pass check_message_limits (asserted): building an
// oversized message is a bug in the caller, which must split or refuse it first.
std::string encode_message(const Message& message);

// Decodes exactly one message frame; `frame` must hold that frame and nothing else.
Result<Message> decode_message(std::string_view frame);

// --- hard state ---

std::string encode_hard_state(const HardState& state);
Result<HardState> decode_hard_state(std::string_view frame);

// --- framing ---

// Given at least the kFrameHeaderBytes first bytes of a frame (asserted), the total size of the
// frame, header and checksum included. Checks magic, version, kind and the declared length against
// Limits::max_frame_bytes, so a reader can refuse an oversized frame before buffering it.
Result<std::size_t> frame_length(std::string_view prefix);

// --- bare entries (no frame, no checksum) ---
// For storage that wraps entries in its own checksummed records, such as the WAL.

std::size_t encoded_entry_size(const Entry& entry);

// Appends the entry's encoding (the per-entry layout above) to `out`. The entry must have a known
// type and at most Limits::max_entry_data_bytes of data (asserted).
void encode_entry(const Entry& entry, std::string& out);

// Decodes exactly one bare entry; `bytes` must hold that entry and nothing else. Byte offsets in
// errors count from the start of `bytes`.
Result<Entry> decode_entry(std::string_view bytes);

}  // namespace anya::engine
