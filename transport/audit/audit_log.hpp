// The tamper-evident audit log: who did what to the cluster, when, and whether it was allowed.
//
// Format: one JSON object per line (JSON Lines), fields always in this order:
//   {"seq":1,"time_ms":...,"node":2,"term":5,"actor":"client:ops","role":"admin",
//    "action":"kv.put","target":"config/db","outcome":"ok","detail":"",
//    "prev":"<hex of the previous record's mac>","mac":"<hex HMAC-SHA256>"}
// `seq` starts at 1 and grows by one per record. `prev` of record 1 is 64 zeros. `mac` is
// HMAC-SHA256, keyed with the cluster's audit secret, over the canonical bytes of the record:
// the Boost.JSON serialization of the object above without its `mac` field (fixed field order,
// so the bytes are unambiguous; a verifier rebuilds them from the parsed fields).
//
// Why a MAC chain: every record's MAC covers its own fields and the MAC of the record before it.
// Without the secret, one record cannot be changed (its MAC breaks), removed (a seq gap, and the
// next record's `prev` breaks), inserted (no valid MAC) or reordered (seq and `prev` break). What
// a chain cannot show by itself is a cut tail: a file that stops early is a valid chain. So the
// node also puts the head it reached (seq and mac) into the replicated log; a verifier given
// that head from outside (`expected_head_mac_hex`, `expected_min_seq`) detects the cut. An
// attacker holding the secret can rewrite the whole file; the head held by the other nodes
// still shows that the file no longer matches what the cluster recorded.
//
// What goes in: names only. The API has no field for a value, and callers must never put a
// value or a secret into `target` or `detail` (a key name, a member id, a short reason). Every
// string field is sanitised (see sanitize_audit_field): bytes outside printable ASCII and the
// backslash become "\xNN", and the result is capped at kMaxAuditFieldBytes; so a hostile key
// name cannot break a line, forge a field or grow the file without bound.
//
// Failure is closed: append() returns ok only after write(2) and fdatasync; the caller refuses
// the mutation it was about to make when append fails. After one failed write the file may end
// in a partial line, so the log refuses every further append until it is reopened (and open
// refuses a file whose last line is partial: an operator repairs it, see docs).
//
// Not thread-safe: the node appends from its one io_context thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"

