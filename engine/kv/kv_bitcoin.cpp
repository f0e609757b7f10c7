// Applying the record commands: UTXO reservations and DLC contract records. The rules are in
// engine/kv/bitcoin.hpp; each decision is made here, against the one log order, so every
// replica agrees on who holds an outpoint and which attestations exist.
#include "engine/base/mutants.hpp"
#include "engine/kv/kv.hpp"

namespace anya::engine {

namespace {

KvResult refused(KvOutcome outcome, Index revision, std::string message) {
  return KvResult{outcome, revision, std::move(message)};
}

KvResult damaged(const Status& status) {
  return KvResult{KvOutcome::invalid, 0, "stored record unreadable: " + status.message()};
}

}  // namespace

KvResult KvStore::apply_utxo(Index index, const UtxoCommand& command) {
  const std::string key = utxo_key(command.outpoint);
  const std::string name = "outpoint " + command.outpoint.text();
  const KeyValue* stored = get(key);
  std::optional<UtxoRecord> current;
  if (stored != nullptr) {
    Result<UtxoRecord> decoded = decode_utxo_record(stored->value);
    if (!decoded) return damaged(decoded.status());
    current = std::move(decoded).value();
  }
  const Index at = stored == nullptr ? 0 : stored->mod_revision;
  const bool spent_final =
      !(mutants::active(mutants::spent_reservable) && command.op == UtxoOp::reserve);
  if (current && current->state == UtxoState::spent && spent_final) {
    return refused(KvOutcome::conflict, at, name + " was spent by " + current->owner +
                                                " at revision " + std::to_string(at) +
                                                "; a spent outpoint is final");
  }
  // Held by someone else: reserved by another owner and not yet expired by this command's clock.
  const bool held_by_other = current && current->owner != command.owner &&
                             current->expires_at_ms > command.now_ms;
  if (held_by_other) {
    return refused(KvOutcome::conflict, at, name + " is reserved by " + current->owner +
                                                " for another " +
                                                std::to_string(current->expires_at_ms -
                                                               command.now_ms) + " ms");
  }
  switch (command.op) {
    case UtxoOp::reserve:
      return write(index, key,
                   encode_utxo_record({UtxoState::reserved, command.owner,
                                       command.now_ms + command.ttl_ms}));
    case UtxoOp::release:
      if (!current) return refused(KvOutcome::not_found, 0, name + " is not reserved");
      if (current->owner != command.owner) {
        return refused(KvOutcome::conflict, at, name + " is reserved by " + current->owner +
                                                    " (expired), not " + command.owner);
      }
      erase(key);
      return KvResult{KvOutcome::ok, index, {}};
    case UtxoOp::spend:
      return write(index, key, encode_utxo_record({UtxoState::spent, command.owner, 0}));
  }
  ANYA_ASSERT(false);  // decode_command accepts only the ops above
  return refused(KvOutcome::invalid, 0, "unknown utxo op");
}

KvResult KvStore::apply_dlc(Index index, const DlcCommand& command) {
  const std::string key = dlc_key(command.contract_id);
  const std::string name = "contract " + command.contract_id;
  const KeyValue* stored = get(key);
  if (command.op == DlcOp::create) {
    if (stored != nullptr) {
      return refused(KvOutcome::conflict, stored->mod_revision, name + " exists");
    }
    return write(index, key, encode_dlc_record({command.state, command.nonces, {}}));
  }
  if (stored == nullptr) return refused(KvOutcome::not_found, 0, name + " does not exist");
  const Index at = stored->mod_revision;
  Result<DlcRecord> decoded = decode_dlc_record(stored->value);
  if (!decoded) return damaged(decoded.status());
  DlcRecord record = std::move(decoded).value();
  if (command.op == DlcOp::transition) {
    if (record.state != command.expected_state) {
      return refused(KvOutcome::conflict, at, name + " is in state " + record.state + ", not " +
                                                  command.expected_state);
    }
    record.state = command.state;
    return write(index, key, encode_dlc_record(record));
  }
  ANYA_ASSERT(command.op == DlcOp::attest);
  if (!record.committed(command.nonce)) {
    return refused(KvOutcome::invalid, 0, "nonce: not among the commitments of " + name);
  }
  if (record.attestations.count(command.nonce) != 0) {
    return refused(KvOutcome::conflict, at, name + " already has an attestation for nonce " +
                                                command.nonce.substr(0, 16) + "...");
  }
  record.attestations.emplace(command.nonce, command.attestation);
  return write(index, key, encode_dlc_record(record));
}

}  // namespace anya::engine
