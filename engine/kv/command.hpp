// The commands the replicated state machine applies, and their encoding: an application entry's
// data is exactly one encoded Command. Plain keys (put, cas, delete), UTXO reservations and DLC
// contract records (engine/kv/bitcoin.hpp), optionally inside a client session that makes a
// retried write apply at most once (engine/kv/kv.hpp describes the session rule).
//
// Layout (all integers little-endian; "str" is a u32 length then that many bytes):
//
//   offset  size  field
//   0       1     format version, 1 (anything else: Errc::unsupported)
//   1       1     op: 1 put, 2 cas, 3 delete, 4 utxo reserve, 5 utxo release, 6 utxo spend,
//                 7 dlc create, 8 dlc transition, 9 dlc attest, 10 session, 11 session open
//   put:        key str (1..kMaxKeyBytes), value str (0..kMaxValueBytes)
//   cas:        expected_revision u64 (0 = the key must not exist), key str, value str
//   delete:     expected_revision u64 (0 = unconditional), key str
//   utxo:       txid str (64 lowercase hex), vout u32 (<= kMaxVout), owner str, now_ms u64,
//               and for reserve only ttl_ms u64 (1..kMaxReservationTtlMs)
//   dlc create: contract id str, state str, nonce count u32 (1..kMaxNonces), nonces str each
//   dlc transition: contract id str, expected state str, new state str
//   dlc attest: contract id str, nonce str, attestation str
//   session:    client id u64 (>= 1), seq u64 (>= 1), now_ms u64, then one whole command
//               (version, op, ...) that is neither a session nor a session open
//   session open: now_ms u64 (never inside a session)
//
// Ops 1-3 are the original format, byte for byte: logs written before the others existed
// replay unchanged. Decoding is strict: an unknown version or op, a field out of its range,
// truncation or trailing bytes is Errc::malformed naming the field and byte offset, so decode
// succeeding implies encode(decode(bytes)) == bytes. Lengths are checked before any copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/kv/bitcoin.hpp"

namespace anya::engine {

// Limits. Key and value limits are part of the command format; the store limits (kv.hpp) bound
// memory and the snapshot size.
inline constexpr std::size_t kMaxKeyBytes = 1024;             // keys are 1..1024 bytes
inline constexpr std::size_t kMaxValueBytes = 256 * 1024;     // values are 0..256 KiB

inline constexpr std::uint8_t kKvCommandVersion = 1;
inline constexpr std::size_t kKvCommandHeaderBytes = 2;        // version, op
// The largest plain command, a cas with the largest key and value.
inline constexpr std::size_t kMaxKvCommandBytes =
    kKvCommandHeaderBytes + 8 + 4 + kMaxKeyBytes + 4 + kMaxValueBytes;
// A session adds its header in front of the largest command (the Bitcoin ones are smaller).
inline constexpr std::size_t kMaxCommandBytes =
    kKvCommandHeaderBytes + 8 + 8 + 8 + kMaxKvCommandBytes;
static_assert(kMaxCommandBytes <= Limits::max_entry_data_bytes,
              "every valid command must fit one log entry");

enum class KvOp : std::uint8_t { put = 1, cas = 2, del = 3 };

struct KvCommand {
  KvOp op = KvOp::put;
  std::string key;
  std::string value;  // put and cas; empty for delete
  // cas: the key's mod_revision the writer saw, 0 = the key must not exist.
  // delete: 0 = unconditional, otherwise the key's mod_revision must equal it. put: always 0.
  Index expected_revision = 0;

  static KvCommand put(std::string key, std::string value);
  static KvCommand cas(std::string key, Index expected_revision, std::string value);
  // A given expected revision must be non-zero (asserted): 0 is how "unconditional" is encoded.
  static KvCommand del(std::string key, std::optional<Index> expected_revision = std::nullopt);

  friend bool operator==(const KvCommand&, const KvCommand&) = default;
};

enum class UtxoOp : std::uint8_t { reserve = 4, release = 5, spend = 6 };
const char* utxo_op_name(UtxoOp op);

struct UtxoCommand {
  UtxoOp op = UtxoOp::reserve;
  Outpoint outpoint;
  std::string owner;
  std::uint64_t now_ms = 0;  // the proposer's clock (wall clock in production)
  std::uint64_t ttl_ms = 0;  // reserve only: 1..kMaxReservationTtlMs

  friend bool operator==(const UtxoCommand&, const UtxoCommand&) = default;
};

enum class DlcOp : std::uint8_t { create = 7, transition = 8, attest = 9 };
const char* dlc_op_name(DlcOp op);

struct DlcCommand {
  DlcOp op = DlcOp::create;
  std::string contract_id;
  std::string state;           // create: the first state; transition: the new state
  std::string expected_state;  // transition only
  std::vector<std::string> nonces;  // create only: the oracle's nonce commitments (hex)
  std::string nonce;           // attest only
  std::string attestation;     // attest only (hex)

  friend bool operator==(const DlcCommand&, const DlcCommand&) = default;
};

// Opens a client session (engine/kv/kv.hpp): the store assigns the session the index of this
// entry as its client id. Never inside a session: a retried open opens another session, which
// is harmless (an unused session is forgotten in time).
struct SessionOpen {
  std::uint64_t now_ms = 0;  // the proposer's clock: the new session's last use

  friend bool operator==(const SessionOpen&, const SessionOpen&) = default;
};

// Who sent a write, so a retry of it is recognised: the client's session and request number.
struct ClientSession {
  std::uint64_t client_id = 0;  // >= 1: the index of the entry that opened the session
  std::uint64_t seq = 0;        // >= 1, one per request (a retry reuses it)
  std::uint64_t now_ms = 0;     // the proposer's clock, for the session's idle expiry

  friend bool operator==(const ClientSession&, const ClientSession&) = default;
};

struct Command {
  std::variant<KvCommand, UtxoCommand, DlcCommand, SessionOpen> body;
  std::optional<ClientSession> session;  // never with a SessionOpen body

  Command() = default;
  Command(KvCommand kv) : body(std::move(kv)) {}      // NOLINT: a plain write is a command
  Command(UtxoCommand utxo) : body(std::move(utxo)) {}  // NOLINT
  Command(DlcCommand dlc) : body(std::move(dlc)) {}     // NOLINT
  Command(SessionOpen open) : body(open) {}             // NOLINT

  const KvCommand* kv() const { return std::get_if<KvCommand>(&body); }
  const UtxoCommand* utxo() const { return std::get_if<UtxoCommand>(&body); }
  const DlcCommand* dlc() const { return std::get_if<DlcCommand>(&body); }
  const SessionOpen* open() const { return std::get_if<SessionOpen>(&body); }
  friend bool operator==(const Command&, const Command&) = default;
};

// OK if `command` can be encoded, otherwise Errc::invalid_argument naming the field. The admin
// API checks client input with this before proposing.
Status check_command(const Command& command);

// Encodes a command; it must pass check_command (asserted).
std::string encode_command(const Command& command);

// Decodes exactly one command; Errc::malformed (Errc::unsupported for another version) naming the
// field and byte offset otherwise.
Result<Command> decode_command(std::string_view bytes);

}  // namespace anya::engine
