// The byte cursor and writers shared by the state machine's binary formats: KV commands, the
// Bitcoin records (UTXO reservations, DLC contracts), client sessions and snapshots. Internal to
// engine/kv. Errors name the field and the byte offset, in one wording for every format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "engine/base/le_bytes.hpp"
#include "engine/base/result.hpp"

namespace anya::engine::kvwire {

inline constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

inline void put_le(std::string& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}
inline void put_u32(std::string& out, std::size_t value) {
  ANYA_ASSERT(value <= kMaxU32);
  put_le(out, value, 4);
}
inline void put_u64(std::string& out, std::uint64_t value) { put_le(out, value, 8); }

inline void put_bytes(std::string& out, std::string_view bytes) {
  put_u32(out, bytes.size());
  out.append(bytes);
}

// A cursor that never reads past its view. The first error sticks; later reads return zeros and
// empty views and do not move, so a decoder can read a group of fields and check once.
class Reader {
 public:
  Reader(std::string_view bytes, Errc error_code, const char* what)
      : bytes_(bytes), error_code_(error_code), what_(what) {}

  std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(take_le(1, field)); }
  std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(take_le(4, field)); }
  std::uint64_t u64(const char* field) { return take_le(8, field); }

  // A u32 length (checked against `max` before anything is read) followed by that many bytes;
  // errors name the "<field> length" or the "<field>" bytes.
  std::string_view sized(const char* field, std::size_t min, std::size_t max) {
    const std::size_t length_offset = pos_;
    const std::string length_field = std::string(field) + " length";
    const std::uint32_t length = u32(length_field.c_str());
    if (!ok()) return {};
    if (length < min || length > max) {
      fail_at(length_field + " " + std::to_string(length) + " outside " +
                  std::to_string(min) + ".." + std::to_string(max),
              length_offset);
      return {};
    }
    if (!need(length, field)) return {};
    const std::string_view out = bytes_.substr(pos_, length);
    pos_ += length;
    return out;
  }

  // Exactly `count` bytes (a fixed-width field such as a 32-byte hash).
  std::string_view fixed(const char* field, std::size_t count) {
    if (!need(count, field)) return {};
    const std::string_view out = bytes_.substr(pos_, count);
    pos_ += count;
    return out;
  }

  void fail_at(const std::string& problem, std::size_t offset) {
    if (!status_.is_ok()) return;
    status_ = Status(error_code_,
                     std::string(what_) + ": " + problem + " at byte offset " +
                         std::to_string(offset));
  }
  void fail_with(Status status) {
    ANYA_ASSERT(!status.is_ok());
    if (status_.is_ok()) status_ = std::move(status);
  }

  void expect_end() {
    if (ok() && remaining() != 0) {
      fail_at(std::to_string(remaining()) + " trailing bytes", pos_);
    }
  }

  bool ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const {
    ANYA_ASSERT(pos_ <= bytes_.size());
    return bytes_.size() - pos_;
  }

 private:
  bool need(std::size_t count, const char* field) {
    if (!ok()) return false;
    if (count > remaining()) {
      fail_at(std::string(field) + " truncated: needs " + std::to_string(count) + " bytes, " +
                  std::to_string(remaining()) + " remain",
              pos_);
      return false;
    }
    return true;
  }

  std::uint64_t take_le(std::size_t width, const char* field) {
    ANYA_ASSERT(width >= 1 && width <= 8);
    if (!need(width, field)) return 0;
    const std::uint64_t value = le::get(bytes_, pos_, width);
    pos_ += width;
    return value;
  }

  std::string_view bytes_;
  Errc error_code_;
  const char* what_;  // "kv command" or "kv snapshot", the start of every message
  std::size_t pos_ = 0;
  Status status_;
};

}  // namespace anya::engine::kvwire
