#include "transport/discovery/announcement.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace anya::transport::discovery {

namespace {

constexpr std::string_view kMagic = "ANYD";

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

std::string mac_of(std::string_view bytes, std::string_view secret) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* result =
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out, &length);
  ANYA_ASSERT(result != nullptr);
  ANYA_ASSERT(length == kMacBytes);
  return std::string(reinterpret_cast<const char*>(out), length);
}

Status malformed(const std::string& what) {
  return {Errc::malformed, "announcement: " + what};
}

// Reads the fields in order, never past the end.
struct Cursor {
  std::string_view bytes;
  std::size_t at = 0;
  bool take(std::size_t n, std::string_view& out) {
    if (bytes.size() - at < n) return false;
    out = bytes.substr(at, n);
    at += n;
    return true;
  }
  bool u8(std::uint8_t& out) {
    std::string_view b;
    if (!take(1, b)) return false;
    out = static_cast<std::uint8_t>(b[0]);
    return true;
  }
  bool u64(std::uint64_t& out) {
    std::string_view b;
    if (!take(8, b)) return false;
    out = 0;
    for (char c : b) out = out << 8 | static_cast<std::uint8_t>(c);
    return true;
  }
  bool text(std::size_t max, std::string& out) {
    std::uint8_t length = 0;
    std::string_view b;
    if (!u8(length) || length > max || !take(length, b)) return false;
    out = std::string(b);
    return true;
  }
};

}  // namespace

std::string encode_announcement(const engine::discovery::Announcement& a,
                                std::string_view secret) {
  ANYA_ASSERT(!a.cluster.empty() && a.cluster.size() <= kMaxClusterBytes);
  ANYA_ASSERT(!a.address.empty() && a.address.size() <= kMaxAddressBytes);
  ANYA_ASSERT(secret.size() >= kMinSecretBytes);
  std::string out(kMagic);
  out += static_cast<char>(kAnnouncementVersion);
  out += static_cast<char>(a.cluster.size());
  out += a.cluster;
  put_u64(out, a.node);
  out += static_cast<char>(a.address.size());
  out += a.address;
  put_u64(out, a.timestamp_ms);
  put_u64(out, a.nonce);
  out += mac_of(out, secret);
  ANYA_ASSERT(out.size() <= kMaxAnnouncementBytes);
  return out;
}

Result<DecodedAnnouncement> decode_announcement(std::string_view bytes, std::string_view secret) {
  if (bytes.size() > kMaxAnnouncementBytes) {
    return malformed(std::to_string(bytes.size()) + " bytes, more than " +
                     std::to_string(kMaxAnnouncementBytes));
  }
  Cursor c{bytes};
  std::string_view magic;
  std::uint8_t version = 0;
  if (!c.take(kMagic.size(), magic) || magic != kMagic) return malformed("not an anya-ha one");
  if (!c.u8(version) || version != kAnnouncementVersion) {
    return malformed("version " + std::to_string(version) + ", expected " +
                     std::to_string(kAnnouncementVersion));
  }
  DecodedAnnouncement d;
  engine::discovery::Announcement& a = d.announcement;
  if (!c.text(kMaxClusterBytes, a.cluster) || a.cluster.empty()) return malformed("cluster");
  if (!c.u64(a.node)) return malformed("node id");
  if (a.node == engine::kNoNode || a.node > engine::kMaxNodeId) return malformed("node id");
  if (!c.text(kMaxAddressBytes, a.address) || a.address.find(':') == std::string::npos) {
    return malformed("address");
  }
  if (!c.u64(a.timestamp_ms)) return malformed("timestamp");
  if (!c.u64(a.nonce)) return malformed("nonce");
  const std::size_t signed_bytes = c.at;
  std::string_view mac;
  if (!c.take(kMacBytes, mac)) return malformed("MAC: truncated");
  if (c.at != bytes.size()) return malformed("bytes after the MAC");
  const std::string expected = mac_of(bytes.substr(0, signed_bytes), secret);
  d.mac_ok = CRYPTO_memcmp(expected.data(), mac.data(), kMacBytes) == 0;
  return d;
}

Result<std::string> load_cluster_secret(const std::filesystem::path& file,
                                        const std::string& field) {
  const std::string name = field + ": " + file.string();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return Status(Errc::invalid_argument, name + ": cannot read it (" +
                                              std::string(std::strerror(errno)) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    return Status(Errc::invalid_argument, name + ": readable by group or others; "
                                                 "chmod 600 it (it lets its holder announce "
                                                 "members)");
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretFileBytes)) {
    return Status(Errc::invalid_argument, name + ": larger than 4096 bytes");
  }
  std::ifstream in(file, std::ios::binary);
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Status(Errc::invalid_argument, name + ": read failed");
  if (secret.size() > kMaxSecretFileBytes) secret.resize(kMaxSecretFileBytes);
  const std::size_t end = secret.find_last_not_of(" \t\r\n");
  secret.resize(end == std::string::npos ? 0 : end + 1);
  if (secret.size() < kMinSecretBytes) {
    return Status(Errc::invalid_argument, name + ": " + std::to_string(secret.size()) +
                                              " bytes; at least 16 are needed (e.g. `openssl "
                                              "rand -hex 32`)");
  }
  return secret;
}

}  // namespace anya::transport::discovery
