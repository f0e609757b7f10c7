#include "transport/audit/audit_log.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <utility>

namespace anya::transport {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

using Mac = std::array<unsigned char, kAuditMacBytes>;

const std::string kZeroMacHex(kAuditMacHexChars, '0');
// Ends a cut field. Escaped text has a backslash only before 'x', so this cannot be content.
constexpr std::string_view kCutMarker = "\\cut";
// How much the line reader asks read(2) for at a time.
constexpr std::size_t kReadChunkBytes = 64 * 1024;
static_assert(kMaxAuditLineBytes < kReadChunkBytes);

// The fields of a record, in file order: the numbers, then the strings, then the link.
struct U64Field {
  std::string_view name;
  std::uint64_t AuditRecord::*member;
};
struct StringField {
  std::string_view name;
  std::string AuditRecord::*member;
};
constexpr std::array<U64Field, 4> kU64Fields{{{"seq", &AuditRecord::seq},
                                               {"time_ms", &AuditRecord::time_ms},
                                               {"node", &AuditRecord::node},
                                               {"term", &AuditRecord::term}}};
constexpr std::array<StringField, 6> kStringFields{{{"actor", &AuditRecord::actor},
                                                     {"role", &AuditRecord::role},
                                                     {"action", &AuditRecord::action},
                                                     {"target", &AuditRecord::target},
                                                     {"outcome", &AuditRecord::outcome},
                                                     {"detail", &AuditRecord::detail}}};
constexpr std::string_view kPrevField = "prev";
constexpr std::string_view kMacField = "mac";
constexpr std::size_t kFieldCount = kU64Fields.size() + kStringFields.size() + 2;
static_assert(kFieldCount == 12);

// An owning descriptor, local so this library does not depend on the WAL's helpers.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status errno_status(std::string_view what, const fs::path& path) {
  const int error = errno;
  return {Errc::io_error, std::string(what) + " " + path.string() + ": " + std::strerror(error)};
}

int open_retrying(const fs::path& path, int flags, mode_t mode) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

Status write_all(int fd, const fs::path& path, std::string_view bytes) {
  ANYA_ASSERT(fd >= 0);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status("cannot write", path);
    done += static_cast<std::size_t>(n);
  }
  ANYA_ASSERT(done == bytes.size());
  return {};
}

