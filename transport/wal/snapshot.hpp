// Snapshots of the state machine: one file, <dir>/snapshot, replaced atomically (write
// snapshot.tmp, fsync, rename, fsync the directory), so a crash leaves the old snapshot or the
// new one, never a mix. A leftover snapshot.tmp is ignored by load and overwritten by save.
//
// File layout (integers little-endian):
//   magic "ASNP" | format version u32 (1) | index u64 | term u64 | data length u64 (<=
//   kMaxSnapshotBytes) | data | CRC-32C of every previous byte u32
//
// Once a snapshot covering index i is saved, the WAL may compact through i (Wal::compact).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::transport {

struct SnapshotMeta {
  engine::Index index = 0;  // the last log index the snapshot covers
  engine::Term term = 0;    // the term of that entry

  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

inline constexpr std::string_view kSnapshotMagic = "ASNP";
inline constexpr std::uint32_t kSnapshotFormatVersion = 1;
inline constexpr std::size_t kSnapshotHeaderBytes = 4 + 4 + 8 + 8 + 8;
inline constexpr std::size_t kSnapshotChecksumBytes = 4;
// The largest state-machine image we store. save refuses larger data (invalid_argument); load
// refuses a larger declared length (corrupt) before allocating anything for it.
inline constexpr std::uint64_t kMaxSnapshotBytes = std::uint64_t{1} << 30;
static_assert(kSnapshotMagic.size() == 4);

// Why `meta` cannot be a snapshot's, or "" when it can. A snapshot covers at least entry 1, of
// a real term, within the engine's limits: an index of 0 has no place in the log, and one near
// 2^64 would wrap index + 1. The same rule holds for snapshot records in the segments.
std::string snapshot_meta_problem(SnapshotMeta meta);

// Writes the snapshot durably, creating `dir` if missing. Refuses (invalid_argument) a meta that
// snapshot_meta_problem() faults or data over kMaxSnapshotBytes.
Status save_snapshot(const std::filesystem::path& dir, SnapshotMeta meta, std::string_view data,
                     bool durable = true);

// The stored snapshot, or nullopt when there is none (no file, or no directory). A damaged file is
// Errc::corrupt naming the file (and byte offset where it applies); an unknown format version is
// Errc::unsupported naming the file.
Result<std::optional<std::pair<SnapshotMeta, std::string>>> load_snapshot(
    const std::filesystem::path& dir);

}  // namespace anya::transport
