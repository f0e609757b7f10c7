// The Bitcoin records the replicated state machine keeps beside plain keys: UTXO reservations
// and DLC contract records. They live in the KV store under reserved keys (kUtxoKeyPrefix,
// kDlcKeyPrefix), so snapshots, digests and replica comparison cover them with no format of
// their own; the admin API refuses those keys on /v1/kv, so only the commands below change them.
//
// UTXO reservations (one record per outpoint):
//   free      no record. reserve(owner, ttl) makes it reserved by owner until now + ttl.
//   reserved  reserve by the same owner renews; by another owner fails (conflict) until the
//             reservation expires (expires_at_ms <= the command's now_ms), after which the other
//             owner takes it. release by the owner frees it; spend by the owner (even after
//             expiry, while nobody else took it) or of a free outpoint makes it spent.
//   spent     final: every later reserve, release or spend fails (conflict), forever.
// Time is the proposer's clock as carried in the command (UtxoCommand::now_ms), so every replica
// decides identically. A proposer with a fast clock can only expire reservations early; it can
// never give one outpoint two owners, since each command is decided against the one log order.
//
// DLC contracts (one record per contract id): created once with a state and the oracle's nonce
// commitments; the state changes only by compare-and-set (transition from an expected state);
// an attestation is recorded once per (contract, committed nonce): a second one for the same
// nonce fails, since an oracle attesting twice with one nonce reveals its key.
//
// Pure: no I/O, clock or randomness.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::engine {

inline constexpr std::string_view kUtxoKeyPrefix = "_anya/utxo/";
inline constexpr std::string_view kDlcKeyPrefix = "_anya/dlc/";

inline constexpr std::size_t kTxidHexChars = 64;          // a 32-byte transaction id, in hex
// 0xffffffff is the null outpoint's index (a coinbase input), never a spendable output.
inline constexpr std::uint32_t kMaxVout = 0xfffffffe;
inline constexpr std::size_t kMaxOwnerBytes = 128;
inline constexpr std::uint64_t kMaxReservationTtlMs = 7ULL * 24 * 3600 * 1000;  // a week
inline constexpr std::size_t kMaxContractIdBytes = 128;
inline constexpr std::size_t kMaxDlcStateBytes = 64;
inline constexpr std::size_t kNonceHexChars = 64;          // a 32-byte x-only public nonce
inline constexpr std::size_t kMaxNonces = 64;              // commitments per contract
inline constexpr std::size_t kMaxAttestationHexChars = 256;

// "TXID:VOUT": TXID is 64 hex characters (stored lowercase), VOUT a decimal 0..kMaxVout.
struct Outpoint {
  std::string txid;  // 64 lowercase hex characters
  std::uint32_t vout = 0;

  std::string text() const;  // "txid:vout"
  friend bool operator==(const Outpoint&, const Outpoint&) = default;
};

// Errc::invalid_argument naming the part that is wrong ("txid", "vout"), prefixed by `field`.
Result<Outpoint> parse_outpoint(std::string_view text, std::string_view field = "outpoint");
std::string utxo_key(const Outpoint& outpoint);

// Each OK or Errc::invalid_argument naming `field` and what is wrong.
Status check_owner(std::string_view owner, std::string_view field = "owner");
Status check_contract_id(std::string_view id, std::string_view field = "contract_id");
Status check_dlc_state(std::string_view state, std::string_view field = "state");
Status check_nonce(std::string_view nonce, std::string_view field = "nonce");  // lowercase hex
Status check_attestation(std::string_view attestation, std::string_view field = "attestation");
std::string dlc_key(std::string_view contract_id);
// Lowercase copy of a hex string (callers accept either case and store lowercase).
std::string lower_hex(std::string_view hex);

enum class UtxoState : std::uint8_t { reserved = 1, spent = 2 };
const char* utxo_state_name(UtxoState state);

struct UtxoRecord {
  UtxoState state = UtxoState::reserved;
  std::string owner;               // reserved: who holds it; spent: who spent it
  std::uint64_t expires_at_ms = 0;  // reserved: on the proposers' clocks; spent: 0

  friend bool operator==(const UtxoRecord&, const UtxoRecord&) = default;
};
std::string encode_utxo_record(const UtxoRecord& record);
Result<UtxoRecord> decode_utxo_record(std::string_view bytes);  // Errc::corrupt, field + offset

struct DlcRecord {
  std::string state;
  std::vector<std::string> nonces;                  // committed, each kNonceHexChars lowercase
  std::map<std::string, std::string> attestations;  // nonce -> attestation (hex), once each

  bool committed(std::string_view nonce) const;
  friend bool operator==(const DlcRecord&, const DlcRecord&) = default;
};
std::string encode_dlc_record(const DlcRecord& record);
Result<DlcRecord> decode_dlc_record(std::string_view bytes);  // Errc::corrupt, field + offset

}  // namespace anya::engine
