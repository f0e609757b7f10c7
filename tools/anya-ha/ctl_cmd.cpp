// anya-ha ctl: the admin API from a shell. Connection from flags or the ANYA_HA_* environment
// (like etcdctl and consul); tries each endpoint in turn and follows the leader's address when a
// follower answers "not_leader".
#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "tools/anya-ha/commands.hpp"
#include "transport/admin/client.hpp"
#include "transport/config/node_config.hpp"

namespace anya::tools {

namespace json = boost::json;

namespace {

constexpr int kMaxLeaderHops = 3;

struct CtlArgs {
  std::string endpoints, cacert, cert, key, token, output = "text";
  std::string token_name, token_role, token_ttl, token_id;
  bool token_join = false;
  std::vector<std::string> words;  // sub-command arguments
  std::uint64_t id = 0, to = 0, version = 0, if_version = 0, prev_revision = 0;
  bool learner = false, has_if_version = false, has_prev = false;
  std::string address, file, key_name, value;
  // Exactly-once: every key or record write carries a client id and seq; a retry inside this
  // run keeps both. client_id 0: open a session for this run.
  std::uint64_t client_id = 0;
  std::uint64_t client_seq = 1;
  // utxo and dlc
  std::string outpoint, owner, contract, state, from_state, to_state, nonce, attestation;
  std::uint64_t ttl_ms = 60'000;
  std::vector<std::string> nonces;
};

// The writes that go in a client session (the ones the cluster applies exactly once): keys,
// UTXO reservations and DLC records. Membership, configuration and tokens have their own
// preconditions (if-version, ids) and carry no session.
bool in_session(const std::string& method, const std::string& target) {
  if (method == "GET") return false;
  return target.starts_with("/v1/kv/") || target.starts_with("/v1/utxo/") ||
         target == "/v1/dlc" || target.starts_with("/v1/dlc/");
}

std::string env_or(const std::string& flag, const char* name) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

class Ctl {
 public:
  explicit Ctl(const CtlArgs& a) : args_(a) {}

  int check_connection() {
    endpoints_ = split_commas(env_or(args_.endpoints, "ANYA_HA_ENDPOINTS"));
    options_.ca_cert = env_or(args_.cacert, "ANYA_HA_CACERT");
    options_.cert = env_or(args_.cert, "ANYA_HA_CERT");
    options_.key = env_or(args_.key, "ANYA_HA_KEY");
    options_.token = env_or(args_.token, "ANYA_HA_TOKEN");
    if (endpoints_.empty()) {
      std::cerr << "anya-ha ctl: --endpoint (or ANYA_HA_ENDPOINTS) is required\n";
      return kExitUsage;
    }
    if (options_.ca_cert.empty()) {
      std::cerr << "anya-ha ctl: --cacert (or ANYA_HA_CACERT) is required\n";
      return kExitUsage;
    }
    if (options_.cert.empty() != options_.key.empty()) {
      std::cerr << "anya-ha ctl: --cert and --key (or ANYA_HA_CERT, ANYA_HA_KEY) go together\n";
      return kExitUsage;
    }
    if (options_.cert.empty() && options_.token.empty()) {
      std::cerr << "anya-ha ctl: a credential is required: --cert and --key, or --token (or "
                   "ANYA_HA_CERT and ANYA_HA_KEY, or ANYA_HA_TOKEN)\n";
      return kExitUsage;
    }
    if (args_.output != "text" && args_.output != "json") {
      std::cerr << "anya-ha ctl: -o: expected text or json\n";
      return kExitUsage;
    }
    if (args_.client_seq == 0) {
      std::cerr << "anya-ha ctl: --client-seq: expected a whole number from 1\n";
      return kExitUsage;
    }
    client_id_ = args_.client_id;
    return kExitOk;
  }

  // Sends the request to the first endpoint that answers; follows a not_leader hint.
  int call(const std::string& method, const std::string& target, const std::string& body,
           const std::string& if_match, const std::function<void(const json::value&)>& print) {
    // Writes are sent in a client session, so trying the next endpoint after a timeout never
    // applies the write twice (the cluster answers a repeat with the first outcome).
    options_.client_id = 0;
    if (in_session(method, target)) {
      if (client_id_ == 0) {
        if (const int rc = open_session(); rc != kExitOk) return rc;
      }
      options_.client_id = client_id_;
      options_.client_seq = args_.client_seq;
    }
    int rc = kExitOk;
    std::optional<Exchange> reply = exchange(method, target, body, if_match, rc);
    if (!reply) return rc;
    return finish(reply->http, reply->json, print);
  }