// fdatasync (or fsync, for a folder); after a failure the page cache state is unknown, so
// callers never retry it.
Status sync_fd(int fd, const fs::path& path, bool data_only) {
  ANYA_ASSERT(fd >= 0);
  int rc = 0;
  do {
    rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return errno_status("cannot sync", path);
  return {};
}

Status sync_parent_folder(const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  UniqueFd fd(open_retrying(dir, O_RDONLY | O_DIRECTORY, 0));
  if (fd.get() < 0) return errno_status("cannot open folder", dir);
  return sync_fd(fd.get(), dir, false);
}

std::string mode_octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// A regular file that only its owner may read or write. `what` starts the message.
Status check_private_file(int fd, const fs::path& path, std::string_view what) {
  ANYA_ASSERT(fd >= 0);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status("cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return {Errc::invalid_argument, std::string(what) + " " + path.string() +
                                        ": not a regular file"};
  }
  if ((st.st_mode & 077) != 0) {
    return {Errc::invalid_argument,
            std::string(what) + " " + path.string() + ": mode " + mode_octal(st.st_mode) +
                " lets group or others read or write it; run chmod 600 " + path.string()};
  }
  return {};
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  ANYA_ASSERT(out.size() == 2 * size);
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// 64 lower-case hex digits to 32 bytes; nullopt for anything else.
std::optional<Mac> mac_from_hex(std::string_view hex) {
  if (hex.size() != kAuditMacHexChars) return std::nullopt;
  Mac mac{};
  for (std::size_t i = 0; i < mac.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return mac;
}

Mac hmac_sha256(std::string_view key, std::string_view data) {
  ANYA_ASSERT(!key.empty());
  ANYA_ASSERT(key.size() <= static_cast<std::size_t>(INT_MAX));
  Mac out{};
  unsigned int size = 0;
  const unsigned char* done =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &size);
  ANYA_ASSERT(done != nullptr);  // only fails when OpenSSL itself is broken
  ANYA_ASSERT(size == kAuditMacBytes);
  return out;
}

// The record without its mac, fields in file order.
json::object canonical_object(const AuditRecord& r) {
  json::object o;
  o.reserve(kFieldCount);
  for (const U64Field& f : kU64Fields) o.emplace(f.name, r.*f.member);
  for (const StringField& f : kStringFields) o.emplace(f.name, r.*f.member);
  o.emplace(kPrevField, r.prev_mac_hex);
  ANYA_ASSERT(o.size() == kFieldCount - 1);
  return o;
}

// The bytes the MAC covers.
std::string canonical_bytes(const AuditRecord& r) { return json::serialize(canonical_object(r)); }

// The record's line in the file, without its newline.
std::string record_text(const AuditRecord& r) {
  json::object o = canonical_object(r);
  o.emplace(kMacField, r.mac_hex);
  ANYA_ASSERT(o.size() == kFieldCount);
  return json::serialize(o);
}

std::string mac_hex_of(std::string_view secret, const AuditRecord& r) {
  const Mac mac = hmac_sha256(secret, canonical_bytes(r));
  return to_hex(mac.data(), mac.size());
}

bool mac_matches(std::string_view secret, const AuditRecord& r) {
  const std::optional<Mac> stored = mac_from_hex(r.mac_hex);
  ANYA_ASSERT(stored.has_value());  // parse_record checked the form
  const Mac computed = hmac_sha256(secret, canonical_bytes(r));
  return CRYPTO_memcmp(stored->data(), computed.data(), computed.size()) == 0;
}

std::optional<std::string> read_u64(const json::object& o, std::string_view name,
                                    std::uint64_t& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return "field '" + std::string(name) + "' missing";
  if (v->is_uint64()) {
    out = v->get_uint64();
  } else if (v->is_int64() && v->get_int64() >= 0) {
    out = static_cast<std::uint64_t>(v->get_int64());
  } else {
    return "field '" + std::string(name) + "' is not an unsigned integer";
  }
  return std::nullopt;
}

std::optional<std::string> read_string(const json::object& o, std::string_view name,
                                       std::string& out) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return "field '" + std::string(name) + "' missing";
  if (!v->is_string()) return "field '" + std::string(name) + "' is not a string";
  out = std::string(v->get_string());
  return std::nullopt;
}

std::optional<std::string> read_mac(const json::object& o, std::string_view name,
                                    std::string& out) {
  if (auto error = read_string(o, name, out)) return error;
  if (!mac_from_hex(out)) {
    return "field '" + std::string(name) + "' is not " + std::to_string(kAuditMacHexChars) +
           " lower-case hex digits";
  }
  return std::nullopt;
}

bool is_known_field(std::string_view key) {
  for (const U64Field& f : kU64Fields) {
    if (f.name == key) return true;
  }
  for (const StringField& f : kStringFields) {
    if (f.name == key) return true;
  }
  return key == kPrevField || key == kMacField;
}

// Parses one line into `r`; the error (without the line number) names what is wrong.
std::optional<std::string> parse_record(std::string_view text, AuditRecord& r) {
  if (text.empty()) return "empty line";
  json::parse_options opts;
  opts.max_depth = 1;
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec, {}, opts);
  if (ec || !v.is_object()) return "not a JSON object";
  const json::object& o = v.get_object();
  for (const U64Field& f : kU64Fields) {
    if (auto error = read_u64(o, f.name, r.*f.member)) return error;
  }
  for (const StringField& f : kStringFields) {
    if (auto error = read_string(o, f.name, r.*f.member)) return error;
  }
  if (auto error = read_mac(o, kPrevField, r.prev_mac_hex)) return error;
  if (auto error = read_mac(o, kMacField, r.mac_hex)) return error;
  for (const auto& kv : o) {
    if (!is_known_field(kv.key())) {
      return "unexpected field '" + sanitize_audit_field(kv.key(), 64) + "'";
    }
  }
  ANYA_ASSERT(o.size() >= kFieldCount);
  return std::nullopt;
}

enum class LineKind { line, end, partial, too_long, error };

