// Who a certificate speaks for. Every anya-ha certificate names exactly one identity, in a URI
// subjectAltName, and the transport authorises by that identity rather than by host names:
//
//   anya-ha://node/<decimal node id>   a cluster member; the id is a positive 64-bit integer
//                                      written without sign or leading zeros
//   anya-ha://client/<name>            an operator or client; name is [A-Za-z0-9._-]{1,64}
//
// The spelling is canonical (parse(to_string(x)) == x and to_string(parse(s)) == s), so two
// certificates for the same identity carry byte-identical URIs and logs can be grepped for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::transport::tls {

inline constexpr std::string_view kNodeUriPrefix = "anya-ha://node/";
inline constexpr std::string_view kClientUriPrefix = "anya-ha://client/";
// Longest client name; at the limit a name is still accepted, one more character is refused.
inline constexpr std::size_t kMaxClientNameBytes = 64;
// u64 max has 20 decimal digits; more is refused before any arithmetic.
inline constexpr std::size_t kMaxNodeIdDigits = 20;

struct Identity {
  enum class Kind { node, client };

  Kind kind = Kind::node;
  std::uint64_t node_id = 0;  // Invariant: > 0 when kind == node, 0 when kind == client.
  std::string client_name;    // Invariant: valid name when kind == client, empty when node.

  static Identity node(std::uint64_t id);
  static Identity client(std::string name);

  // The canonical URI. Asserts the invariants above (a malformed Identity is a bug).
  std::string to_string() const;
  // For people: "node 4" or "client alice".
  std::string describe() const;

  friend bool operator==(const Identity&, const Identity&) = default;
};

// Parses a URI subjectAltName. Errc::invalid_argument with a message quoting the input and
// saying which part is wrong.
Result<Identity> parse_identity(std::string_view uri);

// Checks the field invariants of an Identity built by hand; the message names the field.
Status validate_identity(const Identity& id);

}  // namespace anya::transport::tls
