#include "sim/disk.hpp"

#include <algorithm>
#include <limits>

#include "engine/codec/codec.hpp"
#include "engine/codec/crc32c.hpp"

namespace anya::sim {

namespace {
// Record: length u32 (of type + payload), crc32c u32 of the length, crc32c u32 of type +
// payload, type u8, payload. The length has its own checksum so that a flipped length cannot
// pass for a torn (short) record: only a record cut short by a crash is ever dropped.
constexpr std::uint8_t kRecordEntries = 1;     // payload: first index u64, count u32, entries
constexpr std::uint8_t kRecordHardState = 2;   // payload: a hard state frame (codec)
// payload: index u64, term u64, membership length u32, membership (engine encoding), data
constexpr std::uint8_t kRecordSnapshot = 3;
constexpr std::uint8_t kRecordCompact = 4;     // payload: index u64
constexpr std::size_t kRecordHeaderBytes = 12;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(std::string_view bytes, std::size_t at, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; i++) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return v;
}
constexpr engine::Index kNoChange = std::numeric_limits<engine::Index>::max();
}  // namespace

void SimDisk::add_record(std::uint8_t type, const std::string& payload) {
  std::string body(1, static_cast<char>(type));
  body += payload;
  std::string length;
  put_u32(length, static_cast<std::uint32_t>(body.size()));
  pending_ += length;
  put_u32(pending_, engine::crc32c(length));
  put_u32(pending_, engine::crc32c(body));
  pending_ += body;
  pending_ends_.push_back(pending_.size());
}

Status SimDisk::append(const std::vector<engine::Entry>& entries) {
  if (entries.empty()) return {};
  std::string payload;
  put_u64(payload, entries.front().index);
  put_u32(payload, static_cast<std::uint32_t>(entries.size()));
  for (const engine::Entry& e : entries) {
    put_u32(payload, static_cast<std::uint32_t>(engine::encoded_entry_size(e)));
    engine::encode_entry(e, payload);
  }
  add_record(kRecordEntries, payload);
  changed_from_ = std::min(changed_from_, entries.front().index);
  return {};
}

Status SimDisk::save_snapshot(const engine::SnapshotMeta& meta, std::string_view data) {
  std::string payload;
  put_u64(payload, meta.index);
  put_u64(payload, meta.term);
  const std::string members = engine::encode_membership(meta.membership);
  put_u32(payload, static_cast<std::uint32_t>(members.size()));
  payload += members;
  payload.append(data);
  add_record(kRecordSnapshot, payload);
  snapshots_saved_++;
  // An installed snapshot may replace the log: the checker rehashes from there.
  changed_from_ = std::min(changed_from_, meta.index + 1);
  return {};
}

Status SimDisk::compact(engine::Index index) {
  if (before_compact) before_compact();
  std::string payload;
  put_u64(payload, index);
  add_record(kRecordCompact, payload);
  return {};
}

Status SimDisk::save_hard_state(const engine::HardState& state) {
  add_record(kRecordHardState, engine::encode_hard_state(state));
  return {};
}

Status SimDisk::sync() {
  if (fail_next_sync_) {
    fail_next_sync_ = false;
    return {Errc::io_error, "simulated disk: fsync failed"};
  }
  for (std::size_t end : pending_ends_) durable_ends_.push_back(durable_.size() + end);
  durable_ += pending_;
  pending_.clear();
  pending_ends_.clear();
  syncs_++;
  return {};
}

void SimDisk::crash(Prng& rng, std::uint32_t torn_ppm) {
  if (!pending_.empty() && rng.chance(torn_ppm, 1'000'000)) {
    // Part of the pending tail reached the platter before the power went.
    const std::size_t kept = rng.between(1, pending_.size());
    const std::size_t base = durable_.size();
    for (std::size_t end : pending_ends_) {
      durable_ends_.push_back(base + std::min(end, kept));
      if (end >= kept) break;
    }
    durable_ += pending_.substr(0, kept);
  }
  pending_.clear();
  pending_ends_.clear();
  changed_from_ = 1;
}

void SimDisk::flip_bit(Prng& rng) {
  if (durable_.empty()) return;
  const std::size_t at = rng.below(durable_.size());
  durable_[at] = static_cast<char>(durable_[at] ^ (1u << rng.below(8)));
}

