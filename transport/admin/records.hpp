// The admin API's Bitcoin records: UTXO reservations (/v1/utxo/...) and DLC contract records
// (/v1/dlc...), and client sessions: opening one, and the headers every write may carry. The
// rules live in engine/kv/bitcoin.hpp and engine/kv/kv.hpp; this is only their HTTP and JSON
// face.
//
//   POST /v1/session        (no body) {"client_id": N, "window": 32, "idle_expiry_ms": ...}:
//                           then send Anya-Client-Id: N and Anya-Client-Seq: 1, 2, ... on writes
//   POST /v1/utxo/reserve   {"outpoint": "TXID:VOUT", "owner": O, "ttl_ms": N}
//   POST /v1/utxo/release   {"outpoint", "owner"}
//   POST /v1/utxo/spend     {"outpoint", "owner"}
//   GET  /v1/utxo/TXID:VOUT {"outpoint", "state": free|reserved|spent, "owner", "expires_at_ms",
//                            "expired", "revision"}
//   POST /v1/dlc            {"contract_id", "state", "nonces": [64 hex, ...]}
//   GET  /v1/dlc/ID         {"contract_id", "state", "nonces", "attestations": {nonce: hex}}
//   POST /v1/dlc/ID/transition {"from": S, "to": S}
//   POST /v1/dlc/ID/attest     {"nonce", "attestation"}
//
// Writes answer {"revision", "replayed"}; a refusal is 409 (conflict: held by another owner,
// spent, wrong state, attested already, session expired), 404 (nothing to release or change)
// or 400 naming the field.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "engine/base/result.hpp"
#include "transport/admin/router.hpp"

namespace anya::transport {

// The Anya-Client-Id / Anya-Client-Seq pair: both or neither; an error names the header.
Result<std::optional<ClientRef>> client_of(const AdminRequest& req);

// `path` is /v1/session, or starts with /v1/utxo or /v1/dlc.
void route_records(const AdminRequest& req, std::string_view path, NodeApi& node,
                   const std::function<void(AdminResponse)>& respond);

}  // namespace anya::transport
