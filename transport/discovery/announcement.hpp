// The multicast announcement on the wire, and the cluster secret that authenticates it.
//
//   "ANYD" | version (1) | cluster length (1) | cluster | node id (8, big-endian)
//   | address length (1) | address | timestamp ms (8) | nonce (8) | HMAC-SHA256 (32)
//
// The MAC covers every byte before it, the magic and version included, under the cluster
// secret (a file, the same on every node). Decoding checks the structure (each failure is
// Errc::malformed naming the field) and computes the MAC; whether to believe the announcement
// (cluster, MAC, replay window, nonce) is engine/discovery/announcement_filter.hpp's decision.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/discovery/announcement_filter.hpp"

namespace anya::transport::discovery {

inline constexpr std::uint8_t kAnnouncementVersion = 1;
inline constexpr std::size_t kMacBytes = 32;
inline constexpr std::size_t kMaxAnnouncementBytes = 512;
inline constexpr std::size_t kMaxClusterBytes = 64;
inline constexpr std::size_t kMaxAddressBytes = 255;
inline constexpr std::size_t kMinSecretBytes = 16;
inline constexpr std::size_t kMaxSecretFileBytes = 4096;

// Asserts the field limits (the node's own announcement: its config was validated).
std::string encode_announcement(const engine::discovery::Announcement& a,
                                std::string_view secret);

struct DecodedAnnouncement {
  engine::discovery::Announcement announcement;
  bool mac_ok = false;
};
Result<DecodedAnnouncement> decode_announcement(std::string_view bytes, std::string_view secret);

// The secret file's bytes, trailing whitespace removed. Refused (Errc::invalid_argument, naming
// `field` and the file): unreadable, larger than kMaxSecretFileBytes, shorter than
// kMinSecretBytes, or readable by group or others (it lets its holder announce members).
Result<std::string> load_cluster_secret(const std::filesystem::path& file,
                                        const std::string& field);

}  // namespace anya::transport::discovery
