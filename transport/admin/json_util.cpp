#include "transport/admin/json_util.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace anya::transport {

// Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF): JSON text must be UTF-8.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // the sequence runs past the end
    for (std::size_t k = 1; k <= n; k++) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Text for a JSON string: as is when it is UTF-8, else every byte past ASCII as \xNN, so a
// message quoting a client's bytes never makes the answer invalid JSON.
std::string json_safe(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// False if `v` holds a number JSON cannot carry back (one that overflowed to infinity).
bool all_numbers_finite(const json::value& v) {
  if (v.is_double()) return std::isfinite(v.as_double());
  if (v.is_array()) {
    for (const json::value& e : v.as_array()) {
      if (!all_numbers_finite(e)) return false;
    }
  }
  if (v.is_object()) {
    for (const auto& kv : v.as_object()) {
      if (!all_numbers_finite(kv.value())) return false;
    }
  }
  return true;
}

AdminResponse json_response(int status, const json::value& v) {
  return AdminResponse{status, "application/json", json::serialize(v) + "\n", {}};
}

AdminResponse bad_request(std::string message) {
  return error_response(ApiError{Status(Errc::invalid_argument, std::move(message))});
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Parses a JSON object body, refusing anything else with a message naming what is wrong.
std::optional<json::object> parse_object(const std::string& body, std::string& error) {
  json::parse_options opts;
  opts.max_depth = AdminLimits::max_json_depth;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) {
    error = "body is not valid JSON: " + ec.message();
    return std::nullopt;
  }
  if (!v.is_object()) {
    error = "body must be a JSON object";
    return std::nullopt;
  }
  if (!all_numbers_finite(v)) {
    error = "body holds a number too large to represent";
    return std::nullopt;
  }
  return v.as_object();
}

// Reads an optional unsigned integer field; false (with `error` set) if present but not one.
bool read_u64(const json::object& o, std::string_view field, std::optional<std::uint64_t>& out,
              std::string& error) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || v->is_null()) return true;
  if (v->is_uint64()) out = v->as_uint64();
  else if (v->is_int64() && v->as_int64() >= 0) out = static_cast<std::uint64_t>(v->as_int64());
  else {
    error = std::string(field) + ": expected a non-negative whole number";
    return false;
  }
  return true;
}

bool only_fields(const json::object& o, std::initializer_list<std::string_view> allowed,
                 std::string& error) {
  for (const auto& kv : o) {
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || kv.key() == a;
    if (!ok) {
      error = std::string(kv.key()) + ": unknown field";
      return false;
    }
  }
  return true;
}

}  // namespace anya::transport
