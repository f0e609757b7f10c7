// The few DNS messages discovery needs (RFC 1035, RFC 2782 SRV, RFC 6891 EDNS0): a query for
// one name and type, and a parser for the answer that keeps the SRV and A records. Pure (bytes
// in, records out), so it is unit-tested and fuzzed apart from the socket code.
//
// Why our own rather than libresolv: res_nquery blocks, and the node's io_context thread must
// never block; a query here is one datagram, and the parser is a few hundred lines we can bound
// and fuzz. The parser is defensive: every length is checked before it is used, compression
// pointers must point backwards (so they cannot loop), names are at most 255 bytes, and record
// counts are capped. A bad packet is Errc::malformed with a message naming what was wrong and
// where.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::transport::dns {

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeSrv = 33;
inline constexpr std::uint16_t kTypeOpt = 41;
inline constexpr std::uint16_t kClassIn = 1;
// What we advertise with EDNS0, and the largest datagram we read: enough for about 60 SRV
// records with their A records; more comes over TCP (the answer says it was truncated).
inline constexpr std::size_t kUdpPayloadBytes = 4096;
inline constexpr std::size_t kMaxMessageBytes = 65535;  // TCP's 16-bit length prefix
inline constexpr std::size_t kMaxRecords = 4096;        // all sections together
inline constexpr std::size_t kMaxNameBytes = 255;       // wire form, RFC 1035 §2.3.4

enum class Rcode : std::uint8_t {
  no_error = 0,
  format_error = 1,
  server_failure = 2,
  nxdomain = 3,
  not_implemented = 4,
  refused = 5,
};
const char* rcode_name(std::uint8_t rcode);

struct SrvRecord {
  std::string owner;      // lower case, no trailing dot
  std::uint32_t ttl_s = 0;
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;     // lower case, no trailing dot; "" is the root (".": no service)
};

struct ARecord {
  std::string owner;
  std::uint32_t ttl_s = 0;
  std::array<std::uint8_t, 4> address{};

  std::string address_text() const;
};

struct Message {
  std::uint16_t id = 0;
  bool response = false;
  bool truncated = false;
  std::uint8_t rcode = 0;          // the header's 4 bits (extended rcodes are not used here)
  std::string question_name;       // lower case, no trailing dot
  std::uint16_t question_type = 0;
  // Records of these types from the answer and additional sections; others are skipped.
  std::vector<SrvRecord> srv;
  std::vector<ARecord> a;
};

// "_anya-ha._tcp.Example." -> "_anya-ha._tcp.example": lower case, no trailing dot.
std::string normalize_name(std::string_view name);

// A recursive query for `name` of `type`, with an EDNS0 OPT record advertising
// kUdpPayloadBytes. Errc::invalid_argument when the name has an empty or over-long label or is
// longer than kMaxNameBytes.
Result<std::string> encode_query(std::uint16_t id, std::string_view name, std::uint16_t type);

// Parses a whole message. Errc::malformed naming the part that is wrong.
Result<Message> parse_message(std::string_view bytes);

}  // namespace anya::transport::dns
