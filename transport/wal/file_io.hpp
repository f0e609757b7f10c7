// Thin POSIX file helpers for the WAL and the snapshot file: an owning file descriptor, complete
// reads and writes, timed fsync, and the atomic replacement of a small file (write a temp file,
// fsync it, rename it over the old one, fsync the directory).
//
// Every failure is a Status naming the path and the errno text. Nothing here throws: the few
// std::filesystem calls use the error_code overloads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::transport {

// Observes the latency of each fsync in microseconds (metrics); may be empty.
using FsyncObserver = std::function<void(std::uint64_t micros)>;

// An owning file descriptor. Invariant: fd_ is -1 or an open descriptor this object closes.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset();

 private:
  int fd_ = -1;
};

// "<what> <path>: <strerror(errno)>", captured right after the failing call.
Status errno_status(std::string_view what, const std::filesystem::path& path);

// open(2) with O_CLOEXEC added.
// Files are created 0600: the log holds the cluster's values (wallet keys, among others).
Result<Fd> open_file(const std::filesystem::path& path, int flags, int mode = 0600);
Result<Fd> open_directory(const std::filesystem::path& dir);
Result<std::uint64_t> file_size(const Fd& fd, const std::filesystem::path& path);

// Writes all of `bytes` at `offset` (pwrite, retried on short writes and EINTR).
Status write_all_at(const Fd& fd, const std::filesystem::path& path, std::uint64_t offset,
                    std::string_view bytes);
// Reads exactly `size` bytes at `offset` into `out` (resized); a short file is io_error.
Status read_exact_at(const Fd& fd, const std::filesystem::path& path, std::uint64_t offset,
                     std::size_t size, std::string& out);

// fsync(2), timed; the latency goes to `observer` when set, whether or not fsync succeeded.
Status fsync_timed(const Fd& fd, const std::filesystem::path& path,
                   const FsyncObserver& observer);
// Opens `dir` and fsyncs it, so a created, renamed or removed name in it is durable.
Status fsync_directory(const std::filesystem::path& dir, const FsyncObserver& observer);

// Replaces dir/name by the concatenation of `pieces` atomically: a crash leaves either the old
// or the new content, never a mix. Writes dir/<name>.tmp, fsyncs it, renames it over dir/name,
// fsyncs dir. With `durable` false the two fsyncs are skipped (tests and benchmarks that ask).
// Pieces rather than one buffer so a large snapshot is not copied to add its header.
Status replace_file_atomically(const std::filesystem::path& dir, std::string_view name,
                               std::initializer_list<std::string_view> pieces, bool durable,
                               const FsyncObserver& observer);

// The whole content of a small file, refusing one larger than `max_bytes` before reading it.
// Over the limit is Errc::corrupt (the small files here are ours, and never grow that large).
// A missing file is io_error like any other open failure: callers that accept one check first.
Result<std::string> read_small_file(const std::filesystem::path& path, std::uint64_t max_bytes);

// Removes `path` if it exists; OK when it did not.
Status remove_if_exists(const std::filesystem::path& path);

}  // namespace anya::transport
