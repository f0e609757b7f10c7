// Fencing at the protected resource. A leader's fencing token (its term: ClusterManager::lease(),
// GET /v1/lease, `anya-ha ctl lease`) grows with every leadership, but only the resource can
// make that count: a deposed leader (paused, partitioned, slow) may still send a request after its
// successor has acted. A FencingGuard sits in front of the resource (a signer, an HSM front, a
// database writer) and remembers, durably, the highest token it has accepted:
//
//   - a token below the highest is refused (Errc::conflict): a newer leader has acted;
//   - a token equal to the highest is accepted (one leadership sends many requests);
//   - a higher token is written to disk (temp file, fsync, rename, fsync of the directory) before
//     it is accepted, so a restart, or a crash at any point, never lowers the bar;
//   - with_token() runs the protected action under the guard's lock, so once a higher token has
//     been admitted no action under a lower one can start, even one whose check came first.
//
// The state file is 24 bytes, little-endian, checksummed:
//
//   offset  size  field
//   0       8     magic "ANYAFENC"
//   8       4     format version, 1
//   12      8     the highest token accepted (0: none yet)
//   20      4     CRC-32C of bytes [0, 20)
//
// A file that fails these checks is refused with an error naming the file, the field and its byte
// offset, and is left exactly as found: rebuilding it is a decision for a person who knows the
// highest token ever used (writing a lower one would readmit a deposed leader). The guard also
// holds an exclusive lock (flock on PATH.lock) for its lifetime: two guards over one file would
// each keep their own highest token, and one could then accept what the other had fenced off.
//
// Assumptions (docs/guarantees.md): every request to the resource passes through the guard, the
// state file is never deleted or rolled back, and the disk honours fsync.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "engine/base/result.hpp"

namespace anya {

// The state file's layout (see above); exposed so tests and tools can name offsets.
struct FencingFile {
  static constexpr std::string_view kMagic = "ANYAFENC";
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::size_t kMagicOffset = 0;
  static constexpr std::size_t kVersionOffset = 8;
  static constexpr std::size_t kTokenOffset = 12;
  static constexpr std::size_t kChecksumOffset = 20;
  static constexpr std::size_t kBytes = 24;
  // A file this large is not ours; read_small_file refuses it before reading.
  static constexpr std::size_t kMaxReadBytes = 4096;
  static_assert(kMagic.size() == kVersionOffset - kMagicOffset);
  static_assert(kTokenOffset == kVersionOffset + sizeof(std::uint32_t));
  static_assert(kChecksumOffset == kTokenOffset + sizeof(std::uint64_t));
  static_assert(kBytes == kChecksumOffset + sizeof(std::uint32_t));
  static_assert(kBytes <= kMaxReadBytes);

  // The 24 bytes that record `token`.
  static std::string encode(std::uint64_t token);
  // The token recorded in `bytes`, read from `path` (named in every error). Errc::corrupt for a
  // wrong size, magic or checksum, Errc::unsupported for another version; each names the field
  // and its byte offset.
  static Result<std::uint64_t> decode(std::string_view bytes, const std::filesystem::path& path);
};

namespace fencing_detail {
// What with_token() returns for an action returning R: the action's own Status or Result<T> as
// is, Status for void, Result<R> for anything else.
template <typename R>
struct Wrap {
  using type = Result<R>;
};
template <>
struct Wrap<void> {
  using type = Status;
};
template <>
struct Wrap<Status> {
  using type = Status;
};
template <typename T>
struct Wrap<Result<T>> {
  using type = Result<T>;
};
}  // namespace fencing_detail

class FencingGuard {
 public:
  // Opens the state file at `path`, creating it (mode 0600, token 0) when missing; the directory
  // must exist. A temp file left by a crash mid-write (PATH.tmp) is removed: its token was never
  // accepted, since acceptance waits for the rename. Errors: Errc::corrupt / unsupported for a
  // damaged file (left as it was), Errc::busy when another guard holds the file, Errc::io_error
  // naming the path and the system's reason, Errc::invalid_argument for an empty path.
  static Result<std::unique_ptr<FencingGuard>> open(const std::filesystem::path& path);

  ~FencingGuard();
  FencingGuard(const FencingGuard&) = delete;
  FencingGuard& operator=(const FencingGuard&) = delete;

  // Checks `token` and, when it is new and higher, makes it durable; no action runs. Errors:
  // Errc::invalid_argument for token 0, Errc::conflict for a token below the highest accepted,
  // Errc::io_error when the state cannot be written (after which the guard refuses every token
  // until it is reopened: what reached the disk is then unknown, so it fails closed).
  Status admit(std::uint64_t token);

  // Admits `token` as admit() does and, if it is accepted, runs `action()` before letting any
  // other token in: the check and the action are one step. The action runs on the calling
  // thread with the guard's lock held, so actions run one at a time; it must finish its effect on
  // the resource before it returns (not hand it to another thread), and must not call back into
  // this guard. Returns the admission error, or what the action returned (see Wrap).
  template <typename F>
  auto with_token(std::uint64_t token, F&& action) ->
      typename fencing_detail::Wrap<std::invoke_result_t<F&>>::type;

  // The highest token accepted so far (0: none).
  std::uint64_t highest() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Lock;  // the flock on PATH.lock
  FencingGuard(std::filesystem::path path, std::unique_ptr<Lock> lock, std::uint64_t highest);
  // admit(), with mutex_ held by the caller.
  Status admit_locked(std::uint64_t token);

  const std::filesystem::path path_;
  const std::unique_ptr<Lock> lock_;
  mutable std::mutex mutex_;  // guards everything below; held across with_token()'s action
  // Invariant: the state file on disk records exactly highest_ (unless failed_ is set).
  std::uint64_t highest_ = 0;
  // Set when a write of the state failed: every later token is refused with this reason.
  std::optional<std::string> failed_;
};

template <typename F>
auto FencingGuard::with_token(std::uint64_t token, F&& action) ->
    typename fencing_detail::Wrap<std::invoke_result_t<F&>>::type {
  using R = std::invoke_result_t<F&>;
  std::lock_guard lock(mutex_);
  if (Status s = admit_locked(token); !s) return s;
  ANYA_ASSERT(highest_ == token);  // the action runs under the newest token, never an older one
  if constexpr (std::is_void_v<R>) {
    action();
    return Status{};
  } else {
    return action();
  }
}

}  // namespace anya