// Reads a file line by line from offset 0 with pread, never holding more than one chunk plus one
// line: a hostile file cannot make it allocate without bound.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) { ANYA_ASSERT(fd >= 0); }

  // The next complete line (without its '\n') into `out`, or why there is none.
  LineKind next(std::string& out) {
    for (;;) {
      const std::size_t newline = buf_.find('\n', start_);
      if (newline != std::string::npos) {
        if (newline - start_ > kMaxAuditLineBytes) return LineKind::too_long;
        out.assign(buf_, start_, newline - start_);
        start_ = newline + 1;
        return LineKind::line;
      }
      if (buf_.size() - start_ > kMaxAuditLineBytes) return LineKind::too_long;
      if (eof_) return start_ == buf_.size() ? LineKind::end : LineKind::partial;
      if (!fill()) return LineKind::error;
    }
  }
  int error() const { return errno_; }

 private:
  bool fill() {
    buf_.erase(0, start_);
    start_ = 0;
    char chunk[kReadChunkBytes];
    for (;;) {
      const ssize_t n = ::pread(fd_, chunk, sizeof chunk, static_cast<off_t>(offset_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        errno_ = errno;
        return false;
      }
      eof_ = n == 0;
      buf_.append(chunk, static_cast<std::size_t>(n));
      offset_ += static_cast<std::uint64_t>(n);
      return true;
    }
  }

  int fd_;
  std::string buf_;
  std::size_t start_ = 0;     // Invariant: start_ <= buf_.size()
  std::uint64_t offset_ = 0;  // file offset of buf_.end()
  bool eof_ = false;
  int errno_ = 0;
};

// Checks records one by one and keeps the first problem. A seq gap is only explained at the end:
// the verifier goes on reading to tell a deleted record from one moved further down.
class ChainVerifier {
 public:
  ChainVerifier(std::string_view secret, std::optional<std::string> head_mac,
                std::optional<std::uint64_t> head_seq)
      : secret_(secret), head_mac_(std::move(head_mac)), head_seq_(head_seq) {}

  void feed(std::string_view text, std::uint64_t line) {
    if (gap_) return look_for_missing(text, line);
    ANYA_ASSERT(!has_problem_);
    AuditRecord r;
    if (auto error = parse_record(text, r)) return fail(line, "line " + num(line) + ": " + *error);
    check(r, text, line);
  }

  // Keeps the first problem only.
  void fail(std::uint64_t line, std::string problem) {
    if (has_problem_) return;
    has_problem_ = true;
    problem_ = std::move(problem);
    problem_line_ = line;
  }

  bool done() const { return has_problem_ && (!gap_ || gap_->found_line != 0); }

  VerifyReport finish() {
    if (gap_) {
      ANYA_ASSERT(has_problem_);
      problem_ = gap_message(*gap_);
    }
    if (!has_problem_) check_expected_head();
    VerifyReport report;
    report.ok = !has_problem_;
    report.records = records_;
    report.problem = problem_;
    report.line = problem_line_;
    report.head_seq = last_seq_;
    report.head_mac_hex = last_mac_;
    ANYA_ASSERT(report.ok == report.problem.empty());
    return report;
  }

 private:
  struct Gap {
    std::uint64_t after_seq = 0, seq = 0, line = 0;
    std::uint64_t found_seq = 0, found_line = 0;  // a missing record seen further down
  };

  static std::string num(std::uint64_t n) { return std::to_string(n); }
  static std::string at(const AuditRecord& r, std::uint64_t line) {
    return "record seq " + num(r.seq) + " (line " + num(line) + "): ";
  }

  void check(const AuditRecord& r, std::string_view text, std::uint64_t line) {
    ANYA_ASSERT(last_seq_ == records_);  // a valid prefix is seq 1..records_
    if (!mac_matches(secret_, r)) {
      const char* hint = records_ == 0 ? " (or the secret is not the one it was written with)" : "";
      return fail(line, at(r, line) + "changed or forged: its MAC does not match its contents" +
                            hint);
    }
    if (record_text(r) != text) {
      return fail(line, at(r, line) + "changed: the line is not in its canonical form");
    }
    if (!check_order(r, line)) return;
    if (r.prev_mac_hex != last_mac_) {
      return fail(line, at(r, line) + (records_ == 0
                                           ? "prev is not zero: truncated at the front"
                                           : "inserted or reordered: prev does not match the "
                                             "record before it"));
    }
    if (head_seq_ && head_mac_ && r.seq == *head_seq_ && r.mac_hex != *head_mac_) {
      return fail(line, at(r, line) + "not the head the cluster recorded: its mac is " +
                            r.mac_hex + ", the cluster recorded " + *head_mac_);
    }
    if (head_mac_ && r.mac_hex == *head_mac_) head_mac_seen_ = true;
    ++records_;
    last_seq_ = r.seq;
    last_mac_ = r.mac_hex;
  }