  // Opens a client session (POST /v1/session); its id goes on this run's writes.
  int open_session() {
    options_.client_id = 0;
    int rc = kExitOk;
    std::optional<Exchange> reply = exchange("POST", "/v1/session", "", "", rc);
    if (!reply) return rc;
    const json::object* o = reply->json.if_object();
    const json::value* id = o == nullptr ? nullptr : o->if_contains("client_id");
    if (reply->http.status != 200 || id == nullptr || !id->is_number()) {
      std::cerr << "anya-ha ctl: could not open a client session for an exactly-once write: ";
      return finish(reply->http, reply->json, [](const json::value&) {});
    }
    client_id_ = json::value_to<std::uint64_t>(*id);
    return kExitOk;
  }

 private:
  struct Exchange {
    transport::HttpReply http;
    json::value json;  // null if the body is not JSON
  };

  // The reply of the first endpoint that answers (following a not_leader hint), or nullopt
  // with `rc` set and the reason printed.
  std::optional<Exchange> exchange(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& if_match,
                                   int& rc) {
    Status last(Errc::io_error, "no endpoint");
    for (const std::string& first : endpoints_) {
      std::string endpoint = first;
      for (int hop = 0; hop <= kMaxLeaderHops; hop++) {
        Result<transport::HttpReply> r =
            transport::admin_request(options_, endpoint, method, target, body, if_match);
        if (!r) {
          if (r.status().code() == Errc::invalid_argument) {
            std::cerr << "anya-ha ctl: " << r.status().message() << "\n";
            rc = kExitUsage;
            return std::nullopt;
          }
          last = r.status();
          break;  // next endpoint
        }
        boost::system::error_code ec;
        json::value v = json::parse(r->body, ec);
        if (r->status == 421 && !ec && v.is_object()) {
          const json::value* hint = v.as_object().if_contains("leader_admin");
          if (hint != nullptr && hint->is_string() && !hint->as_string().empty() &&
              std::string(hint->as_string()) != endpoint) {
            endpoint = std::string(hint->as_string());
            continue;
          }
        }
        return Exchange{std::move(r).value(), ec ? json::value(nullptr) : std::move(v)};
      }
    }
    std::cerr << "anya-ha ctl: no endpoint answered: " << last.message() << "\n";
    rc = kExitFailed;
    return std::nullopt;
  }

  int finish(const transport::HttpReply& r, const json::value& v,
             const std::function<void(const json::value&)>& print) {
    const bool ok = r.status >= 200 && r.status < 300;
    if (args_.output == "json" || r.content_type.rfind("text/plain", 0) == 0) {
      (ok ? std::cout : std::cerr) << r.body;
      if (!r.body.empty() && r.body.back() != '\n') (ok ? std::cout : std::cerr) << "\n";
      return ok ? kExitOk : kExitFailed;
    }
    if (!ok) {
      if (v.is_object() && v.as_object().contains("error")) {
        std::cerr << "error: " << json::value_to<std::string>(v.at("error")) << ": "
                  << json::value_to<std::string>(v.at("message")) << "\n";
      } else {
        std::cerr << "error: HTTP " << r.status << ": " << r.body << "\n";
      }
      return kExitFailed;
    }
    print(v);
    return kExitOk;
  }

