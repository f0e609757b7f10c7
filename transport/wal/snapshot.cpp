#include "transport/wal/snapshot.hpp"

#include <fcntl.h>

#include <system_error>

#include "engine/codec/crc32c.hpp"
#include "transport/wal/file_io.hpp"
#include "engine/base/le_bytes.hpp"
#include "engine/base/types.hpp"

namespace anya::transport {
namespace {

constexpr std::string_view kSnapshotFile = "snapshot";
constexpr std::size_t kLengthOffset = 4 + 4 + 8 + 8;

std::string encode_header(SnapshotMeta meta, std::uint64_t data_bytes) {
  std::string header(kSnapshotMagic);
  le::put_u32(header, kSnapshotFormatVersion);
  le::put_u64(header, meta.index);
  le::put_u64(header, meta.term);
  le::put_u64(header, data_bytes);
  ANYA_ASSERT(header.size() == kSnapshotHeaderBytes);
  return header;
}

Status corrupt(const std::filesystem::path& path, std::uint64_t offset, const std::string& what) {
  return {Errc::corrupt,
          path.string() + ": byte offset " + std::to_string(offset) + ": " + what};
}

// Checks the header against the limits and the file's size; returns the data length.
Result<std::uint64_t> check_header(const std::filesystem::path& path, std::string_view header,
                                   std::uint64_t file_bytes) {
  ANYA_ASSERT(header.size() == kSnapshotHeaderBytes);
  if (header.substr(0, 4) != kSnapshotMagic) return corrupt(path, 0, "not a snapshot (bad magic)");
  const auto version = le::get(header, 4, 4);
  if (version != kSnapshotFormatVersion) {
    return Status(Errc::unsupported, path.string() + ": snapshot format version " +
                                         std::to_string(version) + ", this build reads only " +
                                         std::to_string(kSnapshotFormatVersion));
  }
  const std::uint64_t data_bytes = le::get(header, kLengthOffset, 8);
  if (data_bytes > kMaxSnapshotBytes) {
    return corrupt(path, kLengthOffset, "data length " + std::to_string(data_bytes) +
                                            " over the maximum of " +
                                            std::to_string(kMaxSnapshotBytes));
  }
  const std::uint64_t expected = kSnapshotHeaderBytes + data_bytes + kSnapshotChecksumBytes;
  if (file_bytes != expected) {
    return corrupt(path, kLengthOffset, "data length " + std::to_string(data_bytes) +
                                            " means a file of " + std::to_string(expected) +
                                            " bytes, but it has " + std::to_string(file_bytes));
  }
  return data_bytes;
}

}  // namespace

std::string snapshot_meta_problem(SnapshotMeta meta) {
  if (meta.index == 0 || meta.index > engine::Limits::max_index) {
    return "snapshot index " + std::to_string(meta.index) + " outside 1.." +
           std::to_string(engine::Limits::max_index);
  }
  if (meta.term == 0 || meta.term > engine::Limits::max_term) {
    return "snapshot term " + std::to_string(meta.term) + " outside 1.." +
           std::to_string(engine::Limits::max_term);
  }
  return {};
}

Status save_snapshot(const std::filesystem::path& dir, SnapshotMeta meta, std::string_view data,
                     bool durable) {
  if (std::string problem = snapshot_meta_problem(meta); !problem.empty()) {
    return {Errc::invalid_argument, problem};
  }
  if (data.size() > kMaxSnapshotBytes) {
    return {Errc::invalid_argument, "snapshot of " + std::to_string(data.size()) +
                                        " bytes, over the maximum of " +
                                        std::to_string(kMaxSnapshotBytes)};
  }
  std::error_code ec;
  if (std::filesystem::create_directories(dir, ec)) {
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  if (ec) return {Errc::io_error, "cannot create " + dir.string() + ": " + ec.message()};
  const std::string header = encode_header(meta, data.size());
  std::string trailer;
  le::put_u32(trailer, engine::crc32c_extend(engine::crc32c(header), data));
  return replace_file_atomically(dir, kSnapshotFile, {header, data, trailer}, durable, {});
}

Result<std::optional<std::pair<SnapshotMeta, std::string>>> load_snapshot(
    const std::filesystem::path& dir) {
  using Loaded = std::optional<std::pair<SnapshotMeta, std::string>>;
  const auto path = dir / kSnapshotFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) return Status(Errc::io_error, "cannot stat " + path.string() + ": " + ec.message());
    return Loaded();
  }
  auto fd = open_file(path, O_RDONLY);
  if (!fd) return fd.status();
  auto size = file_size(*fd, path);
  if (!size) return size.status();
  if (*size < kSnapshotHeaderBytes + kSnapshotChecksumBytes) {
    return corrupt(path, 0, "file of " + std::to_string(*size) + " bytes is too short");
  }
  std::string header;
  if (Status s = read_exact_at(*fd, path, 0, kSnapshotHeaderBytes, header); !s) return s;
  auto data_bytes = check_header(path, header, *size);
  if (!data_bytes) return data_bytes.status();
  std::string data;
  if (Status s = read_exact_at(*fd, path, kSnapshotHeaderBytes,
                               static_cast<std::size_t>(*data_bytes), data);
      !s) {
    return s;
  }
  std::string trailer;
  const std::uint64_t crc_offset = kSnapshotHeaderBytes + *data_bytes;
  if (Status s = read_exact_at(*fd, path, crc_offset, kSnapshotChecksumBytes, trailer); !s) {
    return s;
  }
  if (engine::crc32c_extend(engine::crc32c(header), data) != le::get(trailer, 0, 4)) {
    return corrupt(path, crc_offset, "snapshot checksum mismatch");
  }
  SnapshotMeta meta{le::get(header, 8, 8), le::get(header, 16, 8)};
  if (std::string problem = snapshot_meta_problem(meta); !problem.empty()) {
    return corrupt(path, meta.index == 0 || meta.index > engine::Limits::max_index ? 8 : 16,
                   problem);
  }
  return Loaded(std::pair<SnapshotMeta, std::string>(meta, std::move(data)));
}

}  // namespace anya::transport