  bool check_order(const AuditRecord& r, std::uint64_t line) {
    if (records_ == 0 && r.seq != 1) {
      fail(line, at(r, line) + "truncated at the front: the first record is seq " + num(r.seq) +
                     ", not 1");
      return false;
    }
    if (records_ == 0) return true;
    const std::string follows =
        "record seq " + num(r.seq) + " follows seq " + num(last_seq_) + " (line " + num(line) + ")";
    if (r.seq <= last_seq_) {
      fail(line, follows + ": reordered or duplicated");
      return false;
    }
    if (r.seq > last_seq_ + 1) {
      fail(line, follows);  // explained in finish()
      gap_ = Gap{last_seq_, r.seq, line, 0, 0};
      return false;
    }
    return true;
  }

  // After a gap: is a missing record (with a valid MAC) further down the file?
  void look_for_missing(std::string_view text, std::uint64_t line) {
    ANYA_ASSERT(gap_.has_value());
    ANYA_ASSERT(gap_->found_line == 0);
    AuditRecord r;
    if (parse_record(text, r) || !mac_matches(secret_, r)) return;
    if (r.seq > gap_->after_seq && r.seq < gap_->seq) {
      gap_->found_seq = r.seq;
      gap_->found_line = line;
    }
  }

  static std::string gap_message(const Gap& g) {
    ANYA_ASSERT(g.seq > g.after_seq + 1);
    std::string m = "record seq " + num(g.seq) + " follows seq " + num(g.after_seq) + " (line " +
                    num(g.line) + "): ";
    if (g.found_line != 0) {
      return m + "reordered: seq " + num(g.found_seq) + " is at line " + num(g.found_line);
    }
    if (g.seq == g.after_seq + 2) return m + "record " + num(g.after_seq + 1) + " deleted";
    return m + "records " + num(g.after_seq + 1) + " to " + num(g.seq - 1) + " deleted";
  }

  void check_expected_head() {
    if (head_seq_ && last_seq_ < *head_seq_) {
      return fail(0, "truncated: the file ends at seq " + num(last_seq_) +
                         " but the cluster recorded head seq " + num(*head_seq_));
    }
    if (head_mac_ && !head_seq_ && !head_mac_seen_) {
      fail(0, "the head the cluster recorded (mac " + *head_mac_ +
                  ") is not in the file: truncated or rewritten");
    }
  }

  std::string_view secret_;
  std::optional<std::string> head_mac_;
  std::optional<std::uint64_t> head_seq_;
  bool head_mac_seen_ = false;
  std::uint64_t records_ = 0;
  std::uint64_t last_seq_ = 0;    // Invariant: last_seq_ == records_
  std::string last_mac_ = kZeroMacHex;
  std::optional<Gap> gap_;
  bool has_problem_ = false;
  std::string problem_;
  std::uint64_t problem_line_ = 0;
};

std::string reader_problem(LineKind kind, std::uint64_t line, const fs::path& file, int error) {
  const std::string prefix = "line " + std::to_string(line) + ": ";
  switch (kind) {
    case LineKind::partial: return prefix + "truncated (no newline at end)";
    case LineKind::too_long:
      return prefix + "longer than " + std::to_string(kMaxAuditLineBytes) + " bytes";
    case LineKind::error:
      return prefix + "cannot read " + file.string() + ": " + std::strerror(error);
    case LineKind::line:
    case LineKind::end: break;
  }
  ANYA_ASSERT(false);
  return {};
}

VerifyReport verify_fd(int fd, const fs::path& file, std::string_view secret,
                       std::optional<std::string> head_mac,
                       std::optional<std::uint64_t> head_seq) {
  ANYA_ASSERT(fd >= 0);
  ANYA_ASSERT(secret.size() >= kMinAuditSecretBytes);
  ChainVerifier verifier(secret, std::move(head_mac), head_seq);
  LineReader reader(fd);
  std::string text;
  std::uint64_t line = 0;
  while (!verifier.done()) {
    const LineKind kind = reader.next(text);
    if (kind == LineKind::end) break;
    ++line;
    if (kind != LineKind::line) {
      verifier.fail(line, reader_problem(kind, line, file, reader.error()));
      break;
    }
    verifier.feed(text, line);
  }
  return verifier.finish();
}

