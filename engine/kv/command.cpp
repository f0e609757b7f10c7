#include "engine/kv/command.hpp"

#include <utility>

#include "engine/kv/wire.hpp"

namespace anya::engine {

namespace {

using kvwire::put_bytes;
using kvwire::put_le;
using kvwire::put_u32;
using kvwire::put_u64;
using kvwire::Reader;

constexpr std::uint8_t kLastKvOp = static_cast<std::uint8_t>(KvOp::del);
constexpr std::uint8_t kSessionOp = 10;
constexpr std::uint8_t kSessionOpenOp = 11;

Status invalid_field(const std::string& field, const std::string& problem) {
  return Status(Errc::invalid_argument, field + ": " + problem);
}

Status check_kv(const KvCommand& command) {
  const auto op = static_cast<std::uint8_t>(command.op);
  if (op == 0 || op > kLastKvOp) {
    return Status(Errc::invalid_argument, "unknown kv op " + std::to_string(op));
  }
  if (command.key.empty()) return Status(Errc::invalid_argument, "key is empty");
  if (command.key.size() > kMaxKeyBytes) {
    return Status(Errc::invalid_argument, "key of " + std::to_string(command.key.size()) +
                                              " bytes exceeds limit " +
                                              std::to_string(kMaxKeyBytes));
  }
  if (command.value.size() > kMaxValueBytes) {
    return Status(Errc::invalid_argument, "value of " + std::to_string(command.value.size()) +
                                              " bytes exceeds limit " +
                                              std::to_string(kMaxValueBytes));
  }
  if (command.op == KvOp::del && !command.value.empty()) {
    return Status(Errc::invalid_argument, "a delete carries no value");
  }
  if (command.op == KvOp::put && command.expected_revision != 0) {
    return Status(Errc::invalid_argument, "a put carries no expected revision (use cas)");
  }
  return Status::ok();
}

Status check_utxo(const UtxoCommand& command) {
  const auto op = static_cast<std::uint8_t>(command.op);
  if (op < 4 || op > 6) return invalid_field("op", "unknown utxo op " + std::to_string(op));
  // The outpoint must be in its stored spelling (parse_outpoint produces it).
  Result<Outpoint> parsed = parse_outpoint(command.outpoint.text());
  if (!parsed) return parsed.status();
  if (!(*parsed == command.outpoint)) {
    return invalid_field("outpoint txid", "must be lowercase hex");
  }
  if (Status s = check_owner(command.owner); !s) return s;
  if (command.op == UtxoOp::reserve) {
    if (command.ttl_ms == 0 || command.ttl_ms > kMaxReservationTtlMs) {
      return invalid_field("ttl_ms", std::to_string(command.ttl_ms) + " outside 1.." +
                                         std::to_string(kMaxReservationTtlMs));
    }
  } else if (command.ttl_ms != 0) {
    return invalid_field("ttl_ms", "only a reserve carries a ttl");
  }
  return Status::ok();
}

Status check_dlc(const DlcCommand& command) {
  if (Status s = check_contract_id(command.contract_id); !s) return s;
  const bool create = command.op == DlcOp::create;
  const bool transition = command.op == DlcOp::transition;
  const bool attest = command.op == DlcOp::attest;
  if (!create && !transition && !attest) {
    return invalid_field("op", "unknown dlc op " + std::to_string(static_cast<int>(command.op)));
  }
  if (create || transition) {
    if (Status s = check_dlc_state(command.state); !s) return s;
  } else if (!command.state.empty()) {
    return invalid_field("state", "an attestation carries no state");
  }
  if (transition) {
    if (Status s = check_dlc_state(command.expected_state, "expected_state"); !s) return s;
  } else if (!command.expected_state.empty()) {
    return invalid_field("expected_state", "only a transition carries one");
  }
  if (create) {
    if (command.nonces.empty() || command.nonces.size() > kMaxNonces) {
      return invalid_field("nonces", std::to_string(command.nonces.size()) +
                                         " commitments, need 1.." + std::to_string(kMaxNonces));
    }
    for (std::size_t i = 0; i < command.nonces.size(); ++i) {
      const std::string field = "nonces[" + std::to_string(i) + "]";
      if (Status s = check_nonce(command.nonces[i], field); !s) return s;
      for (std::size_t j = 0; j < i; ++j) {
        if (command.nonces[j] == command.nonces[i]) return invalid_field(field, "repeated");
      }
    }
  } else if (!command.nonces.empty()) {
    return invalid_field("nonces", "only a create carries commitments");
  }
  if (attest) {
    if (Status s = check_nonce(command.nonce); !s) return s;
    return check_attestation(command.attestation);
  }
  if (!command.nonce.empty() || !command.attestation.empty()) {
    return invalid_field("nonce", "only an attestation carries a nonce and attestation");
  }
  return Status::ok();
}

Status check_session(const ClientSession& session) {
  if (session.client_id == 0) {
    return invalid_field("client_id", "must be at least 1 (the id a session open returned)");
  }
  if (session.seq == 0) return invalid_field("client_seq", "must be at least 1");
  return Status::ok();
}

void encode_body(std::string& out, const KvCommand& command) {
  out.push_back(static_cast<char>(command.op));
  if (command.op != KvOp::put) put_u64(out, command.expected_revision);
  put_bytes(out, command.key);
  if (command.op != KvOp::del) put_bytes(out, command.value);
}

void encode_body(std::string& out, const UtxoCommand& command) {
  out.push_back(static_cast<char>(command.op));
  put_bytes(out, command.outpoint.txid);
  put_u32(out, command.outpoint.vout);
  put_bytes(out, command.owner);
  put_u64(out, command.now_ms);
  if (command.op == UtxoOp::reserve) put_u64(out, command.ttl_ms);
}

void encode_body(std::string& out, const DlcCommand& command) {
  out.push_back(static_cast<char>(command.op));
  put_bytes(out, command.contract_id);
  switch (command.op) {
    case DlcOp::create:
      put_bytes(out, command.state);
      put_u32(out, command.nonces.size());
      for (const std::string& nonce : command.nonces) put_bytes(out, nonce);
      break;
    case DlcOp::transition:
      put_bytes(out, command.expected_state);
      put_bytes(out, command.state);
      break;
    case DlcOp::attest:
      put_bytes(out, command.nonce);
      put_bytes(out, command.attestation);
      break;
  }
}

void encode_body(std::string& out, const SessionOpen& command) {
  out.push_back(static_cast<char>(kSessionOpenOp));
  put_u64(out, command.now_ms);
}

void decode_kv(Reader& r, KvOp op, KvCommand& command) {
  command.op = op;
  if (op != KvOp::put) command.expected_revision = r.u64("expected revision");
  command.key = std::string(r.sized("key", 1, kMaxKeyBytes));
  if (op != KvOp::del) command.value = std::string(r.sized("value", 0, kMaxValueBytes));
}

// A field decoded, then checked by `check`; a failure is reported at the field's offset.
template <typename Check>
std::string checked(Reader& r, const char* field, std::size_t max, Check check) {
  const std::size_t offset = r.offset();
  std::string value(r.sized(field, 0, max));
  if (r.ok()) {
    if (Status s = check(value); !s) r.fail_at(s.message(), offset);
  }
  return value;
}

void decode_utxo(Reader& r, UtxoOp op, UtxoCommand& command) {
  command.op = op;
  command.outpoint.txid = checked(r, "txid", kTxidHexChars, [](const std::string& txid) {
    return check_nonce(txid, "txid");  // the same shape: 64 lowercase hex characters
  });
  const std::size_t vout_offset = r.offset();
  command.outpoint.vout = r.u32("vout");
  if (r.ok() && command.outpoint.vout > kMaxVout) r.fail_at("vout out of range", vout_offset);
  command.owner = checked(r, "owner", kMaxOwnerBytes,
                          [](const std::string& owner) { return check_owner(owner); });
  command.now_ms = r.u64("now_ms");
  if (op == UtxoOp::reserve) {
    const std::size_t ttl_offset = r.offset();
    command.ttl_ms = r.u64("ttl_ms");
    if (r.ok() && (command.ttl_ms == 0 || command.ttl_ms > kMaxReservationTtlMs)) {
      r.fail_at("ttl_ms out of range", ttl_offset);
    }
  }
}

void decode_dlc(Reader& r, DlcOp op, DlcCommand& command) {
  command.op = op;
  command.contract_id = checked(r, "contract id", kMaxContractIdBytes,
                                [](const std::string& id) { return check_contract_id(id); });
  const auto state = [](const std::string& s) { return check_dlc_state(s); };
  const auto nonce = [](const std::string& n) { return check_nonce(n); };
  switch (op) {
    case DlcOp::create: {
      command.state = checked(r, "state", kMaxDlcStateBytes, state);
      const std::size_t count_offset = r.offset();
      const std::uint32_t count = r.u32("nonce count");
      if (r.ok() && (count == 0 || count > kMaxNonces)) {
        r.fail_at("nonce count " + std::to_string(count) + " outside 1.." +
                      std::to_string(kMaxNonces),
                  count_offset);
      }
      for (std::uint32_t i = 0; r.ok() && i < count; ++i) {
        const std::size_t offset = r.offset();
        std::string next = checked(r, "nonce", kNonceHexChars, nonce);
        for (const std::string& earlier : command.nonces) {
          if (r.ok() && earlier == next) r.fail_at("nonce repeated", offset);
        }
        command.nonces.push_back(std::move(next));
      }
      break;
    }
    case DlcOp::transition:
      command.expected_state = checked(r, "expected state", kMaxDlcStateBytes, state);
      command.state = checked(r, "state", kMaxDlcStateBytes, state);
      break;
    case DlcOp::attest:
      command.nonce = checked(r, "nonce", kNonceHexChars, nonce);
      command.attestation = checked(r, "attestation", kMaxAttestationHexChars,
                                    [](const std::string& a) { return check_attestation(a); });
      break;
  }
}

Status version_error(unsigned version, std::size_t offset) {
  return Status(Errc::unsupported, "kv command: unsupported format version " +
                                       std::to_string(version) + " (this build speaks " +
                                       std::to_string(kKvCommandVersion) + ") at byte offset " +
                                       std::to_string(offset));
}

// One command without a session: version, op, body. `allow_session`: the outer level only.
void decode_one(Reader& r, Command& command, bool allow_session, Status& version_status) {
  const std::size_t version_offset = r.offset();
  const std::uint8_t version = r.u8("version");
  if (r.ok() && version != kKvCommandVersion) {
    version_status = version_error(version, version_offset);
    return;
  }
  const std::size_t op_offset = r.offset();
  const std::uint8_t op = r.u8("op");
  if (!r.ok()) return;
  if (op >= 1 && op <= kLastKvOp) {
    decode_kv(r, static_cast<KvOp>(op), command.body.emplace<KvCommand>());
  } else if (op >= 4 && op <= 6) {
    decode_utxo(r, static_cast<UtxoOp>(op), command.body.emplace<UtxoCommand>());
  } else if (op >= 7 && op <= 9) {
    decode_dlc(r, static_cast<DlcOp>(op), command.body.emplace<DlcCommand>());
  } else if (op == kSessionOpenOp && allow_session) {
    command.body.emplace<SessionOpen>().now_ms = r.u64("now_ms");
  } else if (op == kSessionOp && allow_session) {
    ClientSession session;
    const std::size_t id_offset = r.offset();
    session.client_id = r.u64("client id");
    if (r.ok() && session.client_id == 0) r.fail_at("client id 0 (ids start at 1)", id_offset);
    const std::size_t seq_offset = r.offset();
    session.seq = r.u64("seq");
    if (r.ok() && session.seq == 0) r.fail_at("seq 0 (sequences start at 1)", seq_offset);
    session.now_ms = r.u64("now_ms");
    command.session = session;
    decode_one(r, command, /*allow_session=*/false, version_status);
  } else if (op == kSessionOp || op == kSessionOpenOp) {
    r.fail_at("op " + std::to_string(op) + " inside a session", op_offset);
  } else {
    r.fail_at("unknown op " + std::to_string(op), op_offset);
  }
}

}  // namespace

const char* utxo_op_name(UtxoOp op) {
  switch (op) {
    case UtxoOp::reserve: return "reserve";
    case UtxoOp::release: return "release";
    case UtxoOp::spend: return "spend";
  }
  return "unknown";
}

const char* dlc_op_name(DlcOp op) {
  switch (op) {
    case DlcOp::create: return "create";
    case DlcOp::transition: return "transition";
    case DlcOp::attest: return "attest";
  }
  return "unknown";
}

KvCommand KvCommand::put(std::string key, std::string value) {
  return KvCommand{KvOp::put, std::move(key), std::move(value), 0};
}

KvCommand KvCommand::cas(std::string key, Index expected_revision, std::string value) {
  return KvCommand{KvOp::cas, std::move(key), std::move(value), expected_revision};
}

KvCommand KvCommand::del(std::string key, std::optional<Index> expected_revision) {
  ANYA_ASSERT(!expected_revision.has_value() || *expected_revision != 0);
  return KvCommand{KvOp::del, std::move(key), {}, expected_revision.value_or(0)};
}

Status check_command(const Command& command) {
  if (command.session) {
    if (command.open() != nullptr) {
      return invalid_field("client_id", "a session open is never inside a session");
    }
    if (Status s = check_session(*command.session); !s) return s;
  }
  return std::visit(
      [](const auto& body) -> Status {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, KvCommand>) return check_kv(body);
        if constexpr (std::is_same_v<T, UtxoCommand>) return check_utxo(body);
        if constexpr (std::is_same_v<T, DlcCommand>) return check_dlc(body);
        if constexpr (std::is_same_v<T, SessionOpen>) return Status::ok();
      },
      command.body);
}

