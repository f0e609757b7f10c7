// The example signer's core, without HTTP: a secp256k1 key, a FencingGuard and an append-only
// record of what was signed, all in one directory. main.cpp puts a small HTTP service around it.
//
// What it promises, and how (docs/guarantees.md, "Fencing at the resource"):
//   - nothing is signed under a fencing token below the highest one accepted: the check, the
//     signature and the record are one step under the guard's lock (FencingGuard::with_token);
//   - a message is signed at most once: a message already in the record is answered with its
//     first signature (so a client may retry), and nothing signs it again;
//   - a signature leaves the process only after its record line is on disk (fsync), so a crash
//     never forgets a signature someone holds.
//
// DIR/fencing.state  the guard's highest token (transport/embed/fencing.hpp)
// DIR/signer.key     the private key, PEM, mode 0600; made on first start
// DIR/record.jsonl   one JSON object per line: message, fencing_token, signature (DER, hex),
//                    time (UTC); never rewritten, only appended to
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "engine/base/result.hpp"
#include "transport/embed/fencing.hpp"
#include "transport/wal/file_io.hpp"

namespace anya::signer {

struct Limits {
  static constexpr std::size_t kMaxMessageBytes = 4096;
  // At the limit the signer refuses to sign more (Errc::busy) rather than grow without bound; an
  // operator archives the record and starts a new directory (with the same fencing state).
  static constexpr std::size_t kMaxRecords = 10000;
  // A record line: the message (JSON-escaped, at most 6 bytes per byte), a DER signature in hex
  // (at most 2 * 72), the token and the time, with room to spare.
  static constexpr std::size_t kMaxLineBytes = 6 * kMaxMessageBytes + 1024;
  static constexpr std::size_t kMaxRecordBytes = kMaxRecords * kMaxLineBytes;
  static constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;
};

struct Signed {
  std::string message;
  std::uint64_t fencing_token = 0;  // the token it was first signed under
  std::string signature_hex;        // DER-encoded ECDSA signature over SHA-256(message)
  std::string time;                 // when it was first signed, "2025-01-31T12:00:00.123Z"
  bool signed_now = false;          // false: already in the record, answered from it
};

class Signer {
 public:
  // Opens (or creates, mode 0700) `dir`, its key, fencing state and record. A damaged record
  // line, a key readable by others, a record without its key, or a record holding a token above
  // the fencing state (the state was rolled back) refuse the start with a message naming the
  // file and what is wrong. A last record line cut short by a crash is dropped (its signature was
  // never answered) and the drop is reported in `notes`.
  static Result<std::unique_ptr<Signer>> open(const std::filesystem::path& dir,
                                              std::string& notes);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // Signs `message` if the guard admits `token`. Errc::invalid_argument for a bad message or token
  // 0, Errc::conflict for a stale token (the guard's message), Errc::busy when the record is
  // full, Errc::io_error when the record cannot be written (after which nothing more is signed
  // until a restart: the record's tail is then in doubt).
  Result<Signed> sign(const std::string& message, std::uint64_t token);

  std::string public_key_pem() const;
  std::string public_key_hex() const;  // the uncompressed point, 65 bytes
  std::uint64_t highest_token() const { return guard_->highest(); }
  // The record as it is on disk.
  Result<std::string> record_text() const;

 private:
  struct Key;
  Signer() = default;
  Status load_record(std::string& notes);
  Result<Signed> sign_locked(const std::string& message, std::uint64_t token);

  std::filesystem::path dir_;
  std::unique_ptr<Key> key_;
  std::unique_ptr<FencingGuard> guard_;
  transport::Fd record_fd_;  // O_APPEND
  // Guarded by the guard's lock (only touched inside with_token's action).
  std::map<std::string, Signed> signed_;  // Invariant: size() <= Limits::kMaxRecords
  std::string record_failed_;             // non-empty: an append failed; sign nothing more
};

}  // namespace anya::signer
