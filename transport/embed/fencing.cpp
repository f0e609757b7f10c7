#include "transport/embed/fencing.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "engine/codec/crc32c.hpp"
#include "transport/wal/file_io.hpp"

namespace anya {

namespace {

void put_le(std::string& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; i++) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

std::uint64_t get_le(std::string_view bytes, std::size_t offset, std::size_t width) {
  ANYA_ASSERT(offset + width <= bytes.size());
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; i++) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// "fencing state PATH: byte offset N (FIELD): WHAT; the file is left as it is".
Status damaged(Errc code, const std::filesystem::path& path, std::size_t offset,
               std::string_view field, const std::string& what) {
  return {code, "fencing state " + path.string() + ": byte offset " + std::to_string(offset) +
                    " (" + std::string(field) + "): " + what +
                    "; the file is left as it is (restore it from a copy, or write a new one "
                    "only knowing the highest token ever used)"};
}

std::filesystem::path sibling(const std::filesystem::path& path, std::string_view suffix) {
  return path.parent_path() / (path.filename().string() + std::string(suffix));
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
  return path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
}

// Writes `token` as the new state: temp file, fsync, rename over, fsync the directory
// (replace_file_atomically). Only once this returns OK may the token be accepted.
Status persist(const std::filesystem::path& path, std::uint64_t token) {
  const std::string bytes = FencingFile::encode(token);
  ANYA_ASSERT(bytes.size() == FencingFile::kBytes);
  return transport::replace_file_atomically(directory_of(path), path.filename().string(),
                                            {bytes}, /*durable=*/true, {});
}

// The token in the state file, or nullopt when there is no file yet.
Result<std::optional<std::uint64_t>> read_state(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>();
    return transport::errno_status("cannot stat fencing state", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(Errc::invalid_argument,
                  "fencing state " + path.string() + ": exists and is not a regular file");
  }
  Result<std::string> bytes = transport::read_small_file(path, FencingFile::kMaxReadBytes);
  if (!bytes) return bytes.status();
  Result<std::uint64_t> token = FencingFile::decode(*bytes, path);
  if (!token) return token.status();
  return std::optional<std::uint64_t>(*token);
}

}  // namespace

// ---- the file format ----------------------------------------------------------------------------

std::string FencingFile::encode(std::uint64_t token) {
  std::string out(kMagic);
  put_le(out, kVersion, sizeof(std::uint32_t));
  put_le(out, token, sizeof(std::uint64_t));
  ANYA_ASSERT(out.size() == kChecksumOffset);
  put_le(out, engine::crc32c(out), sizeof(std::uint32_t));
  ANYA_ASSERT(out.size() == kBytes);
  return out;
}

Result<std::uint64_t> FencingFile::decode(std::string_view bytes,
                                          const std::filesystem::path& path) {
  // Magic and version first: another version may have another size and checksum place.
  if (bytes.size() < kTokenOffset) {
    return damaged(Errc::corrupt, path, bytes.size(), "header",
                   "the file ends after " + std::to_string(bytes.size()) + " bytes; a header is " +
                       std::to_string(kTokenOffset));
  }
  if (bytes.substr(kMagicOffset, kMagic.size()) != kMagic) {
    return damaged(Errc::corrupt, path, kMagicOffset, "magic",
                   "not \"" + std::string(kMagic) + "\": not a fencing state file");
  }
  const auto version = static_cast<std::uint32_t>(get_le(bytes, kVersionOffset, 4));
  if (version != kVersion) {
    return damaged(Errc::unsupported, path, kVersionOffset, "version",
                   "format version " + std::to_string(version) + "; this build reads " +
                       std::to_string(kVersion) + " only");
  }
  if (bytes.size() != kBytes) {
    const bool short_file = bytes.size() < kBytes;
    return damaged(Errc::corrupt, path, short_file ? bytes.size() : kBytes,
                   short_file ? "truncated" : "trailing bytes",
                   "the file is " + std::to_string(bytes.size()) + " bytes; version " +
                       std::to_string(kVersion) + " is exactly " + std::to_string(kBytes));
  }
  const auto stored = static_cast<std::uint32_t>(get_le(bytes, kChecksumOffset, 4));
  const std::uint32_t computed = engine::crc32c(bytes.substr(0, kChecksumOffset));
  if (stored != computed) {
    return damaged(Errc::corrupt, path, kChecksumOffset, "crc32c",
                   "checksum " + hex32(stored) + " does not match the content's " +
                       hex32(computed) + " (bytes 0.." + std::to_string(kChecksumOffset - 1) +
                       " were changed)");
  }
  return get_le(bytes, kTokenOffset, 8);
}

// ---- the guard ----------------------------------------------------------------------------------

// flock(2) on PATH.lock, held while the guard lives. Not on PATH itself: rename() replaces that
// inode, and a second guard opening the new one would not see the first one's lock.
struct FencingGuard::Lock {
  transport::Fd fd;
};

namespace {

Result<transport::Fd> lock_file(const std::filesystem::path& path) {
  const std::filesystem::path lock_path = sibling(path, ".lock");
  Result<transport::Fd> fd = transport::open_file(lock_path, O_RDWR | O_CREAT);
  if (!fd) return fd.status();
  int rc = 0;
  do {
    rc = ::flock(fd->get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) {
      return Status(Errc::busy, "fencing state " + path.string() +
                                    ": in use by another guard (it holds " +
                                    lock_path.string() + "); one resource, one guard");
    }
    return transport::errno_status("cannot lock", lock_path);
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<FencingGuard>> FencingGuard::open(const std::filesystem::path& path) {
  if (path.empty() || !path.has_filename()) {
    return Status(Errc::invalid_argument,
                  "fencing state path: \"" + path.string() + "\" does not name a file");
  }
  Result<transport::Fd> lock_fd = lock_file(path);
  if (!lock_fd) return lock_fd.status();
  // Read and check before changing anything, so a damaged file (and a temp file beside it) is
  // left exactly as found.
  Result<std::optional<std::uint64_t>> state = read_state(path);
  if (!state) return state.status();
  if (Status s = transport::remove_if_exists(sibling(path, ".tmp")); !s) return s;
  std::uint64_t highest = 0;
  if (state->has_value()) {
    highest = **state;
  } else if (Status s = persist(path, 0); !s) {
    return s;
  }
  auto lock = std::make_unique<Lock>();
  lock->fd = std::move(lock_fd).value();
  return std::unique_ptr<FencingGuard>(new FencingGuard(path, std::move(lock), highest));
}

FencingGuard::FencingGuard(std::filesystem::path path, std::unique_ptr<Lock> lock,
                           std::uint64_t highest)
    : path_(std::move(path)), lock_(std::move(lock)), highest_(highest) {
  ANYA_ASSERT(lock_ != nullptr);
  ANYA_ASSERT(lock_->fd.valid());
}

FencingGuard::~FencingGuard() = default;

Status FencingGuard::admit(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  return admit_locked(token);
}

std::uint64_t FencingGuard::highest() const {
  std::lock_guard lock(mutex_);
  return highest_;
}

Status FencingGuard::admit_locked(std::uint64_t token) {
  if (token == 0) {
    return {Errc::invalid_argument,
            "fencing token 0 is invalid: tokens are leadership terms and start at 1"};
  }
  if (failed_) {
    return {Errc::io_error, "fencing state " + path_.string() + ": an earlier write failed (" +
                                *failed_ + "); every token is refused until it is reopened"};
  }
  if (token < highest_) {
    return {Errc::conflict,
            "fencing token " + std::to_string(token) + " is below " + std::to_string(highest_) +
                ", the highest accepted: a newer leader has acted; request refused"};
  }
  if (token == highest_) return {};
  if (Status s = persist(path_, token); !s) {
    // After a failed write or fsync the disk may hold the old token, the new one or neither for
    // good (a failed fsync can drop the dirty pages); accepting anything more would rest on a
    // guess, so the guard fails closed.
    failed_ = s.message();
    return {Errc::io_error, "fencing token " + std::to_string(token) + " not accepted: " +
                                s.message()};
  }
  const std::uint64_t previous = highest_;
  highest_ = token;
  ANYA_ASSERT(highest_ > previous);
  return {};
}

}  // namespace anya
