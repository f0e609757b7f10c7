// libFuzzer target for the replicated state machine (engine/kv): plain keys, UTXO reservations,
// DLC records and client sessions, applied in log order the way every replica applies them. The
// fuzzer's bytes are a sequence of steps; each is one of
//   raw       command bytes of any shape, applied at the next index;
//   built     a well-formed command chosen from a small universe (4 outpoints, 3 owners,
//             2 contracts, 3 clients, seqs 1..40), so that conflicts, expiry, spends, replays and
//             expired sessions happen often;
//   replay    an entry applied before, applied again at the next index (a retry that reached
//             the log twice);
//   snapshot  the store replaced by restore(snapshot()).
// Checks (a failure aborts with a description):
//   - apply never crashes on any bytes; a command that decodes encodes back to the same bytes;
//   - a reference model of the reservation rules agrees with every outcome the store gives, and
//     a spent outpoint never leaves the spent state;
//   - a replayed session entry returns its first outcome marked replayed and changes no key;
//   - restore(snapshot()) has the same digest, and the same keys.
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
const char* const kContracts[] = {"c-1", "c-2"};

std::string nonce(int k) { return std::string(64, static_cast<char>('a' + k)); }

Command built(Input& in, std::uint64_t& clock_ms) {
  clock_ms += in.u8() * 10;  // the proposers' clocks move forward, unevenly
  const std::uint8_t op = in.u8() % 6;
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
    command.session = ClientSession{"client" + std::to_string(in.u8() % 3),
                                    std::uint64_t{1} + in.u8() % 40,
                                    clock_ms};
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
  KvStore store;
  std::map<std::string, ModelUtxo> model;
  std::vector<Applied> history;
  std::uint64_t clock_ms = 0;
  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const std::uint8_t kind = in.u8() % 4;
    if (kind == 3) {
      auto restored = KvStore::restore(store.snapshot());
      if (!restored) finding("own snapshot refused: " + restored.status().message());
      if (restored->digest() != store.digest() || all_keys(*restored) != all_keys(store)) {
        finding("restore(snapshot()) differs");
      }
      store = std::move(restored).value();
      continue;
    }
    std::string bytes;
    if (kind == 0) bytes = in.bytes(in.u16() % 512);
    if (kind == 1) bytes = encode_command(built(in, clock_ms));
    if (kind == 2) {
      if (history.empty()) continue;
      bytes = history[in.u16() % history.size()].bytes;
    }
    const auto before = all_keys(store);
    const anya::Result<Command> decoded = decode_command(bytes);
    if (decoded && encode_command(*decoded) != bytes) finding("decode/encode not exact");
    const KvResult result = store.apply(store.revision() + 1, bytes);
    history.push_back({bytes, result});

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
