// Result types for the two kinds of error (see STYLE.md): a broken invariant is a bug and aborts
// through ANYA_ASSERT; a bad input or a failed operation is a value, returned as Status or Result<T>.
// No exceptions cross engine/. Kept small and our own so it compiles under g++ 12 and clang 14.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace anya {

// Assertions stay on in every build type: they state invariants, and a violated invariant in
// production must stop the node rather than let it act on a state that cannot be.
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}

#define ANYA_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::anya::assert_fail(#expr, __FILE__, __LINE__))

// A small, documented set of failure kinds; the message is for a person and names what is wrong.
enum class Errc {
  ok = 0,
  invalid_argument,  // a caller passed something malformed (flag, field, id)
  malformed,         // bytes that do not decode: truncated, oversized, bad checksum, bad tag
  unsupported,       // a version or feature this build does not speak
  not_leader,        // the operation needs the leader and this node is not it
  io_error,          // the environment failed (disk, network)
  corrupt,           // durable state fails its own checks
  busy,              // a bounded queue or window is full; retry later
  conflict,          // a compare-and-set lost: the current version is in the message
  not_found,         // the thing asked for (a key, a member, a version) does not exist
};

const char* errc_name(Errc code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {
    ANYA_ASSERT(code != Errc::ok);
  }
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == Errc::ok; }
  explicit operator bool() const { return is_ok(); }
  Errc code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT
    ANYA_ASSERT(!std::get<Status>(value_).is_ok());
  }
  Result(Errc code, std::string message) : value_(Status(code, std::move(message))) {}

  bool is_ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return is_ok(); }

  T& value() & {
    ANYA_ASSERT(is_ok());
    return std::get<T>(value_);
  }
  const T& value() const& {
    ANYA_ASSERT(is_ok());
    return std::get<T>(value_);
  }
  T&& value() && {
    ANYA_ASSERT(is_ok());
    return std::get<T>(std::move(value_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(value_);
  }

 private:
  std::variant<T, Status> value_;
};

}  // namespace anya
