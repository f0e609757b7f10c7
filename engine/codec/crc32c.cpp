#include "engine/codec/crc32c.hpp"

#include <array>

namespace anya::engine {
namespace {

// The Castagnoli polynomial 0x1EDC6F41, bit-reversed because the CRC is computed LSB first.
constexpr std::uint32_t kPolynomialReflected = 0x82F63B78u;

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1u) != 0 ? (crc >> 1) ^ kPolynomialReflected : crc >> 1;
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();
// Spot checks against the published table (RFC 3720, appendix B.4) so a typo in the polynomial
// fails the build rather than silently producing a different checksum.
static_assert(kTable[1] == 0xF26B8303u);
static_assert(kTable[128] == 0x82F63B78u);
static_assert(kTable[255] == 0xAD7D5351u);

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view data) {
  std::uint32_t state = ~crc;
  for (const char c : data) {
    const auto byte = static_cast<std::uint8_t>(c);
    state = kTable[(state ^ byte) & 0xFFu] ^ (state >> 8);
  }
  return ~state;
}

std::uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data); }

}  // namespace anya::engine
