#include "transport/admin/records.hpp"

#include <utility>

#include "engine/kv/bitcoin.hpp"
#include "engine/kv/kv.hpp"
#include "transport/admin/json_util.hpp"

namespace anya::transport {

namespace {

using Respond = std::function<void(AdminResponse)>;

// A required string field; false (with `error` naming it) if missing or not a string.
bool read_string(const json::object& o, std::string_view field, std::string& out,
                 std::string& error) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string()) {
    error = std::string(field) + ": missing or not a string";
    return false;
  }
  out = std::string(v->as_string());
  return true;
}

// The body as an object with only `allowed` fields, or a 400 already sent.
std::optional<json::object> body_of(const AdminRequest& req,
                                    std::initializer_list<std::string_view> allowed,
                                    const Respond& respond) {
  std::string error;
  std::optional<json::object> body = parse_object(req.body, error);
  if (!body || !only_fields(*body, allowed, error)) {
    respond(bad_request(error));
    return std::nullopt;
  }
  return body;
}

Reply<KvWriteResult> write_done(const Respond& respond) {
  return replying<KvWriteResult>(respond, [](const KvWriteResult& w) {
    return json_response(200, json::object{{"revision", w.revision}, {"replayed", w.replayed}});
  });
}

void submit(const AdminRequest& req, NodeApi& node, engine::Command command,
            const Respond& respond) {
  Result<std::optional<ClientRef>> client = client_of(req);
  if (!client) return respond(bad_request(client.status().message()));
  if (Status s = engine::check_command(command); !s) return respond(bad_request(s.message()));
  node.record_write(std::move(command), std::move(client).value(), write_done(respond));
}

void utxo_write(const AdminRequest& req, engine::UtxoOp op, NodeApi& node,
                const Respond& respond) {
  const bool reserve = op == engine::UtxoOp::reserve;
  std::optional<json::object> body =
      reserve ? body_of(req, {"outpoint", "owner", "ttl_ms"}, respond)
              : body_of(req, {"outpoint", "owner"}, respond);
  if (!body) return;
  std::string error, outpoint_text;
  engine::UtxoCommand command;
  command.op = op;
  if (!read_string(*body, "outpoint", outpoint_text, error) ||
      !read_string(*body, "owner", command.owner, error)) {
    return respond(bad_request(error));
  }
  Result<engine::Outpoint> outpoint = engine::parse_outpoint(outpoint_text);
  if (!outpoint) return respond(bad_request(outpoint.status().message()));
  command.outpoint = std::move(outpoint).value();
  if (reserve) {
    std::optional<std::uint64_t> ttl;
    if (!read_u64(*body, "ttl_ms", ttl, error)) return respond(bad_request(error));
    if (!ttl) return respond(bad_request("ttl_ms: missing"));
    command.ttl_ms = *ttl;
  }
  submit(req, node, std::move(command), respond);
}

void utxo_get(const AdminRequest& req, std::string_view text, NodeApi& node,
              const Respond& respond) {
  Result<engine::Outpoint> outpoint = engine::parse_outpoint(text);
  if (!outpoint) return respond(bad_request(outpoint.status().message()));
  const std::string name = outpoint->text();
  const std::uint64_t now_ms = req.now_unix_ms;
  node.kv_get(engine::utxo_key(*outpoint), std::nullopt,
              [respond, name, now_ms](ApiResult<KvEntryView> r) {
                if (!r.ok() && r.error.status.code() == Errc::not_found) {
                  return respond(json_response(
                      200, json::object{{"outpoint", name}, {"state", "free"}}));
                }
                if (!r.ok()) return respond(error_response(r.error));
                Result<engine::UtxoRecord> record = engine::decode_utxo_record(r.value->value);
                if (!record) return respond(error_response(ApiError{record.status()}));
                json::object o{{"outpoint", name},
                               {"state", engine::utxo_state_name(record->state)},
                               {"owner", record->owner},
                               {"revision", r.value->mod_revision}};
                if (record->state == engine::UtxoState::reserved) {
                  o["expires_at_ms"] = record->expires_at_ms;
                  o["expired"] = record->expires_at_ms <= now_ms;
                }
                respond(json_response(200, std::move(o)));
              });
}

// A body's "nonces": a list of hex strings, lowercased; false (with `error`) otherwise.
bool read_nonces(const json::object& o, std::vector<std::string>& out, std::string& error) {
  const json::value* v = o.if_contains("nonces");
  if (v == nullptr || !v->is_array() || v->as_array().size() > engine::kMaxNonces) {
    error = "nonces: expected a list of at most " + std::to_string(engine::kMaxNonces) +
            " hex strings";
    return false;
  }
  for (const json::value& e : v->as_array()) {
    if (!e.is_string()) {
      error = "nonces: expected a list of hex strings";
      return false;
    }
    out.push_back(engine::lower_hex(e.as_string()));
  }
  return true;
}

void dlc_create(const AdminRequest& req, NodeApi& node, const Respond& respond) {
  std::optional<json::object> body = body_of(req, {"contract_id", "state", "nonces"}, respond);
  if (!body) return;
  engine::DlcCommand command;
  command.op = engine::DlcOp::create;
  std::string error;
  if (!read_string(*body, "contract_id", command.contract_id, error) ||
      !read_string(*body, "state", command.state, error) ||
      !read_nonces(*body, command.nonces, error)) {
    return respond(bad_request(error));
  }
  submit(req, node, std::move(command), respond);
}

