// libFuzzer target for the replicated state machine (engine/kv): plain keys, UTXO reservations,
// DLC records and client sessions, applied in log order the way every replica applies them. The
// fuzzer's bytes are a sequence of steps; each is one of
//   raw       command bytes of any shape, applied at the next index;
//   built     a well-formed command chosen from a small universe (4 outpoints, 3 owners,
//             2 contracts, session opens, seqs 1..40 in one of the last 8 sessions opened or now
//             and then in one never opened), so that conflicts, expiry, spends, replays,
//             evicted and expired sessions happen often;
//   replay    an entry applied before, applied again at the next index (a retry that reached
//             the log twice);
//   snapshot  the store replaced by restore(snapshot()).
// Checks (a failure aborts with a description):
//   - apply never crashes on any bytes; a command that decodes encodes back to the same bytes;
//   - a reference model of the reservation rules agrees with every outcome the store gives, and
//     a spent outpoint never leaves the spent state;
//   - a reference model of the session rule (engine/kv/kv.hpp) agrees with the store: an open
//     creates the session named by its index; a request for a session never opened, or
//     forgotten, is expired; a known (client, seq) is replayed with its first outcome; the store
//     may forget a session (expired) only if it is idle by the highest clock seen or was among
//     the least recently used when an open found the store at max_sessions; a (client, seq) is
//     applied (not replayed, not expired) at most once;
//   - a replayed session entry returns its first outcome marked replayed and changes no key;
//   - restore(snapshot()) has the same digest, and the same keys.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv/kv.hpp"

