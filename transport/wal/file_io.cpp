#include "transport/wal/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace anya::transport {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

int Fd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset() {
  // close(2) errors are not actionable here: whatever had to be durable was fsynced first.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status errno_status(std::string_view what, const std::filesystem::path& path) {
  const int error = errno;
  return {Errc::io_error,
          std::string(what) + " " + path.string() + ": " + std::strerror(error)};
}

Result<Fd> open_file(const std::filesystem::path& path, int flags, int mode) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status("cannot open", path);
  return Fd(fd);
}

Result<Fd> open_directory(const std::filesystem::path& dir) {
  return open_file(dir, O_RDONLY | O_DIRECTORY);
}

Result<std::uint64_t> file_size(const Fd& fd, const std::filesystem::path& path) {
  ANYA_ASSERT(fd.valid());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status("cannot stat", path);
  ANYA_ASSERT(st.st_size >= 0);
  return static_cast<std::uint64_t>(st.st_size);
}

Status write_all_at(const Fd& fd, const std::filesystem::path& path, std::uint64_t offset,
                    std::string_view bytes) {
  ANYA_ASSERT(fd.valid());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd.get(), bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("cannot write", path);
    done += static_cast<std::size_t>(n);
  }
  ANYA_ASSERT(done == bytes.size());
  return {};
}

Status read_exact_at(const Fd& fd, const std::filesystem::path& path, std::uint64_t offset,
                     std::size_t size, std::string& out) {
  ANYA_ASSERT(fd.valid());
  out.resize(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd.get(), out.data() + done, size - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("cannot read", path);
    if (n == 0) {
      return {Errc::io_error, "cannot read " + path.string() + ": file ended at byte " +
                                  std::to_string(offset + done) + " (it shrank while open?)"};
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Status fsync_timed(const Fd& fd, const std::filesystem::path& path,
                   const FsyncObserver& observer) {
  ANYA_ASSERT(fd.valid());
  const auto start = std::chrono::steady_clock::now();
  int rc = 0;
  do {
    rc = ::fsync(fd.get());
  } while (rc != 0 && errno == EINTR);
  const int saved_errno = errno;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  if (observer) {
    observer(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
  }
  errno = saved_errno;
  if (rc != 0) return errno_status("cannot fsync", path);
  return {};
}

Status fsync_directory(const std::filesystem::path& dir, const FsyncObserver& observer) {
  auto fd = open_directory(dir);
  if (!fd) return fd.status();
  return fsync_timed(*fd, dir, observer);
}

Status replace_file_atomically(const std::filesystem::path& dir, std::string_view name,
                               std::initializer_list<std::string_view> pieces, bool durable,
                               const FsyncObserver& observer) {
  ANYA_ASSERT(!name.empty());
  const std::filesystem::path target = dir / name;
  const std::filesystem::path temp = dir / (std::string(name) + ".tmp");
  {
    auto fd = open_file(temp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) return fd.status();
    std::uint64_t offset = 0;
    for (std::string_view piece : pieces) {
      if (Status s = write_all_at(*fd, temp, offset, piece); !s) return s;
      offset += piece.size();
    }
    if (durable) {
      if (Status s = fsync_timed(*fd, temp, observer); !s) return s;
    }
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    return errno_status("cannot rename " + temp.string() + " to", target);
  }
  return durable ? fsync_directory(dir, observer) : Status{};
}

Result<std::string> read_small_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  auto fd = open_file(path, O_RDONLY);
  if (!fd) return fd.status();
  auto size = file_size(*fd, path);
  if (!size) return size.status();
  if (*size > max_bytes) {
    return Status(Errc::corrupt, path.string() + ": " + std::to_string(*size) +
                                     " bytes, over the maximum of " +
                                     std::to_string(max_bytes) + " for this file");
  }
  std::string bytes;
  if (Status s = read_exact_at(*fd, path, 0, static_cast<std::size_t>(*size), bytes); !s) {
    return s;
  }
  return bytes;
}

Status remove_if_exists(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status("cannot remove", path);
  return {};
}

}  // namespace anya::transport
