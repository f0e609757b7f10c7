// The admin API's JSON plumbing, shared by its routes (router.cpp, records.cpp): strict body
// parsing, typed field readers whose errors name the field, and response builders.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "transport/admin/router.hpp"

namespace anya::transport {

namespace json = boost::json;

// Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF): JSON text must be UTF-8.
bool valid_utf8(std::string_view s);
// `s` as is when it is UTF-8, else every byte past ASCII as \xNN.
std::string json_safe(std::string_view s);
AdminResponse json_response(int status, const json::value& v);
AdminResponse bad_request(std::string message);  // 400 {"error": "invalid_argument", ...}
std::optional<std::uint64_t> parse_u64(std::string_view s);
// A JSON object body, or nullopt with `error` naming what is wrong.
std::optional<json::object> parse_object(const std::string& body, std::string& error);
// An optional unsigned integer field; false (with `error` set) if present but not one.
bool read_u64(const json::object& o, std::string_view field, std::optional<std::uint64_t>& out,
              std::string& error);
// False (with `error` naming the first) if `o` has a field not in `allowed`.
bool only_fields(const json::object& o, std::initializer_list<std::string_view> allowed,
                 std::string& error);

template <typename T>
Reply<T> replying(std::function<void(AdminResponse)> respond,
                  std::function<AdminResponse(const T&)> ok) {
  return [respond = std::move(respond), ok = std::move(ok)](ApiResult<T> r) {
    respond(r.ok() ? ok(*r.value) : error_response(r.error));
  };
}

}  // namespace anya::transport
