#include "transport/tls/identity.hpp"

#include <limits>
#include <utility>

namespace anya::transport::tls {
namespace {

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// Why `name` is not a valid client name, or empty if it is.
std::string client_name_problem(std::string_view name) {
  if (name.empty()) return "client name is empty";
  if (name.size() > kMaxClientNameBytes) {
    return "client name is " + std::to_string(name.size()) + " characters long; at most " +
           std::to_string(kMaxClientNameBytes) + " are allowed";
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i])) {
      return "client name has a character outside [A-Za-z0-9._-] at position " +
             std::to_string(i);
    }
  }
  return {};
}

// Parses a canonical decimal u64 > 0: digits only, no leading zero, no overflow.
Result<std::uint64_t> parse_node_id(std::string_view digits) {
  if (digits.empty()) return {Errc::invalid_argument, "node id is empty"};
  if (digits.size() > kMaxNodeIdDigits) {
    return {Errc::invalid_argument, "node id has more than " +
                                        std::to_string(kMaxNodeIdDigits) + " digits"};
  }
  std::uint64_t value = 0;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return {Errc::invalid_argument, "node id is not a decimal number"};
    }
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (kMax - digit) / 10) {
      return {Errc::invalid_argument, "node id does not fit in 64 bits"};
    }
    value = value * 10 + digit;
  }
  if (value == 0) return {Errc::invalid_argument, "node id must be positive, not 0"};
  if (digits.front() == '0') {
    return {Errc::invalid_argument, "node id has a leading zero (not canonical)"};
  }
  return value;
}

// The input quoted for an error message: a hostile peer's certificate must not be able to put
// control characters or kilobytes into our logs.
std::string quote_for_message(std::string_view text) {
  constexpr std::size_t kMaxQuotedBytes = 100;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxQuotedBytes; ++i) {
    const char c = text[i];
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > kMaxQuotedBytes) out += "...";
  return out + "\"";
}

}  // namespace

Identity Identity::node(std::uint64_t id) {
  Identity out;
  out.kind = Kind::node;
  out.node_id = id;
  return out;
}

Identity Identity::client(std::string name) {
  Identity out;
  out.kind = Kind::client;
  out.client_name = std::move(name);
  return out;
}

std::string Identity::to_string() const {
  ANYA_ASSERT(validate_identity(*this).is_ok());
  if (kind == Kind::node) return std::string(kNodeUriPrefix) + std::to_string(node_id);
  return std::string(kClientUriPrefix) + client_name;
}

std::string Identity::describe() const {
  if (kind == Kind::node) return "node " + std::to_string(node_id);
  return "client " + client_name;
}

Status validate_identity(const Identity& id) {
  if (id.kind == Identity::Kind::node) {
    if (id.node_id == 0) return {Errc::invalid_argument, "node_id: must be positive, not 0"};
    if (!id.client_name.empty()) {
      return {Errc::invalid_argument, "client_name: must be empty for a node identity"};
    }
    return Status::ok();
  }
  ANYA_ASSERT(id.kind == Identity::Kind::client);
  if (id.node_id != 0) {
    return {Errc::invalid_argument, "node_id: must be 0 for a client identity"};
  }
  if (auto problem = client_name_problem(id.client_name); !problem.empty()) {
    return {Errc::invalid_argument, "client_name: " + problem};
  }
  return Status::ok();
}

Result<Identity> parse_identity(std::string_view uri) {
  const std::string quoted = "identity URI " + quote_for_message(uri);
  if (uri.starts_with(kNodeUriPrefix)) {
    auto id = parse_node_id(uri.substr(kNodeUriPrefix.size()));
    if (!id) return {Errc::invalid_argument, quoted + ": " + id.status().message()};
    return Identity::node(*id);
  }
  if (uri.starts_with(kClientUriPrefix)) {
    const std::string_view name = uri.substr(kClientUriPrefix.size());
    if (auto problem = client_name_problem(name); !problem.empty()) {
      return {Errc::invalid_argument, quoted + ": " + problem};
    }
    return Identity::client(std::string(name));
  }
  return {Errc::invalid_argument, quoted + ": expected " + std::string(kNodeUriPrefix) +
                                      "<id> or " + std::string(kClientUriPrefix) + "<name>"};
}

}  // namespace anya::transport::tls
