// CRC-32C (Castagnoli), the checksum of every codec frame and, later, of every WAL record.
// Software and table-driven (one byte per step) so it is the same on every machine and needs no
// CPU feature detection. Frames are at most 8 MiB; if checksumming ever shows up in a profile,
// slicing-by-8 or the SSE4.2 instruction can replace the loop without changing the values.
// Castagnoli rather than the zlib polynomial because it detects more error patterns at our sizes
// and is what hardware (SSE4.2, ARMv8) accelerates, should that ever be worth it.
#pragma once

#include <cstdint>
#include <string_view>

namespace anya::engine {

// The CRC-32C of `data`. crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::string_view data);

// Continues a checksum: crc32c_extend(crc32c(a), b) == crc32c(a + b), and crc32c_extend(0, b) ==
// crc32c(b). Lets the WAL checksum a record written in pieces without joining them first.
std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view data);

}  // namespace anya::engine