engine::Index SimDisk::take_changed_from() {
  const engine::Index from = changed_from_;
  changed_from_ = kNoChange;
  return from;
}

namespace {
// One intact record onto the state being loaded. `base`: entries[k].index == base + 1 + k.
void replay_record(engine::RestoredState& state, engine::Index& base, std::uint8_t type,
                   std::string_view body) {
  auto& entries = state.entries;
  if (type == kRecordHardState) {
    Result<engine::HardState> hs = engine::decode_hard_state(body);
    ANYA_ASSERT(hs.is_ok());  // we wrote it and its checksum holds
    state.hard_state = *hs;
  } else if (type == kRecordEntries) {
    const engine::Index first = get_le(body, 0, 8);
    const std::uint32_t count = static_cast<std::uint32_t>(get_le(body, 8, 4));
    ANYA_ASSERT(first > base && first <= base + entries.size() + 1);
    entries.resize(first - 1 - base);
    std::size_t at = 12;
    for (std::uint32_t i = 0; i < count; i++) {
      const std::size_t size = get_le(body, at, 4);
      Result<engine::Entry> e = engine::decode_entry(body.substr(at + 4, size));
      ANYA_ASSERT(e.is_ok());
      entries.push_back(std::move(e).value());
      at += 4 + size;
    }
  } else if (type == kRecordSnapshot) {
    engine::Snapshot snap;
    snap.meta.index = get_le(body, 0, 8);
    snap.meta.term = get_le(body, 8, 8);
    const std::size_t members = get_le(body, 16, 4);
    Result<engine::Membership> m = engine::decode_membership(body.substr(20, members));
    ANYA_ASSERT(m.is_ok());
    snap.meta.membership = std::move(m).value();
    snap.data = std::string(body.substr(20 + members));
    // StoragePort::save_snapshot: entries that do not continue the snapshot go.
    const engine::Index s = snap.meta.index;
    const bool continues = s <= base || (s <= base + entries.size() &&
                                         entries[s - base - 1].term == snap.meta.term);
    if (!continues) {
      entries.clear();
      base = s;
    }
    state.snapshot = std::move(snap);
  } else {
    ANYA_ASSERT(type == kRecordCompact);
    const engine::Index through = get_le(body, 0, 8);
    ANYA_ASSERT(state.snapshot && through <= state.snapshot->meta.index);
    if (through > base) {
      const std::size_t n = std::min<std::size_t>(through - base, entries.size());
      entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(n));
      base += n;
    }
  }
}
}  // namespace

Result<engine::RestoredState> SimDisk::load() {
  engine::RestoredState state;
  engine::Index base = 0;
  std::size_t start = 0;
  for (std::size_t r = 0; r < durable_ends_.size(); r++) {
    const std::size_t end = durable_ends_[r];
    const bool last = r + 1 == durable_ends_.size();
    std::string_view rec(durable_.data() + start, end - start);
    // Torn: the crash cut the record short (its header, or its body per a trusted length).
    const bool header_whole = rec.size() >= kRecordHeaderBytes;
    const bool length_ok =
        header_whole && get_le(rec, 4, 4) == engine::crc32c(rec.substr(0, 4));
    const bool torn = !header_whole || (length_ok && get_le(rec, 0, 4) > rec.size() -
                                                                      kRecordHeaderBytes);
    if (torn && last) {
      // The write never completed, so no sync covered it and nothing depended on it.
      durable_.resize(start);
      durable_ends_.pop_back();
      torn_dropped_++;
      break;
    }
    const bool intact = length_ok && !torn &&
                        get_le(rec, 0, 4) == rec.size() - kRecordHeaderBytes &&
                        get_le(rec, 8, 4) == engine::crc32c(rec.substr(kRecordHeaderBytes));
    if (!intact) {
      // A whole record failing a checksum was written and may have been synced: dropping it
      // could lose a vote or an acknowledged entry. Refuse to start instead.
      return Status(Errc::corrupt, "simulated disk: record " + std::to_string(r) +
                                       " at byte offset " + std::to_string(start) +
                                       " fails its checksum");
    }
    std::string_view body = rec.substr(kRecordHeaderBytes);
    const std::uint8_t type = static_cast<std::uint8_t>(body[0]);
    body.remove_prefix(1);
    replay_record(state, base, type, body);
    start = end;
  }
  changed_from_ = 1;
  return state;
}

}  // namespace anya::sim