namespace {

using namespace anya::engine;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "kv_fuzz finding: %s\n", what.c_str());
  std::abort();
}

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint64_t u16() { return u8() | (std::uint64_t{u8()} << 8); }
  std::string bytes(std::size_t n) {
    std::string out;
    while (n-- > 0 && !empty()) out.push_back(static_cast<char>(u8()));
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

const char* const kOwners[] = {"alice", "bob", "carol"};
// Small, so that opens evict the least recently used session often.
constexpr std::size_t kFuzzMaxSessions = 8;
const char* const kContracts[] = {"c-1", "c-2"};

std::string nonce(int k) { return std::string(64, static_cast<char>('a' + k)); }

// A client id for a session request: mostly one of the last sessions opened, now and then one
// that was never opened (or, early on, before any was).
std::uint64_t client_id(Input& in, const std::vector<std::uint64_t>& opened) {
  const std::uint8_t pick = in.u8();
  if (opened.empty() || pick % 16 == 0) return 1 + pick / 16;
  const std::size_t recent = std::min(opened.size(), kFuzzMaxSessions + 1);
  return opened[opened.size() - 1 - pick % recent];
}

Command built(Input& in, std::uint64_t& clock_ms, const std::vector<std::uint64_t>& opened) {
  clock_ms += in.u8() * 10;  // the proposers' clocks move forward, unevenly
  const std::uint8_t op = in.u8() % 7;
  if (op == 6) return Command(SessionOpen{clock_ms});
  const std::string owner = kOwners[in.u8() % 3];
  Command command;
  if (op < 3) {
    UtxoCommand u;
    u.op = static_cast<UtxoOp>(4 + op);
    u.outpoint = Outpoint{std::string(64, '0'), static_cast<std::uint32_t>(in.u8() % 4)};
    u.owner = owner;
    u.now_ms = clock_ms;
    if (u.op == UtxoOp::reserve) u.ttl_ms = 1 + in.u8() * 20;
    command = u;
  } else if (op < 5) {
    DlcCommand d;
    d.contract_id = kContracts[in.u8() % 2];
    if (op == 3) {
      d.op = DlcOp::create;
      d.state = "offered";
      d.nonces = {nonce(0), nonce(1)};
    } else {
      d.op = DlcOp::attest;
      d.nonce = nonce(in.u8() % 3);
      d.attestation = std::string(2 + 2 * (in.u8() % 3), 'f');
    }
    command = d;
  } else {
    command = KvCommand::put("k" + std::to_string(in.u8() % 4), owner);
  }
  if (in.u8() % 4 != 0) {
    const std::uint64_t id = client_id(in, opened);
    command.session = ClientSession{id, std::uint64_t{1} + in.u8() % 40, clock_ms};
  }
  return command;
}

struct ModelUtxo {
  UtxoState state = UtxoState::reserved;
  std::string owner;
  std::uint64_t expires_at_ms = 0;
};

// The reservation rules of engine/kv/bitcoin.hpp, written again from the header.
KvOutcome model_apply(std::map<std::string, ModelUtxo>& model, const UtxoCommand& c) {
  const std::string name = c.outpoint.text();
  auto it = model.find(name);
  if (it != model.end() && it->second.state == UtxoState::spent) return KvOutcome::conflict;
  if (it != model.end() && it->second.owner != c.owner && it->second.expires_at_ms > c.now_ms) {
    return KvOutcome::conflict;
  }
  switch (c.op) {
    case UtxoOp::reserve:
      model[name] = {UtxoState::reserved, c.owner, c.now_ms + c.ttl_ms};
      return KvOutcome::ok;
    case UtxoOp::release:
      if (it == model.end()) return KvOutcome::not_found;
      if (it->second.owner != c.owner) return KvOutcome::conflict;
      model.erase(it);
      return KvOutcome::ok;
    case UtxoOp::spend:
      model[name] = {UtxoState::spent, c.owner, 0};
      return KvOutcome::ok;
  }
  return KvOutcome::invalid;
}

// The session rule of engine/kv/kv.hpp, written again from the header. The store's forgetting
// (idle by the proposers' clocks, least recently used past max_sessions) is not predicted: an
// expired answer for a session the model holds is accepted if the rule allowed it, and the
// model forgets the session then.
class SessionModel {
 public:
  explicit SessionModel(std::size_t max_sessions) : max_sessions_(max_sessions) {}

  // Applying `open` at `index` gave `result`.
  void open(Index index, const SessionOpen& open, const KvResult& result) {
    max_clock_ms_ = std::max(max_clock_ms_, open.now_ms);
    if (result != KvResult{KvOutcome::ok, index, {}}) {
      finding("session open at index " + std::to_string(index) + ": store said " +
              kv_outcome_name(result.outcome) + " revision " + std::to_string(result.revision) +
              " (" + result.message + "), model ok revision " + std::to_string(index));
    }
    if (sessions_.size() >= max_sessions_) {
      // The store's least recently used has max_sessions - 1 newer ones, all held here.
      std::size_t marks = sessions_.size() - max_sessions_ + 1;
      for (auto it = order_.begin(); it != order_.end() && marks > 0; ++it, --marks) {
        sessions_.at(it->second).evictable = true;
      }
    }
    Session& session = sessions_[index];
    session.last_used_ms = open.now_ms;
    session.last_used_at = index;
    order_.emplace(index, index);
  }

  // Applying a command in session `s` at `index` gave `result`.
  void request(Index index, const ClientSession& s, const KvResult& result) {
    max_clock_ms_ = std::max(max_clock_ms_, s.now_ms);
    const std::string what = "client " + std::to_string(s.client_id) + " seq " +
                             std::to_string(s.seq) + " at index " + std::to_string(index) +
                             ": store said " + kv_outcome_name(result.outcome) +
                             (result.replayed ? " replayed" : "") + " (" + result.message + ")";
    const bool expired = result.outcome == KvOutcome::expired && !result.replayed;
    auto known = sessions_.find(s.client_id);
    if (known == sessions_.end()) {
      if (!expired) finding(what + ", model expired (no such session)");
      return;
    }
    Session& session = known->second;
    if (session.max_seq >= kSessionWindow && s.seq <= session.max_seq - kSessionWindow) {
      if (!expired) finding(what + ", model expired (older than the window)");
      return;
    }
    const bool idle = session.last_used_ms + kSessionIdleMs <= max_clock_ms_;
    if (expired) {
      if (!idle && !session.evictable) finding(what + ", model: a session it may not forget");
      order_.erase(session.last_used_at);
      sessions_.erase(known);
      return;
    }
    if (const auto first = session.outcomes.find(s.seq); first != session.outcomes.end()) {
      if (!result.replayed || result.outcome != first->second.outcome ||
          result.revision != first->second.revision) {
        finding(what + ", model replayed " + kv_outcome_name(first->second.outcome));
      }
      return;
    }
    if (result.replayed) finding(what + ", model: never applied before");
    const auto [at, fresh] = applied_at_.emplace(std::pair(s.client_id, s.seq), index);
    if (!fresh) finding(what + ", already applied at index " + std::to_string(at->second));
    session.outcomes[s.seq] = result;
    session.max_seq = std::max(session.max_seq, s.seq);
    while (session.max_seq >= kSessionWindow &&
           session.outcomes.begin()->first <= session.max_seq - kSessionWindow) {
      session.outcomes.erase(session.outcomes.begin());
    }
    session.last_used_ms = std::max(session.last_used_ms, s.now_ms);
    order_.erase(session.last_used_at);
    session.last_used_at = index;
    order_.emplace(index, s.client_id);
  }

 private:
  struct Session {
    std::uint64_t max_seq = 0;
    std::uint64_t last_used_ms = 0;
    Index last_used_at = 0;   // its open or latest fresh request: the store's LRU order
    bool evictable = false;   // an open met max_sessions - 1 more recently used sessions
    std::map<std::uint64_t, KvResult> outcomes;  // the last kSessionWindow seqs, by seq
  };
  std::size_t max_sessions_;
  std::uint64_t max_clock_ms_ = 0;
  std::map<std::uint64_t, Session> sessions_;  // those the store may still hold
  std::map<Index, std::uint64_t> order_;       // last use -> client id
  std::map<std::pair<std::uint64_t, std::uint64_t>, Index> applied_at_;
};

std::vector<std::pair<std::string, KeyValue>> all_keys(const KvStore& store) {
  return store.scan("", store.size() + 1);
}

struct Applied {
  std::string bytes;
  KvResult result;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  KvLimits limits;
  limits.max_sessions = kFuzzMaxSessions;
  KvStore store(limits);
  std::map<std::string, ModelUtxo> model;
  SessionModel sessions(limits.max_sessions);
  std::vector<std::uint64_t> opened;  // client ids of the sessions opened, in order
  std::vector<Applied> history;
  std::uint64_t clock_ms = 0;
  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const std::uint8_t kind = in.u8() % 4;
    if (kind == 3) {
      auto restored = KvStore::restore(store.snapshot(), limits);
      if (!restored) finding("own snapshot refused: " + restored.status().message());
      if (restored->digest() != store.digest() || all_keys(*restored) != all_keys(store)) {
        finding("restore(snapshot()) differs");
      }
      store = std::move(restored).value();
      continue;
    }
    std::string bytes;
    if (kind == 0) bytes = in.bytes(in.u16() % 512);
    if (kind == 1) bytes = encode_command(built(in, clock_ms, opened));
    if (kind == 2) {
      if (history.empty()) continue;
      bytes = history[in.u16() % history.size()].bytes;
    }
    const auto before = all_keys(store);
    const anya::Result<Command> decoded = decode_command(bytes);
    if (decoded && encode_command(*decoded) != bytes) finding("decode/encode not exact");
    const Index index = store.revision() + 1;
    const KvResult result = store.apply(index, bytes);
    history.push_back({bytes, result});
    if (decoded && decoded->open() != nullptr) {
      sessions.open(index, *decoded->open(), result);
      opened.push_back(index);
      continue;
    }
    if (decoded && decoded->session) sessions.request(index, *decoded->session, result);

    if (result.replayed) {
      if (!decoded || !decoded->session) finding("replayed without a session");
      if (all_keys(store) != before) finding("a replayed command changed the store");
      continue;  // its first outcome was checked against the model when it ran
    }
    if (!decoded || result.outcome == KvOutcome::expired) continue;
    for (const auto& [name, utxo] : model) {
      if (utxo.state != UtxoState::spent) continue;
      const KeyValue* kv = store.get(std::string(kUtxoKeyPrefix) + name);
      const auto record = kv == nullptr ? std::nullopt
                                        : std::optional<UtxoRecord>(*decode_utxo_record(kv->value));
      if (!record || record->state != UtxoState::spent) finding("a spent outpoint came back");
    }
    if (const UtxoCommand* u = decoded->utxo()) {
      const KvOutcome expected = model_apply(model, *u);
      if (expected != result.outcome) {
        finding(std::string("utxo ") + utxo_op_name(u->op) + " of " + u->outpoint.text() +
                " by " + u->owner + ": store said " +
                kv_outcome_name(result.outcome) + " (" + result.message + "), model " +
                kv_outcome_name(expected));
      }
    }
  }
  return 0;
}
