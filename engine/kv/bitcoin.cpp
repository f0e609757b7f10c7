#include "engine/kv/bitcoin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "engine/kv/wire.hpp"

namespace anya::engine {

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// Stored hex is lowercase, so one nonce has one spelling (lower_hex() normalizes input).
bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

Status bad(std::string_view field, const std::string& problem) {
  return Status(Errc::invalid_argument, std::string(field) + ": " + problem);
}

// Lengths in [min, max] of characters accepted by `allowed`; `what` describes them.
template <typename Allowed>
Status check_text(std::string_view text, std::string_view field, std::size_t min, std::size_t max,
                  Allowed allowed, const char* what) {
  if (text.size() < min || text.size() > max) {
    return bad(field, "must be " + std::to_string(min) + " to " + std::to_string(max) +
                          " characters, got " + std::to_string(text.size()));
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!allowed(text[i])) {
      return bad(field, std::string("character ") + std::to_string(i) + " is not " + what);
    }
  }
  return Status::ok();
}

constexpr std::uint8_t kUtxoRecordVersion = 1;
constexpr std::uint8_t kDlcRecordVersion = 1;

}  // namespace

std::string lower_hex(std::string_view hex) {
  std::string out(hex);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'F') ? static_cast<char>(c + 32) : c; });
  return out;
}

std::string Outpoint::text() const { return txid + ":" + std::to_string(vout); }

Result<Outpoint> parse_outpoint(std::string_view text, std::string_view field) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return bad(field, "expected TXID:VOUT (64 hex characters, a colon, an output index)");
  }
  const std::string txid_field = std::string(field) + " txid";
  const std::string_view txid = text.substr(0, colon);
  if (Status s = check_text(txid, txid_field, kTxidHexChars, kTxidHexChars, is_hex,
                            "a hex digit");
      !s) {
    return s;
  }
  const std::string_view vout_text = text.substr(colon + 1);
  const std::string vout_field = std::string(field) + " vout";
  std::uint64_t vout = 0;
  const auto [end, ec] = std::from_chars(vout_text.data(), vout_text.data() + vout_text.size(),
                                         vout);
  if (vout_text.empty() || ec != std::errc{} || end != vout_text.data() + vout_text.size()) {
    return bad(vout_field, "\"" + std::string(vout_text) + "\" is not a decimal output index");
  }
  if (vout > kMaxVout) {
    return bad(vout_field, std::to_string(vout) + " outside 0.." + std::to_string(kMaxVout));
  }
  return Outpoint{lower_hex(txid), static_cast<std::uint32_t>(vout)};
}

std::string utxo_key(const Outpoint& outpoint) {
  return std::string(kUtxoKeyPrefix) + outpoint.text();
}

Status check_owner(std::string_view owner, std::string_view field) {
  return check_text(owner, field, 1, kMaxOwnerBytes, [](char c) { return c > 0x20 && c < 0x7f; },
                    "printable ASCII without spaces");
}

Status check_contract_id(std::string_view id, std::string_view field) {
  return check_text(id, field, 1, kMaxContractIdBytes,
                    [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                             c == '_' || c == '-' || c == ':';
                    },
                    "a letter, digit, '.', '_', '-' or ':'");
}

Status check_dlc_state(std::string_view state, std::string_view field) {
  return check_text(state, field, 1, kMaxDlcStateBytes,
                    [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                        c == '_'; },
                    "a lowercase letter, digit or '_'");
}

Status check_nonce(std::string_view nonce, std::string_view field) {
  return check_text(nonce, field, kNonceHexChars, kNonceHexChars, is_lower_hex,
                    "a lowercase hex digit");
}

Status check_attestation(std::string_view attestation, std::string_view field) {
  if (Status s = check_text(attestation, field, 2, kMaxAttestationHexChars, is_lower_hex,
                            "a lowercase hex digit");
      !s) {
    return s;
  }
  if (attestation.size() % 2 != 0) return bad(field, "odd number of hex digits");
  return Status::ok();
}

std::string dlc_key(std::string_view contract_id) {
  return std::string(kDlcKeyPrefix) + std::string(contract_id);
}