namespace anya::transport {

inline constexpr std::size_t kAuditMacBytes = 32;                     // HMAC-SHA256
inline constexpr std::size_t kAuditMacHexChars = 2 * kAuditMacBytes;
// Each sanitised string field holds at most this many bytes (after escaping).
inline constexpr std::size_t kMaxAuditFieldBytes = 256;
// A line longer than this is refused by the reader before it is parsed. Six string fields,
// each at most doubled by JSON's escaping of '\', plus two MACs, numbers and names.
inline constexpr std::size_t kMaxAuditLineBytes = 8192;
static_assert(6 * 2 * kMaxAuditFieldBytes + 2 * kAuditMacHexChars + 512 < kMaxAuditLineBytes);
// The secret: at least 32 bytes (create_audit_secret writes 32 random bytes as 64 hex digits).
inline constexpr std::size_t kMinAuditSecretBytes = 32;
inline constexpr std::size_t kMaxAuditSecretFileBytes = 4096;
static_assert(2 * kMinAuditSecretBytes < kMaxAuditSecretFileBytes);

// One record as it is in the file. Invariant (for a record in a valid chain): seq >= 1,
// prev_mac_hex is the previous record's mac_hex (64 zeros for seq 1), mac_hex verifies.
struct AuditRecord {
  std::uint64_t seq = 0;
  std::uint64_t time_ms = 0;  // wall clock, unix milliseconds
  std::uint64_t node = 0;     // the node that wrote it
  std::uint64_t term = 0;     // the Raft term the node saw
  std::string actor;          // "client:ops", "token:ci", "node:2", "anonymous"
  std::string role;           // may be empty
  std::string action;         // "kv.put", "members.add", "auth.refused"
  std::string target;         // a key name or a member id; never a value or a secret
  std::string outcome;        // "ok", "refused", "failed"
  std::string detail;         // a short reason; may be empty
  std::string prev_mac_hex;
  std::string mac_hex;
};

// What a caller supplies; the log adds seq, node, prev and mac. No value field, by design.
struct AuditEntry {
  std::uint64_t time_ms = 0;
  std::uint64_t term = 0;
  std::string actor;    // required (use "anonymous" when nobody authenticated)
  std::string role;
  std::string action;   // required
  std::string target;
  std::string outcome;  // required
  std::string detail;
};

// `s` with every byte outside printable ASCII (0x20..0x7e) and every '\' written as "\xNN"
// (lower-case hex), so the result is one line of plain ASCII and the mapping is reversible.
// When the escaped text is longer than `max_bytes` it is cut at an escape boundary and ends in
// the marker "\cut" (which escaped text cannot otherwise contain); the result is <= max_bytes.
std::string sanitize_audit_field(std::string_view s,
                                 std::size_t max_bytes = kMaxAuditFieldBytes);

class AuditLog {
 public:
  // Opens `file`, creating it with mode 0600 if missing (and fsyncing its folder). Refuses a
  // file that is not regular or that group or others may read or write, a secret shorter than
  // kMinAuditSecretBytes, and node 0. Reads and verifies every record; a broken chain is
  // Errc::corrupt naming the line and what is wrong (never silently continued).
  static Result<std::unique_ptr<AuditLog>> open(const std::filesystem::path& file,
                                                std::string secret, engine::NodeId node);

  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Sanitises the entry, gives it the next seq and the chain link, writes it as one line and
  // fdatasyncs. Errc::invalid_argument when actor, action or outcome is empty (nothing written);
  // Errc::io_error when the write or sync failed, and then for every later call too.
  Status append(const AuditEntry& entry);

  std::uint64_t last_seq() const { return last_seq_; }    // 0 when the file is empty
  const std::string& head_mac_hex() const { return head_mac_hex_; }  // 64 zeros when empty
  bool failed() const { return failed_; }  // a write failed; reopen to go on
  const std::filesystem::path& file() const { return file_; }

 private:
  AuditLog(std::filesystem::path file, int fd, std::string secret, engine::NodeId node,
           std::uint64_t last_seq, std::string head_mac_hex);
  Status write_line(const std::string& line);

  std::filesystem::path file_;
  int fd_;  // Invariant: an open descriptor (O_APPEND) this object closes.
  std::string secret_;
  engine::NodeId node_;
  std::uint64_t last_seq_;      // Invariant: the seq of the file's last record.
  std::string head_mac_hex_;    // Invariant: the mac of that record (64 zeros if none).
  bool failed_ = false;
};

// The result of reading a whole file. When !ok, `problem` names the first thing wrong and
// `line` its line (1-based; 0 when it is about the whole file); records counts the valid
// records before it, and head_seq / head_mac_hex are the last of those.
struct VerifyReport {
  bool ok = false;
  std::uint64_t records = 0;
  std::string problem;
  std::uint64_t line = 0;
  std::uint64_t head_seq = 0;
  std::string head_mac_hex;
};

// Reads `file` line by line and checks every record and link. With `expected_head_mac_hex`
// and/or `expected_min_seq` (a head another node or the replicated log vouches for), also
// checks that the file reaches that head and that the record at that seq has that mac.
VerifyReport verify_audit_file(const std::filesystem::path& file, std::string_view secret,
                               std::optional<std::string> expected_head_mac_hex = {},
                               std::optional<std::uint64_t> expected_min_seq = {});

// The secret in `file` (trailing whitespace removed). Refuses a file group or others may read
// or write, and a secret shorter than kMinAuditSecretBytes; messages name the file.
Result<std::string> load_audit_secret(const std::filesystem::path& file);
// Writes 32 random bytes (RAND_bytes) as 64 hex digits and a newline, mode 0600, fsynced.
// Refuses (Errc::invalid_argument) to overwrite an existing file.
Status create_audit_secret(const std::filesystem::path& file);

}  // namespace anya::transport
