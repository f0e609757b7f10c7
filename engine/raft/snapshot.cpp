#include "engine/raft/snapshot.hpp"

#include "engine/base/le_bytes.hpp"

namespace anya::engine {

namespace {
constexpr std::size_t kLengthBytes = 4;
}  // namespace

std::string encode_snapshot_envelope(const Membership& membership, std::string_view data) {
  const std::string members = encode_membership(membership);
  ANYA_ASSERT(members.size() <= 0xffffffffu);
  std::string out;
  out.reserve(kLengthBytes + members.size() + data.size());
  for (std::size_t i = 0; i < kLengthBytes; i++) {
    out.push_back(static_cast<char>((members.size() >> (8 * i)) & 0xff));
  }
  out += members;
  out.append(data);
  ANYA_ASSERT(out.size() == snapshot_envelope_size(membership, data.size()));
  return out;
}

std::size_t snapshot_envelope_size(const Membership& membership, std::size_t data_bytes) {
  return kLengthBytes + encode_membership(membership).size() + data_bytes;
}

Result<Snapshot> decode_snapshot_envelope(std::string_view payload) {
  if (payload.size() < kLengthBytes) {
    return Status(Errc::malformed, "snapshot envelope: membership length truncated at byte "
                                   "offset 0");
  }
  const std::size_t length = static_cast<std::size_t>(le::get(payload, 0, kLengthBytes));
  if (length > payload.size() - kLengthBytes) {
    return Status(Errc::malformed, "snapshot envelope: membership length " +
                                       std::to_string(length) + " exceeds the " +
                                       std::to_string(payload.size() - kLengthBytes) +
                                       " bytes remaining at byte offset 0");
  }
  Result<Membership> membership = decode_membership(payload.substr(kLengthBytes, length));
  if (!membership) {
    return Status(Errc::malformed, "snapshot envelope: " + membership.status().message());
  }
  Snapshot out;
  out.meta.membership = std::move(membership).value();
  out.data = std::string(payload.substr(kLengthBytes + length));
  return out;
}

}  // namespace anya::engine
