#include "engine/discovery/names.hpp"

#include <cctype>
#include <string>

namespace anya::engine::discovery {

namespace {
constexpr std::size_t kMaxDigits = 18;  // below 10^18 < kMaxNodeId: no overflow when adding
constexpr std::size_t kMaxLabelBytes = 63;  // RFC 1035

bool is_label_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
}
}  // namespace

std::optional<std::uint64_t> trailing_number(std::string_view label) {
  if (label.size() > kMaxLabelBytes) return std::nullopt;
  const std::size_t dash = label.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  const std::string_view digits = label.substr(dash + 1);
  if (digits.empty() || digits.size() > kMaxDigits) return std::nullopt;
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  for (char c : label.substr(0, dash)) {
    if (!is_label_char(c)) return std::nullopt;
  }
  std::uint64_t value = 0;
  for (char c : digits) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

Result<NodeId> node_id_from_srv_target(std::string_view target) {
  const std::string_view label = target.substr(0, target.find('.'));
  const std::optional<std::uint64_t> n = trailing_number(label);
  if (!n || *n == kNoNode) {
    return Status(Errc::invalid_argument,
                  "SRV target \"" + std::string(target.substr(0, 253)) +
                      "\" does not name a node: its first label must end in -ID, like node-3");
  }
  return NodeId{*n};
}

Result<NodeId> node_id_from_pod_name(std::string_view name, std::uint64_t offset) {
  const std::optional<std::uint64_t> n = trailing_number(name);
  if (!n) {
    return Status(Errc::invalid_argument,
                  "pod \"" + std::string(name.substr(0, 253)) +
                      "\" is not a StatefulSet pod name NAME-ORDINAL, like anya-3");
  }
  if (offset > kMaxNodeId - *n || *n + offset == kNoNode) {
    return Status(Errc::invalid_argument, "pod \"" + std::string(name) + "\": ordinal " +
                                              std::to_string(*n) + " + node_id_offset " +
                                              std::to_string(offset) + " is not a node id");
  }
  return NodeId{*n + offset};
}

}  // namespace anya::engine::discovery
