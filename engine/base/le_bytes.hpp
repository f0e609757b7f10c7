// Little-endian fixed-width integers, the layout of every binary format here (wire frames, WAL
// records, snapshots, KV commands, configuration records). Decoders check bounds and name the
// field themselves; these only move the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::le {

inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The `width`-byte integer at `offset`; the caller has checked the bytes are there (asserted).
inline std::uint64_t get(std::string_view bytes, std::size_t offset, std::size_t width) {
  ANYA_ASSERT(width <= 8);
  ANYA_ASSERT(offset + width <= bytes.size());
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return v;
}

}  // namespace anya::le