VerifyReport problem_report(std::string problem) {
  VerifyReport report;
  report.problem = std::move(problem);
  report.head_mac_hex = kZeroMacHex;
  return report;
}

// Opens an existing log, or creates it (0600) and makes its name durable.
Result<UniqueFd> open_or_create(const fs::path& file) {
  const int flags = O_RDWR | O_APPEND;
  int fd = open_retrying(file, flags | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) {
    UniqueFd owned(fd);
    if (Status s = sync_parent_folder(file); !s) return s;
    return UniqueFd(owned.release());
  }
  if (errno != EEXIST) return errno_status("cannot create audit log", file);
  fd = open_retrying(file, flags, 0);
  if (fd < 0) return errno_status("cannot open audit log", file);
  return UniqueFd(fd);
}

// The whole of a small file, refusing one larger than `max_bytes` before reading it all.
Result<std::string> read_small(int fd, const fs::path& file, std::size_t max_bytes) {
  ANYA_ASSERT(fd >= 0);
  std::string out;
  char chunk[1024];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("cannot read", file);
    if (n == 0) return out;
    out.append(chunk, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {
      return Status{Errc::invalid_argument,
                    file.string() + ": longer than " + std::to_string(max_bytes) + " bytes"};
    }
  }
}

}  // namespace

std::string sanitize_audit_field(std::string_view s, std::size_t max_bytes) {
  ANYA_ASSERT(max_bytes >= kCutMarker.size() + 4);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  std::size_t fit = 0;  // the longest escaped prefix that leaves room for the marker
  for (const char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte <= 0x7e && c != '\\') {
      out += c;
    } else {
      out += {'\\', 'x', kDigits[byte >> 4], kDigits[byte & 0xf]};
    }
    if (out.size() + kCutMarker.size() <= max_bytes) fit = out.size();
    if (out.size() > max_bytes) {
      out.resize(fit);
      out += kCutMarker;
      ANYA_ASSERT(out.size() <= max_bytes);
      return out;
    }
  }
  ANYA_ASSERT(out.size() <= max_bytes);
  return out;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const fs::path& file, std::string secret,
                                                 engine::NodeId node) {
  if (secret.size() < kMinAuditSecretBytes) {
    return Status{Errc::invalid_argument, "audit log " + file.string() + ": the secret has " +
                                              std::to_string(secret.size()) +
                                              " bytes; at least " +
                                              std::to_string(kMinAuditSecretBytes) + " needed"};
  }
  if (node == engine::kNoNode) {
    return Status{Errc::invalid_argument, "audit log " + file.string() + ": node id 0"};
  }
  Result<UniqueFd> fd = open_or_create(file);
  if (!fd) return fd.status();
  if (Status s = check_private_file(fd->get(), file, "audit log"); !s) return s;
  VerifyReport report = verify_fd(fd->get(), file, secret, {}, {});
  if (!report.ok) {
    return Status{Errc::corrupt, "audit log " + file.string() + ": " + report.problem +
                                     "; nothing was appended: move the file aside or repair it "
                                     "(anya-ha audit verify)"};
  }
  ANYA_ASSERT(report.head_seq == report.records);
  return std::unique_ptr<AuditLog>(new AuditLog(file, fd->release(), std::move(secret), node,
                                                report.head_seq, report.head_mac_hex));
}

AuditLog::AuditLog(fs::path file, int fd, std::string secret, engine::NodeId node,
                   std::uint64_t last_seq, std::string head_mac_hex)
    : file_(std::move(file)),
      fd_(fd),
      secret_(std::move(secret)),
      node_(node),
      last_seq_(last_seq),
      head_mac_hex_(std::move(head_mac_hex)) {
  ANYA_ASSERT(fd_ >= 0);
  ANYA_ASSERT(head_mac_hex_.size() == kAuditMacHexChars);
}

AuditLog::~AuditLog() {
  // close(2) errors are not actionable: every record that was acknowledged was synced first.
  ::close(fd_);
}

