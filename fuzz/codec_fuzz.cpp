// libFuzzer target for the wire codec. Whatever the bytes, decoding must not crash, read out of
// bounds or allocate beyond the limits; and whatever decodes must re-encode to the very same
// bytes (the encoding is canonical) and decode again to an equal value. Each input is tried as a
// message frame, a hard state frame and a bare entry.
//
// A random mutation almost always breaks the trailing CRC, which would keep the fuzzer out of the
// payload decoder. So each input is also tried with its checksum recomputed: the production code
// keeps its check, and the fuzzer still explores every payload path behind it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/codec/codec.hpp"
#include "engine/codec/crc32c.hpp"

namespace {

using namespace anya::engine;

void check_message(std::string_view bytes) {
  const anya::Result<Message> decoded = decode_message(bytes);
  if (!decoded.is_ok()) {
    ANYA_ASSERT(!decoded.status().message().empty());  // every rejection says why
    return;
  }
  const std::string reencoded = encode_message(*decoded);
  ANYA_ASSERT(reencoded == bytes);
  const anya::Result<Message> again = decode_message(reencoded);
  ANYA_ASSERT(again.is_ok());
  ANYA_ASSERT(*again == *decoded);
}

void check_hard_state(std::string_view bytes) {
  const anya::Result<HardState> decoded = decode_hard_state(bytes);
  if (!decoded.is_ok()) {
    ANYA_ASSERT(!decoded.status().message().empty());
    return;
  }
  const std::string reencoded = encode_hard_state(*decoded);
  ANYA_ASSERT(reencoded == bytes);
  const anya::Result<HardState> again = decode_hard_state(reencoded);
  ANYA_ASSERT(again.is_ok());
  ANYA_ASSERT(*again == *decoded);
}

// The same bytes read as a bare entry, the WAL's unit, which has no frame and no checksum.
void check_entry(std::string_view bytes) {
  const anya::Result<Entry> decoded = decode_entry(bytes);
  if (!decoded.is_ok()) return;
  std::string reencoded;
  encode_entry(*decoded, reencoded);
  ANYA_ASSERT(reencoded == bytes);
}

// frame_length must agree with the decoder about where a frame ends.
void check_frame_length(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderBytes) return;
  const anya::Result<std::size_t> length = frame_length(bytes);
  if (!length.is_ok()) return;
  ANYA_ASSERT(*length <= Limits::max_frame_bytes);
  ANYA_ASSERT(*length >= kFrameHeaderBytes + kFrameChecksumBytes);
  if (decode_message(bytes).is_ok() || decode_hard_state(bytes).is_ok()) {
    ANYA_ASSERT(*length == bytes.size());
  }
}

void check_all(std::string_view bytes) {
  check_message(bytes);
  check_hard_state(bytes);
  check_frame_length(bytes);
  check_entry(bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_all(input);
  if (size >= kFrameHeaderBytes + kFrameChecksumBytes) {
    std::string resealed(input);
    const std::size_t at = size - kFrameChecksumBytes;
    const std::uint32_t crc = crc32c(std::string_view(resealed).substr(0, at));
    for (std::size_t i = 0; i < kFrameChecksumBytes; ++i) {
      resealed[at + i] = static_cast<char>((crc >> (8 * i)) & 0xFFu);
    }
    check_all(resealed);
  }
  return 0;
}