  const CtlArgs& args_;
  std::vector<std::string> endpoints_;
  transport::AdminClientOptions options_;
  std::uint64_t client_id_ = 0;
};

std::string str(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

// "chain: height 800000 (tip 0000…a054), quorum height 800001, 1 behind (max 2): ok", or why
// this node's view is unknown. Older nodes send no "chain": nothing is printed.
void print_chain(const json::object& o) {
  const json::value* c = o.if_contains("chain");
  if (c == nullptr || !c->is_object()) return;
  const json::object& chain = c->as_object();
  std::cout << "chain: ";
  if (chain.at("height").is_null()) {
    std::cout << "height unknown";
    if (!chain.at("probe_error").is_null()) {
      std::cout << " (probe: " << str(chain.at("probe_error")) << ")";
    } else if (!chain.at("probing").as_bool()) {
      std::cout << " (no chain probe)";
    }
  } else {
    std::string tip = str(chain.at("tip"));
    if (tip.size() > 16) tip = tip.substr(0, 8) + "…" + tip.substr(tip.size() - 8);
    std::cout << "height " << str(chain.at("height")) << " (tip " << tip << ")";
  }
  std::cout << ", quorum height " << str(chain.at("quorum_height"));
  if (!chain.at("blocks_behind").is_null()) {
    std::cout << ", " << str(chain.at("blocks_behind")) << " behind";
  }
  std::cout << " (max " << str(chain.at("max_blocks_behind")) << "): "
            << (chain.at("behind").as_bool() ? "BEHIND, will not lead" : "ok") << "\n";
}

// This node's verdict on the service it protects, and one line per probe.
void print_health(const json::object& o) {
  const json::value* h = o.if_contains("health");
  if (h == nullptr || !h->is_object()) return;
  const json::object& health = h->as_object();
  if (!health.at("monitored").as_bool()) {
    std::cout << "health: not monitored (no probes or resource limits)\n";
    return;
  }
  std::cout << "health: " << str(health.at("explanation")) << "\n";
  for (const json::value& p : health.at("probes").as_array()) {
    const json::object& probe = p.as_object();
    std::cout << "  probe " << str(probe.at("name")) << " (" << str(probe.at("type"))
              << "): " << str(probe.at("state")) << ", error ratio "
              << str(probe.at("error_ratio")) << ", p50 " << str(probe.at("p50_ms"))
              << " ms, p99 " << str(probe.at("p99_ms")) << " ms";
    const std::string error = str(probe.at("last_error"));
    if (!error.empty() && error != "-") std::cout << ", last error: " << error;
    std::cout << "\n";
  }
}

void print_status(const json::value& v) {
  const json::object& o = v.as_object();
  std::cout << "node " << str(o.at("node_id")) << " (cluster " << str(o.at("cluster_id"))
            << "): " << str(o.at("role")) << ", term " << str(o.at("term")) << ", leader "
            << str(o.at("leader")) << "\n"
            << "commit " << str(o.at("commit_index")) << ", applied "
            << str(o.at("applied_index")) << ", quorum " << str(o.at("quorum"))
            << ", config version " << str(o.at("config_version")) << ", fencing token "
            << str(o.at("fencing_token")) << "\n";
  print_chain(o);
  print_health(o);
  std::cout << "ID\tVOTER\tREACH\tHEALTH\tRTT_MS\tLAST_SEEN_MS\tCHAIN_HEIGHT\tADDRESS\n";
  const auto field = [](const json::object& mo, std::string_view key) {
    const json::value* v = mo.if_contains(key);
    return v != nullptr ? str(*v) : std::string("-");
  };
  for (const json::value& m : o.at("members").as_array()) {
    const json::object& mo = m.as_object();
    std::cout << field(mo, "id") << "\t" << field(mo, "voter") << "\t"
              << field(mo, "reachability") << "\t" << field(mo, "health") << "\t"
              << field(mo, "rtt_ms") << "\t" << field(mo, "last_seen_ms") << "\t"
              << field(mo, "chain_height") << "\t" << field(mo, "address") << "\n";
  }
}

void print_json(const json::value& v) { std::cout << json::serialize(v) << "\n"; }

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

using Action = std::function<int(Ctl&)>;
using On = std::function<void(CLI::App*, Action)>;

void print_write(const json::value& v) {
  std::cout << "revision " << str(v.at("revision"));
  const json::value* replayed = v.as_object().if_contains("replayed");
  if (replayed != nullptr && replayed->is_bool() && replayed->as_bool()) {
    std::cout << " (a retry: the first outcome; nothing applied again)";
  }
  std::cout << "\n";
}

// ctl utxo reserve|release|spend|get and ctl dlc create|get|transition|attest.
void add_record_commands(CLI::App* ctl, const std::shared_ptr<CtlArgs>& a, const On& on) {
  CLI::App* utxo = ctl->add_subcommand("utxo", "UTXO reservations: one owner per outpoint");
  utxo->require_subcommand(1);
  CLI::App* reserve = utxo->add_subcommand("reserve", "Reserve an outpoint for an owner");
  CLI::App* release = utxo->add_subcommand("release", "Give a reservation back");
  CLI::App* spend = utxo->add_subcommand("spend", "Mark an outpoint spent (final)");
  CLI::App* uget = utxo->add_subcommand("get", "Who holds an outpoint");
  for (CLI::App* sub : {reserve, release, spend, uget}) {
    sub->add_option("outpoint", a->outpoint, "TXID:VOUT")->required();
  }
  for (CLI::App* sub : {reserve, release, spend}) {
    sub->add_option("--owner", a->owner, "Who holds it (a wallet, a signer)")->required();
  }
  reserve->add_option("--ttl-ms", a->ttl_ms, "How long the reservation holds")
      ->capture_default_str();
  const auto utxo_write = [a](const char* action, bool with_ttl) {
    return [a, action, with_ttl](Ctl& c) {
      json::object body{{"outpoint", a->outpoint}, {"owner", a->owner}};
      if (with_ttl) body["ttl_ms"] = a->ttl_ms;
      return c.call("POST", std::string("/v1/utxo/") + action, json::serialize(body), "",
                    print_write);
    };
  };
  on(reserve, utxo_write("reserve", true));
  on(release, utxo_write("release", false));
  on(spend, utxo_write("spend", false));
  on(uget, [a](Ctl& c) {
    return c.call("GET", "/v1/utxo/" + url_escape(a->outpoint), "", "", print_json);
  });

  CLI::App* dlc = ctl->add_subcommand("dlc", "DLC contract records");
  dlc->require_subcommand(1);
  CLI::App* create = dlc->add_subcommand("create", "Record a contract and its oracle nonces");
  CLI::App* dget = dlc->add_subcommand("get", "A contract's state and attestations");
  CLI::App* transition = dlc->add_subcommand("transition", "Change state, only from FROM");
  CLI::App* attest = dlc->add_subcommand("attest", "Record the attestation for a nonce, once");
  for (CLI::App* sub : {create, dget, transition, attest}) {
    sub->add_option("contract", a->contract, "Contract id")->required();
  }
  create->add_option("--state", a->state, "The first state")->required();
  create->add_option("--nonce", a->nonces, "An oracle nonce commitment (64 hex), repeatable")
      ->required();
  transition->add_option("from", a->from_state)->required();
  transition->add_option("to", a->to_state)->required();
  attest->add_option("nonce", a->nonce, "The committed nonce (64 hex)")->required();
  attest->add_option("attestation", a->attestation, "The attestation (hex)")->required();
  on(create, [a](Ctl& c) {
    json::array nonces;
    for (const std::string& n : a->nonces) nonces.emplace_back(n);
    return c.call("POST", "/v1/dlc",
                  json::serialize(json::object{{"contract_id", a->contract},
                                               {"state", a->state},
                                               {"nonces", std::move(nonces)}}),
                  "", print_write);
  });
  on(dget, [a](Ctl& c) {
    return c.call("GET", "/v1/dlc/" + url_escape(a->contract), "", "", print_json);
  });
  on(transition, [a](Ctl& c) {
    return c.call("POST", "/v1/dlc/" + url_escape(a->contract) + "/transition",
                  json::serialize(json::object{{"from", a->from_state}, {"to", a->to_state}}),
                  "", print_write);
  });
  on(attest, [a](Ctl& c) {
    return c.call("POST", "/v1/dlc/" + url_escape(a->contract) + "/attest",
                  json::serialize(json::object{{"nonce", a->nonce},
                                               {"attestation", a->attestation}}),
                  "", print_write);
  });
}

}  // namespace

Runner add_ctl_command(CLI::App& app) {
  auto a = std::make_shared<CtlArgs>();
  CLI::App* ctl = app.add_subcommand("ctl", "Talk to a cluster's admin API");
  ctl->require_subcommand(1);
  ctl->fallthrough();
  ctl->add_option("--endpoint,--endpoints", a->endpoints,
                  "https://HOST:PORT[,...] (or ANYA_HA_ENDPOINTS)");
  ctl->add_option("--cacert", a->cacert, "Cluster CA (or ANYA_HA_CACERT)");
  ctl->add_option("--cert", a->cert, "Client certificate (or ANYA_HA_CERT)");
  ctl->add_option("--key", a->key, "Client key (or ANYA_HA_KEY)");
  ctl->add_option("--token", a->token, "Bearer token (or ANYA_HA_TOKEN)");
  ctl->add_option("-o,--output", a->output, "text or json");
  ctl->add_option("--client-id", a->client_id,
                  "Key and record writes: the session for exactly-once, from `ctl session open` "
                  "(default: a new session per run)");
  ctl->add_option("--client-seq", a->client_seq,
                  "Writes: the request number; repeat id and seq to retry a write safely")
      ->capture_default_str();

  auto actions = std::make_shared<std::vector<std::pair<CLI::App*, Action>>>();
  auto on = [&](CLI::App* sub, Action act) { actions->emplace_back(sub, std::move(act)); };

  on(ctl->add_subcommand("status", "This node's view of the cluster"), [a](Ctl& c) {
    return c.call("GET", "/v1/status", "", "", print_status);
  });
  CLI::App* members = ctl->add_subcommand("members", "List, add or remove members");
  CLI::App* madd = members->add_subcommand("add", "Add a member (as a learner, then a voter)");
  madd->add_option("id", a->id, "Node id")->required();
  madd->add_option("address", a->address, "Its peer address HOST:PORT")->required();
  madd->add_flag("--learner", a->learner, "Keep it a non-voting member");
  CLI::App* mremove = members->add_subcommand("remove", "Remove a member");
  mremove->add_option("id", a->id, "Node id")->required();
  on(madd, [a](Ctl& c) {
    json::object body{{"id", a->id}, {"address", a->address}, {"learner", a->learner}};
    return c.call("POST", "/v1/members", json::serialize(body), "", [a](const json::value&) {
      std::cout << "added node " << a->id << (a->learner ? " as a learner" : "") << "\n";
    });
  });
  on(mremove, [a](Ctl& c) {
    return c.call("DELETE", "/v1/members/" + std::to_string(a->id), "", "",
                  [a](const json::value&) { std::cout << "removed node " << a->id << "\n"; });
  });
  on(members, [a](Ctl& c) {
    return c.call("GET", "/v1/members", "", "", print_json);
  });

  CLI::App* config = ctl->add_subcommand("config", "The replicated configuration document");
  CLI::App* cget = config->add_subcommand("get", "The active version and document");
  CLI::App* cput = config->add_subcommand("put", "Propose a new document (two-phase)");
  cput->add_option("file", a->file, "JSON document file")->required()->check(CLI::ExistingFile);
  cput->add_option("--if-version", a->if_version, "Only if the active version is N");
  CLI::App* croll = config->add_subcommand("rollback", "Make an earlier version current again");
  croll->add_option("version", a->version, "The version to bring back")->required();
  CLI::App* chist = config->add_subcommand("history", "Versions kept");
  on(cget, [](Ctl& c) { return c.call("GET", "/v1/config", "", "", print_json); });
  on(cput, [a, cput](Ctl& c) {
    std::ifstream in(a->file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const bool has_if = cput->count("--if-version") > 0;
    return c.call("PUT", "/v1/config", text.str(),
                  has_if ? std::to_string(a->if_version) : std::string(), print_json);
  });
  on(croll, [a](Ctl& c) {
    return c.call("POST", "/v1/config/rollback",
                  json::serialize(json::object{{"version", a->version}}), "", print_json);
  });
  on(chist, [](Ctl& c) { return c.call("GET", "/v1/config/history", "", "", print_json); });
  on(config, [](Ctl& c) { return c.call("GET", "/v1/config", "", "", print_json); });

  CLI::App* leader = ctl->add_subcommand("leader", "Leadership");
  CLI::App* transfer = leader->add_subcommand("transfer", "Hand leadership to another voter");
  transfer->add_option("--to", a->to, "Target node id (default: the most caught-up voter)");
  on(transfer, [a](Ctl& c) {
    std::string body = a->to != 0 ? json::serialize(json::object{{"to", a->to}}) : "";
    return c.call("POST", "/v1/leader/transfer", body, "", print_json);
  });

  CLI::App* kv = ctl->add_subcommand("kv", "The replicated key-value store");
  CLI::App* kget = kv->add_subcommand("get", "Read a key (from the leader)");
  kget->add_option("key", a->key_name)->required();
  CLI::App* kput = kv->add_subcommand("put", "Write a key");
  kput->add_option("key", a->key_name)->required();
  kput->add_option("value", a->value)->required();
  CLI::App* kcas = kv->add_subcommand("cas", "Write a key only at the given revision");
  kcas->add_option("key", a->key_name)->required();
  kcas->add_option("revision", a->prev_revision, "Expected mod_revision (0: must not exist)")
      ->required();
  kcas->add_option("value", a->value)->required();
  CLI::App* kdel = kv->add_subcommand("delete", "Delete a key");
  kdel->add_option("key", a->key_name)->required();
  kdel->add_option("--prev-revision", a->prev_revision, "Only at this revision");
  on(kget, [a](Ctl& c) {
    return c.call("GET", "/v1/kv/" + url_escape(a->key_name), "", "", [a](const json::value& v) {
      std::cout << str(v.at("value")) << "\n";
    });
  });
  auto print_revision = [](const json::value& v) {
    std::cout << "revision " << str(v.at("revision")) << "\n";
  };
  on(kput, [a, print_revision](Ctl& c) {
    return c.call("PUT", "/v1/kv/" + url_escape(a->key_name),
                  json::serialize(json::object{{"value", a->value}}), "", print_revision);
  });
  on(kcas, [a, print_revision](Ctl& c) {
    return c.call("PUT", "/v1/kv/" + url_escape(a->key_name),
                  json::serialize(json::object{{"value", a->value},
                                               {"prev_revision", a->prev_revision}}),
                  "", print_revision);
  });
  on(kdel, [a, kdel, print_revision](Ctl& c) {
    std::string target = "/v1/kv/" + url_escape(a->key_name);
    if (kdel->count("--prev-revision") > 0) {
      target += "?prev_revision=" + std::to_string(a->prev_revision);
    }
    return c.call("DELETE", target, "", "", print_revision);
  });
  add_record_commands(ctl, a, on);
  CLI::App* token = ctl->add_subcommand("token", "Bearer tokens (admins only)");
  CLI::App* tcreate = token->add_subcommand("create", "Make a token; it is shown once");
  tcreate->add_option("--name", a->token_name, "What it is for")->required();
  auto* role_opt = tcreate->add_option("--role", a->token_role,
                                       "viewer, operator, admin or a custom role");
  auto* join_opt = tcreate->add_flag("--join", a->token_join,
                                     "A one-time token for `anya-ha join` (role join)");
  role_opt->excludes(join_opt);
  tcreate->add_option("--ttl", a->token_ttl, "How long it is valid, e.g. 1h or 30d (default: "
                                             "until revoked)");
  CLI::App* trevoke = token->add_subcommand("revoke", "Revoke a token by its id");
  trevoke->add_option("id", a->token_id, "The token's id (16 hex characters)")->required();
  on(tcreate, [a](Ctl& c) {
    if (a->token_role.empty() && !a->token_join) {
      std::cerr << "anya-ha ctl token create: give --role ROLE or --join\n";
      return kExitUsage;
    }
    json::object body{{"name", a->token_name},
                      {"role", a->token_join ? std::string("join") : a->token_role}};
    if (!a->token_ttl.empty()) {
      Result<std::uint64_t> ms = transport::parse_duration_ms(a->token_ttl);
      if (!ms || *ms < 1000) {
        std::cerr << "anya-ha ctl: --ttl: expected a duration of at least 1s, e.g. 1h\n";
        return kExitUsage;
      }
      body["ttl_seconds"] = *ms / 1000;
    }
    return c.call("POST", "/v1/tokens", json::serialize(body), "", [](const json::value& v) {
      std::cout << str(v.at("token")) << "\n";
      std::cerr << "token " << str(v.at("id")) << " (" << str(v.at("name")) << ", role "
                << str(v.at("role")) << "): keep it secret; it is not shown again\n";
    });
  });
  on(trevoke, [a](Ctl& c) {
    return c.call("DELETE", "/v1/tokens/" + a->token_id, "", "", [a](const json::value&) {
      std::cout << "revoked token " << a->token_id << "\n";
    });
  });
  on(token->add_subcommand("list", "Tokens made at run time (never their secrets)"),
     [](Ctl& c) { return c.call("GET", "/v1/tokens", "", "", print_json); });

  CLI::App* session = ctl->add_subcommand("session", "Client sessions for exactly-once writes");
  session->require_subcommand(1);
  on(session->add_subcommand("open", "Open a session; pass its id as --client-id on writes, "
                                     "with a new --client-seq per write and the same on a retry"),
     [](Ctl& c) {
       return c.call("POST", "/v1/session", "", "", [](const json::value& v) {
         std::cout << "client_id " << str(v.at("client_id")) << "\n";
       });
     });

  on(ctl->add_subcommand("lease", "The leader's lease and fencing token"), [](Ctl& c) {
    return c.call("GET", "/v1/lease", "", "", print_json);
  });

  return [a, actions]() {
    Ctl c(*a);
    if (int rc = c.check_connection(); rc != kExitOk) return rc;
    // The deepest parsed sub-command is the one to run (e.g. "members add", not "members").
    for (auto it = actions->begin(); it != actions->end(); ++it) {
      if (!it->first->parsed()) continue;
      bool child_parsed = false;
      for (CLI::App* child : it->first->get_subcommands({})) child_parsed |= child->parsed();
      if (!child_parsed) return it->second(c);
    }
    std::cerr << "anya-ha ctl: missing command (see anya-ha ctl --help)\n";
    return kExitUsage;
  };
}

}  // namespace anya::tools