std::string encode_command(const Command& command) {
  const Status check = check_command(command);
  ANYA_ASSERT(check.is_ok());
  std::string out;
  if (const KvCommand* kv = command.kv()) {
    out.reserve(kKvCommandHeaderBytes + 8 + 8 + kv->key.size() + kv->value.size());
  }
  out.push_back(static_cast<char>(kKvCommandVersion));
  if (command.session) {
    out.push_back(static_cast<char>(kSessionOp));
    put_u64(out, command.session->client_id);
    put_u64(out, command.session->seq);
    put_u64(out, command.session->now_ms);
    out.push_back(static_cast<char>(kKvCommandVersion));
  }
  std::visit([&out](const auto& body) { encode_body(out, body); }, command.body);
  ANYA_ASSERT(out.size() <= kMaxCommandBytes);
  return out;
}

Result<Command> decode_command(std::string_view bytes) {
  Reader r(bytes, Errc::malformed, "kv command");
  Command command;
  Status version_status;
  decode_one(r, command, /*allow_session=*/true, version_status);
  if (!version_status.is_ok()) return version_status;
  r.expect_end();
  if (!r.ok()) return r.status();
  // Every field was range-checked above; what decodes must be encodable (strictness).
  ANYA_ASSERT(check_command(command).is_ok());
  return command;
}

}  // namespace anya::engine