void dlc_change(const AdminRequest& req, std::string id, std::string_view action, NodeApi& node,
                const Respond& respond) {
  engine::DlcCommand command;
  command.contract_id = std::move(id);
  std::string error;
  if (action == "transition") {
    std::optional<json::object> body = body_of(req, {"from", "to"}, respond);
    if (!body) return;
    command.op = engine::DlcOp::transition;
    if (!read_string(*body, "from", command.expected_state, error) ||
        !read_string(*body, "to", command.state, error)) {
      return respond(bad_request(error));
    }
  } else if (action == "attest") {
    std::optional<json::object> body = body_of(req, {"nonce", "attestation"}, respond);
    if (!body) return;
    command.op = engine::DlcOp::attest;
    if (!read_string(*body, "nonce", command.nonce, error) ||
        !read_string(*body, "attestation", command.attestation, error)) {
      return respond(bad_request(error));
    }
    command.nonce = engine::lower_hex(command.nonce);
    command.attestation = engine::lower_hex(command.attestation);
  } else {
    return respond(json_response(404, json::object{{"error", "not_found"},
                                                   {"message", "no such contract action: " +
                                                                   json_safe(action)}}));
  }
  submit(req, node, std::move(command), respond);
}

void dlc_get(const std::string& id, NodeApi& node, const Respond& respond) {
  node.kv_get(engine::dlc_key(id), std::nullopt, [respond, id](ApiResult<KvEntryView> r) {
    if (!r.ok()) {
      if (r.error.status.code() == Errc::not_found) {
        r.error.status = Status(Errc::not_found, "contract " + id + " does not exist");
      }
      return respond(error_response(r.error));
    }
    Result<engine::DlcRecord> record = engine::decode_dlc_record(r.value->value);
    if (!record) return respond(error_response(ApiError{record.status()}));
    json::array nonces;
    for (const std::string& n : record->nonces) nonces.emplace_back(n);
    json::object attestations;
    for (const auto& [nonce, attestation] : record->attestations) attestations[nonce] = attestation;
    respond(json_response(200, json::object{{"contract_id", id},
                                            {"state", record->state},
                                            {"nonces", std::move(nonces)},
                                            {"attestations", std::move(attestations)},
                                            {"revision", r.value->mod_revision}}));
  });
}

void route_dlc(const AdminRequest& req, std::string_view rest, NodeApi& node,
               const Respond& respond) {
  if (rest.empty()) return dlc_create(req, node, respond);  // POST /v1/dlc
  const std::size_t slash = rest.find('/');
  std::optional<std::string> id = percent_decode(rest.substr(0, slash));
  if (!id) return respond(bad_request("contract_id: badly escaped"));
  if (Status s = engine::check_contract_id(*id); !s) return respond(bad_request(s.message()));
  if (slash == std::string_view::npos) {
    if (req.method != "GET") return respond(bad_request("POST /v1/dlc/ID needs an action"));
    return dlc_get(*id, node, respond);
  }
  if (req.method != "POST") return respond(bad_request("contract actions are POSTed"));
  dlc_change(req, std::move(*id), rest.substr(slash + 1), node, respond);
}

void open_session(const AdminRequest& req, NodeApi& node, const Respond& respond) {
  if (!req.client_id.empty() || !req.client_seq.empty()) {
    return respond(bad_request(std::string(kClientIdHeader) +
                               ": a session open is not itself in a session"));
  }
  if (!req.body.empty() && req.body != "{}") {
    return respond(bad_request("body: a session open takes none"));
  }
  node.open_session(replying<KvWriteResult>(respond, [](const KvWriteResult& w) {
    return json_response(200, json::object{{"client_id", w.revision},
                                           {"window", engine::kSessionWindow},
                                           {"idle_expiry_ms", engine::kSessionIdleMs}});
  }));
}

}  // namespace

Result<std::optional<ClientRef>> client_of(const AdminRequest& req) {
  if (req.client_id.empty() && req.client_seq.empty()) return std::optional<ClientRef>{};
  if (req.client_id.empty() || req.client_seq.empty()) {
    return Status(Errc::invalid_argument,
                  std::string(req.client_id.empty() ? kClientIdHeader : kClientSeqHeader) +
                      ": missing (" + kClientIdHeader + " and " + kClientSeqHeader +
                      " go together)");
  }
  const std::optional<std::uint64_t> id = parse_u64(req.client_id);
  if (!id || *id == 0) {
    return Status(Errc::invalid_argument,
                  std::string(kClientIdHeader) + ": expected the client_id that POST " +
                      "/v1/session returned (a whole number from 1)");
  }
  const std::optional<std::uint64_t> seq = parse_u64(req.client_seq);
  if (!seq || *seq == 0) {
    return Status(Errc::invalid_argument,
                  std::string(kClientSeqHeader) + ": expected a whole number from 1");
  }
  return std::optional<ClientRef>{ClientRef{*id, *seq}};
}

void route_records(const AdminRequest& req, std::string_view path, NodeApi& node,
                   const Respond& respond) {
  if (path == "/v1/session") return open_session(req, node, respond);
  if (path.starts_with("/v1/dlc")) {
    std::string_view rest = path.substr(7);
    if (!rest.empty()) rest.remove_prefix(1);  // the '/'
    return route_dlc(req, rest, node, respond);
  }
  ANYA_ASSERT(path.starts_with("/v1/utxo/"));
  const std::string_view rest = path.substr(9);
  if (req.method == "GET") {
    std::optional<std::string> text = percent_decode(rest);
    if (!text) return respond(bad_request("outpoint: badly escaped"));
    return utxo_get(req, *text, node, respond);
  }
  if (rest == "reserve") return utxo_write(req, engine::UtxoOp::reserve, node, respond);
  if (rest == "release") return utxo_write(req, engine::UtxoOp::release, node, respond);
  if (rest == "spend") return utxo_write(req, engine::UtxoOp::spend, node, respond);
  respond(json_response(404, json::object{{"error", "not_found"},
                                          {"message", "no such utxo action: " + json_safe(rest)}}));
}

}  // namespace anya::transport
