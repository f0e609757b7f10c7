#include "engine/base/result.hpp"

namespace anya {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::malformed: return "malformed";
    case Errc::unsupported: return "unsupported";
    case Errc::not_leader: return "not_leader";
    case Errc::io_error: return "io_error";
    case Errc::corrupt: return "corrupt";
    case Errc::busy: return "busy";
    case Errc::conflict: return "conflict";
    case Errc::not_found: return "not_found";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(errc_name(code_)) + ": " + message_;
}

}  // namespace anya