const char* utxo_state_name(UtxoState state) {
  switch (state) {
    case UtxoState::reserved: return "reserved";
    case UtxoState::spent: return "spent";
  }
  return "unknown";
}

bool DlcRecord::committed(std::string_view nonce) const {
  return std::find(nonces.begin(), nonces.end(), nonce) != nonces.end();
}

// --- record layouts (values of the reserved keys; little-endian) ---------------------------------
// utxo: version u8 (1), state u8 (1 reserved, 2 spent), owner (u32 length + bytes),
//       expires_at_ms u64.
// dlc:  version u8 (1), state (u32 length + bytes), nonce count u32, each nonce (length + hex),
//       attestation count u32, each (nonce, attestation) as two length-prefixed strings, in
//       nonce order.

std::string encode_utxo_record(const UtxoRecord& record) {
  ANYA_ASSERT(check_owner(record.owner).is_ok());
  std::string out;
  out.push_back(static_cast<char>(kUtxoRecordVersion));
  out.push_back(static_cast<char>(record.state));
  kvwire::put_bytes(out, record.owner);
  kvwire::put_u64(out, record.expires_at_ms);
  return out;
}

Result<UtxoRecord> decode_utxo_record(std::string_view bytes) {
  kvwire::Reader r(bytes, Errc::corrupt, "utxo record");
  const std::uint8_t version = r.u8("version");
  if (r.ok() && version != kUtxoRecordVersion) r.fail_at("unknown version", 0);
  UtxoRecord record;
  const std::size_t state_offset = r.offset();
  const std::uint8_t state = r.u8("state");
  if (r.ok() && state != 1 && state != 2) r.fail_at("unknown state", state_offset);
  record.state = static_cast<UtxoState>(state);
  record.owner = std::string(r.sized("owner", 1, kMaxOwnerBytes));
  record.expires_at_ms = r.u64("expires_at_ms");
  r.expect_end();
  if (!r.ok()) return r.status();
  return record;
}

std::string encode_dlc_record(const DlcRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(kDlcRecordVersion));
  kvwire::put_bytes(out, record.state);
  kvwire::put_u32(out, record.nonces.size());
  for (const std::string& nonce : record.nonces) kvwire::put_bytes(out, nonce);
  kvwire::put_u32(out, record.attestations.size());
  for (const auto& [nonce, attestation] : record.attestations) {
    ANYA_ASSERT(record.committed(nonce));
    kvwire::put_bytes(out, nonce);
    kvwire::put_bytes(out, attestation);
  }
  return out;
}

Result<DlcRecord> decode_dlc_record(std::string_view bytes) {
  kvwire::Reader r(bytes, Errc::corrupt, "dlc record");
  const std::uint8_t version = r.u8("version");
  if (r.ok() && version != kDlcRecordVersion) r.fail_at("unknown version", 0);
  DlcRecord record;
  record.state = std::string(r.sized("state", 1, kMaxDlcStateBytes));
  const std::size_t count_offset = r.offset();
  const std::uint32_t nonces = r.u32("nonce count");
  if (r.ok() && (nonces == 0 || nonces > kMaxNonces)) r.fail_at("nonce count", count_offset);
  for (std::uint32_t i = 0; r.ok() && i < nonces; ++i) {
    record.nonces.emplace_back(r.sized("nonce", kNonceHexChars, kNonceHexChars));
  }
  const std::size_t attested_offset = r.offset();
  const std::uint32_t attested = r.u32("attestation count");
  if (r.ok() && attested > nonces) r.fail_at("attestation count", attested_offset);
  for (std::uint32_t i = 0; r.ok() && i < attested; ++i) {
    const std::size_t offset = r.offset();
    std::string nonce(r.sized("attested nonce", kNonceHexChars, kNonceHexChars));
    std::string attestation(r.sized("attestation", 2, kMaxAttestationHexChars));
    if (r.ok() && (!record.committed(nonce) || record.attestations.count(nonce) != 0)) {
      r.fail_at("attestation for an uncommitted or repeated nonce", offset);
    }
    record.attestations.emplace(std::move(nonce), std::move(attestation));
  }
  r.expect_end();
  if (!r.ok()) return r.status();
  return record;
}

}  // namespace anya::engine