Status AuditLog::append(const AuditEntry& e) {
  if (failed_) {
    return {Errc::io_error, "audit log " + file_.string() +
                                ": an earlier write failed and the file may end in a partial "
                                "line; refusing to append until the log is reopened"};
  }
  if (e.actor.empty() || e.action.empty() || e.outcome.empty()) {
    return {Errc::invalid_argument, "audit entry: actor, action and outcome are required"};
  }
  ANYA_ASSERT(last_seq_ < std::numeric_limits<std::uint64_t>::max());
  AuditRecord r;
  r.seq = last_seq_ + 1;
  r.time_ms = e.time_ms;
  r.node = node_;
  r.term = e.term;
  r.actor = sanitize_audit_field(e.actor);
  r.role = sanitize_audit_field(e.role);
  r.action = sanitize_audit_field(e.action);
  r.target = sanitize_audit_field(e.target);
  r.outcome = sanitize_audit_field(e.outcome);
  r.detail = sanitize_audit_field(e.detail);
  r.prev_mac_hex = head_mac_hex_;
  r.mac_hex = mac_hex_of(secret_, r);
  const std::string line = record_text(r) + "\n";
  ANYA_ASSERT(line.size() <= kMaxAuditLineBytes);
  ANYA_ASSERT(line.find('\n') == line.size() - 1);
  if (Status s = write_line(line); !s) {
    failed_ = true;
    return s;
  }
  last_seq_ = r.seq;
  head_mac_hex_ = r.mac_hex;
  return {};
}

Status AuditLog::write_line(const std::string& line) {
  if (Status s = write_all(fd_, file_, line); !s) return s;
  return sync_fd(fd_, file_, true);
}

VerifyReport verify_audit_file(const fs::path& file, std::string_view secret,
                               std::optional<std::string> expected_head_mac_hex,
                               std::optional<std::uint64_t> expected_min_seq) {
  if (secret.size() < kMinAuditSecretBytes) {
    return problem_report("the secret has " + std::to_string(secret.size()) +
                          " bytes; at least " + std::to_string(kMinAuditSecretBytes) +
                          " needed");
  }
  if (expected_head_mac_hex && !mac_from_hex(*expected_head_mac_hex)) {
    return problem_report("the expected head mac is not " +
                          std::to_string(kAuditMacHexChars) + " lower-case hex digits");
  }
  UniqueFd fd(open_retrying(file, O_RDONLY, 0));
  if (fd.get() < 0) return problem_report(errno_status("cannot open", file).message());
  return verify_fd(fd.get(), file, secret, std::move(expected_head_mac_hex), expected_min_seq);
}

Result<std::string> load_audit_secret(const fs::path& file) {
  UniqueFd fd(open_retrying(file, O_RDONLY, 0));
  if (fd.get() < 0) return errno_status("cannot open audit secret", file);
  if (Status s = check_private_file(fd.get(), file, "audit secret"); !s) return s;
  Result<std::string> text = read_small(fd.get(), file, kMaxAuditSecretFileBytes);
  if (!text) return Status{text.status().code(), "audit secret " + text.status().message()};
  std::string secret = std::move(*text);
  const std::size_t end = secret.find_last_not_of(" \t\r\n");
  secret.resize(end == std::string::npos ? 0 : end + 1);
  if (secret.size() < kMinAuditSecretBytes) {
    return Status{Errc::invalid_argument,
                  "audit secret " + file.string() + ": " + std::to_string(secret.size()) +
                      " bytes; at least " + std::to_string(kMinAuditSecretBytes) +
                      " needed (anya-ha audit init-secret makes one)"};
  }
  ANYA_ASSERT(secret.size() <= kMaxAuditSecretFileBytes);
  return secret;
}

Status create_audit_secret(const fs::path& file) {
  unsigned char bytes[kMinAuditSecretBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return {Errc::io_error, "audit secret " + file.string() + ": no random bytes from OpenSSL"};
  }
  const std::string text = to_hex(bytes, sizeof bytes) + "\n";
  UniqueFd fd(open_retrying(file, O_WRONLY | O_CREAT | O_EXCL, 0600));
  if (fd.get() < 0 && errno == EEXIST) {
    return {Errc::invalid_argument,
            "audit secret " + file.string() + " exists; refusing to overwrite it"};
  }
  if (fd.get() < 0) return errno_status("cannot create audit secret", file);
  Status s = write_all(fd.get(), file, text);
  if (s) s = sync_fd(fd.get(), file, false);
  if (s) s = sync_parent_folder(file);
  if (!s) ::unlink(file.c_str());  // never leave a partial secret behind
  return s;
}

}  // namespace anya::transport
