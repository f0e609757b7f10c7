// Unit tests of the Bitcoin records and client sessions in the state machine: outpoint and field
// validation, the record commands' encoding (round trip, every truncation, every flipped byte
// decodes strictly or not at all), the reservation and contract rules, and the at-most-once
// session rule, including across a snapshot.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/kv/bitcoin.hpp"
#include "engine/kv/command.hpp"
#include "engine/kv/kv.hpp"

namespace anya::engine {
namespace {

const std::string kTxid(64, 'a');
const std::string kNonceA(64, '1');
const std::string kNonceB(64, '2');

Outpoint op(std::uint32_t vout) { return Outpoint{kTxid, vout}; }

UtxoCommand utxo(UtxoOp o, std::uint32_t vout, std::string owner, std::uint64_t now_ms,
                 std::uint64_t ttl_ms = 0) {
  return UtxoCommand{o, op(vout), std::move(owner), now_ms, ttl_ms};
}
UtxoCommand reserve(std::uint32_t vout, std::string owner, std::uint64_t now_ms,
                    std::uint64_t ttl_ms = 1000) {
  return utxo(UtxoOp::reserve, vout, std::move(owner), now_ms, ttl_ms);
}

Command in_session(Command command, std::string client, std::uint64_t seq,
                   std::uint64_t now_ms = 0) {
  command.session = ClientSession{std::move(client), seq, now_ms};
  return command;
}

KvResult run(KvStore& store, Index index, const Command& command) {
  return store.apply(index, encode_command(command));
}

std::optional<UtxoRecord> record_of(const KvStore& store, std::uint32_t vout) {
  const KeyValue* kv = store.get(utxo_key(op(vout)));
  if (kv == nullptr) return std::nullopt;
  return *decode_utxo_record(kv->value);
}

TEST(Outpoint, ParsesAndNormalizes) {
  auto parsed = parse_outpoint(std::string(64, 'A') + ":7");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->txid, std::string(64, 'a'));
  EXPECT_EQ(parsed->vout, 7u);
  EXPECT_EQ(parsed->text(), std::string(64, 'a') + ":7");
  EXPECT_EQ(parse_outpoint(kTxid + ":4294967294")->vout, kMaxVout);
}

TEST(Outpoint, BadOnesNameTheField) {
  struct Case {
    std::string text;
    std::string field;
  };
  const std::vector<Case> cases = {
      {kTxid, "outpoint: expected TXID:VOUT"},
      {std::string(63, 'a') + ":0", "outpoint txid"},
      {std::string(65, 'a') + ":0", "outpoint txid"},
      {std::string(63, 'a') + "g:0", "outpoint txid"},
      {kTxid + ":", "outpoint vout"},
      {kTxid + ":-1", "outpoint vout"},
      {kTxid + ":1x", "outpoint vout"},
      {kTxid + ":4294967295", "outpoint vout"},  // the null outpoint's index
      {kTxid + ":99999999999999999999999", "outpoint vout"},
  };
  for (const Case& c : cases) {
    auto parsed = parse_outpoint(c.text);
    ASSERT_FALSE(parsed.is_ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), Errc::invalid_argument);
    EXPECT_EQ(parsed.status().message().rfind(c.field, 0), 0u)
        << c.text << " -> " << parsed.status().message();
  }
}

std::vector<Command> sample_records() {
  DlcCommand create{DlcOp::create, "c-1", "offered", {}, {kNonceA, kNonceB}, {}, {}};
  DlcCommand transition{DlcOp::transition, "c-1", "signed", "offered", {}, {}, {}};
  DlcCommand attest{DlcOp::attest, "c-1", {}, {}, {}, kNonceA, "beef"};
  return {reserve(3, "wallet-1", 1000, 500),
          utxo(UtxoOp::release, 3, "wallet-1", 7),
          utxo(UtxoOp::spend, 0, "w", 0),
          create,
          transition,
          attest,
          in_session(KvCommand::put("k", "v"), "client-1", 1, 99),
          in_session(reserve(1, "o", 5), "c", ~std::uint64_t{0}, 6),
          in_session(attest, "c2", 3)};
}

TEST(RecordCodec, RoundTripAndStrictness) {
  for (const Command& command : sample_records()) {
    ASSERT_TRUE(check_command(command).is_ok()) << check_command(command).to_string();
    const std::string bytes = encode_command(command);
    auto decoded = decode_command(bytes);
    ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, command);
    for (std::size_t length = 0; length < bytes.size(); ++length) {
      auto cut = decode_command(std::string_view(bytes).substr(0, length));
      ASSERT_FALSE(cut.is_ok()) << "prefix of " << length << " bytes decoded";
      EXPECT_NE(cut.status().message().find("byte offset"), std::string::npos);
    }
    // Every flipped byte either fails with a named offset or decodes to something that
    // encodes back to exactly those bytes.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ 0x41);
      auto result = decode_command(flipped);
      if (result.is_ok()) {
        EXPECT_EQ(encode_command(*result), flipped);
      } else {
        EXPECT_NE(result.status().message().find("byte offset"), std::string::npos)
            << result.status().message();
      }
    }
  }
}

TEST(RecordCodec, ChecksNameTheField) {
  EXPECT_NE(check_command(reserve(1, "o", 0, 0)).message().find("ttl_ms"), std::string::npos);
  EXPECT_NE(check_command(reserve(1, "o", 0, kMaxReservationTtlMs + 1)).message().find("ttl_ms"),
            std::string::npos);
  EXPECT_NE(check_command(reserve(1, "", 0)).message().find("owner"), std::string::npos);
  EXPECT_NE(check_command(reserve(1, "has space", 0)).message().find("owner"),
            std::string::npos);
  UtxoCommand upper = reserve(1, "o", 0);
  upper.outpoint.txid = std::string(64, 'A');
  EXPECT_NE(check_command(upper).message().find("txid"), std::string::npos);
  DlcCommand repeated{DlcOp::create, "c", "s", {}, {kNonceA, kNonceA}, {}, {}};
  EXPECT_NE(check_command(repeated).message().find("nonces[1]"), std::string::npos);
  DlcCommand bad_state{DlcOp::create, "c", "Offered", {}, {kNonceA}, {}, {}};
  EXPECT_NE(check_command(bad_state).message().find("state"), std::string::npos);
  DlcCommand odd{DlcOp::attest, "c", {}, {}, {}, kNonceA, "abc"};
  EXPECT_NE(check_command(odd).message().find("attestation"), std::string::npos);
  EXPECT_NE(check_command(in_session(KvCommand::put("k", "v"), "c", 0)).message().find(
                "client_seq"),
            std::string::npos);
}

TEST(Utxo, OneOwnerAtATimeUntilExpiry) {
  KvStore store;
  EXPECT_EQ(run(store, 1, reserve(0, "alice", 1000, 500)).outcome, KvOutcome::ok);
  const KvResult taken = run(store, 2, reserve(0, "bob", 1200, 500));
  EXPECT_EQ(taken.outcome, KvOutcome::conflict);
  EXPECT_EQ(taken.revision, 1u);
  EXPECT_NE(taken.message.find("reserved by alice"), std::string::npos) << taken.message;
  // The owner renews; the expiry moves.
  EXPECT_EQ(run(store, 3, reserve(0, "alice", 1400, 500)).outcome, KvOutcome::ok);
  EXPECT_EQ(record_of(store, 0)->expires_at_ms, 1900u);
  EXPECT_EQ(run(store, 4, reserve(0, "bob", 1899, 500)).outcome, KvOutcome::conflict);
  // Expired by the command's clock: another owner takes it, and the old owner cannot spend.
  EXPECT_EQ(run(store, 5, reserve(0, "bob", 1900, 500)).outcome, KvOutcome::ok);
  EXPECT_EQ(record_of(store, 0)->owner, "bob");
  EXPECT_EQ(run(store, 6, utxo(UtxoOp::spend, 0, "alice", 1950)).outcome, KvOutcome::conflict);
  EXPECT_EQ(run(store, 7, utxo(UtxoOp::release, 0, "alice", 1950)).outcome, KvOutcome::conflict);
}

TEST(Utxo, SpentIsFinal) {
  KvStore store;
  ASSERT_EQ(run(store, 1, reserve(2, "alice", 0)).outcome, KvOutcome::ok);
  ASSERT_EQ(run(store, 2, utxo(UtxoOp::spend, 2, "alice", 10)).outcome, KvOutcome::ok);
  EXPECT_EQ(record_of(store, 2)->state, UtxoState::spent);
  for (const UtxoCommand& later : {reserve(2, "alice", 10'000'000), reserve(2, "bob", 99),
                                   utxo(UtxoOp::release, 2, "alice", 11),
                                   utxo(UtxoOp::spend, 2, "alice", 12)}) {
    const KvResult r = run(store, store.revision() + 1, later);
    EXPECT_EQ(r.outcome, KvOutcome::conflict) << utxo_op_name(later.op);
    EXPECT_NE(r.message.find("spent"), std::string::npos);
  }
  EXPECT_EQ(record_of(store, 2)->state, UtxoState::spent);
}

TEST(Utxo, ReleaseFreesOnlyForTheOwner) {
  KvStore store;
  EXPECT_EQ(run(store, 1, utxo(UtxoOp::release, 1, "alice", 0)).outcome, KvOutcome::not_found);
  ASSERT_EQ(run(store, 2, reserve(1, "alice", 0)).outcome, KvOutcome::ok);
  EXPECT_EQ(run(store, 3, utxo(UtxoOp::release, 1, "bob", 10)).outcome, KvOutcome::conflict);
  EXPECT_EQ(run(store, 4, utxo(UtxoOp::release, 1, "alice", 10)).outcome, KvOutcome::ok);
  EXPECT_FALSE(record_of(store, 1).has_value());
  EXPECT_EQ(run(store, 5, reserve(1, "bob", 20)).outcome, KvOutcome::ok);
}

TEST(Utxo, PlainWritesCannotForgeRecords) {
  KvStore store;
  for (const std::string& key : {utxo_key(op(0)), dlc_key("c"),
                                 std::string(kSessionKeyPrefix) + "x"}) {
    const KvResult r = run(store, store.revision() + 1, KvCommand::put(key, "forged"));
    EXPECT_EQ(r.outcome, KvOutcome::invalid) << key;
    EXPECT_NE(r.message.find("reserved"), std::string::npos);
    EXPECT_EQ(store.get(key), nullptr);
  }
  // Other _anya/ keys (tokens, audit heads) stay plain.
  EXPECT_EQ(run(store, 9, KvCommand::put("_anya/tokens/t", "x")).outcome, KvOutcome::ok);
}

TEST(Dlc, CompareAndSetStatesAndOneAttestationPerNonce) {
  KvStore store;
  const DlcCommand create{DlcOp::create, "c-1", "offered", {}, {kNonceA, kNonceB}, {}, {}};
  EXPECT_EQ(run(store, 1, create).outcome, KvOutcome::ok);
  EXPECT_EQ(run(store, 2, create).outcome, KvOutcome::conflict);
  DlcCommand to_signed{DlcOp::transition, "c-1", "signed", "offered", {}, {}, {}};
  EXPECT_EQ(run(store, 3, to_signed).outcome, KvOutcome::ok);
  const KvResult stale = run(store, 4, to_signed);  // expects offered, is signed
  EXPECT_EQ(stale.outcome, KvOutcome::conflict);
  EXPECT_NE(stale.message.find("in state signed"), std::string::npos) << stale.message;

  DlcCommand attest{DlcOp::attest, "c-1", {}, {}, {}, kNonceA, "aa"};
  EXPECT_EQ(run(store, 5, attest).outcome, KvOutcome::ok);
  attest.attestation = "bb";  // a second attestation with the same nonce: refused
  EXPECT_EQ(run(store, 6, attest).outcome, KvOutcome::conflict);
  attest.nonce = std::string(64, '3');  // not committed
  EXPECT_EQ(run(store, 7, attest).outcome, KvOutcome::invalid);
  attest.nonce = kNonceB;
  EXPECT_EQ(run(store, 8, attest).outcome, KvOutcome::ok);
  DlcCommand missing = to_signed;
  missing.contract_id = "c-2";
  EXPECT_EQ(run(store, 9, missing).outcome, KvOutcome::not_found);

  auto record = decode_dlc_record(store.get(dlc_key("c-1"))->value);
  ASSERT_TRUE(record.is_ok());
  EXPECT_EQ(record->state, "signed");
  EXPECT_EQ(record->attestations.at(kNonceA), "aa");
  EXPECT_EQ(record->attestations.at(kNonceB), "bb");
}

TEST(Session, RetryReturnsTheFirstOutcomeAndAppliesOnce) {
  KvStore store;
  const Command put = in_session(KvCommand::put("k", "v1"), "c", 1);
  const KvResult first = run(store, 1, put);
  ASSERT_EQ(first.outcome, KvOutcome::ok);
  // Another client changes the key; the retry must not write v1 again.
  ASSERT_EQ(run(store, 2, KvCommand::put("k", "other")).outcome, KvOutcome::ok);
  const KvResult retry = run(store, 3, put);
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.outcome, KvOutcome::ok);
  EXPECT_EQ(retry.revision, 1u);
  EXPECT_EQ(store.get("k")->value, "other");
  // A refused reserve is remembered as refused, even after the outpoint is free again.
  ASSERT_EQ(run(store, 4, reserve(0, "alice", 0)).outcome, KvOutcome::ok);
  const Command bob = in_session(reserve(0, "bob", 10), "c", 2, 10);
  EXPECT_EQ(run(store, 5, bob).outcome, KvOutcome::conflict);
  ASSERT_EQ(run(store, 6, utxo(UtxoOp::release, 0, "alice", 20)).outcome, KvOutcome::ok);
  const KvResult again = run(store, 7, bob);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.outcome, KvOutcome::conflict);
  EXPECT_FALSE(record_of(store, 0).has_value());
}

TEST(Session, WindowAndUnknownSessions) {
  KvStore store;
  Index at = 0;
  // A new client may start anywhere in the first window, not beyond it.
  EXPECT_EQ(run(store, ++at, in_session(KvCommand::put("a", "x"), "late", kSessionWindow + 1))
                .outcome,
            KvOutcome::expired);
  EXPECT_EQ(store.get("a"), nullptr);
  for (std::uint64_t seq = 1; seq <= kSessionWindow + 5; ++seq) {
    ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("k", std::to_string(seq)), "c", seq))
                  .outcome,
              KvOutcome::ok);
  }
  // Seq 5 fell out of the window: its outcome is unknown, so it is refused, not re-applied.
  const KvResult old = run(store, ++at, in_session(KvCommand::put("k", "again"), "c", 5));
  EXPECT_EQ(old.outcome, KvOutcome::expired);
  EXPECT_EQ(store.get("k")->value, std::to_string(kSessionWindow + 5));
  // Seq 6 is the oldest remembered.
  EXPECT_TRUE(run(store, ++at, in_session(KvCommand::put("k", "x"), "c", 6)).replayed);
  // A gap inside the window (a request that never arrived) still applies once.
  const Command gap = in_session(KvCommand::put("g", "1"), "c", kSessionWindow + 20);
  EXPECT_FALSE(run(store, ++at, gap).replayed);
  const Command inside = in_session(KvCommand::put("g", "2"), "c", kSessionWindow + 19);
  EXPECT_FALSE(run(store, ++at, inside).replayed);
  EXPECT_TRUE(run(store, ++at, inside).replayed);
}

TEST(Session, LeastRecentlyUsedAndIdleSessionsAreForgotten) {
  KvLimits limits;
  limits.max_sessions = 3;
  KvStore store(limits);
  Index at = 0;
  for (const char* client : {"a", "b", "c"}) {
    ASSERT_EQ(run(store, ++at, in_session(KvCommand::put(client, "1"), client, 1, 0)).outcome,
              KvOutcome::ok);
  }
  ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("a", "2"), "a", 2, 0)).outcome,
            KvOutcome::ok);  // a is now the most recent; b the least
  ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("d", "1"), "d", 1, 0)).outcome,
            KvOutcome::ok);
  EXPECT_EQ(store.get(std::string(kSessionKeyPrefix) + "b"), nullptr);
  EXPECT_NE(store.get(std::string(kSessionKeyPrefix) + "a"), nullptr);
  // Idle past kSessionIdleMs by a later command's clock: forgotten.
  ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("e", "1"), "e", 1, kSessionIdleMs + 1))
                .outcome,
            KvOutcome::ok);
  EXPECT_EQ(store.get(std::string(kSessionKeyPrefix) + "c"), nullptr);
}

TEST(Session, SurvivesSnapshotAndMatchesDigest) {
  KvStore store;
  const Command put = in_session(KvCommand::put("k", "v"), "c", 1);
  ASSERT_EQ(run(store, 1, put).outcome, KvOutcome::ok);
  ASSERT_EQ(run(store, 2, in_session(reserve(4, "o", 0), "c", 2)).outcome, KvOutcome::ok);
  auto restored = KvStore::restore(store.snapshot());
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ(restored->digest(), store.digest());
  for (KvStore* s : {&store, &*restored}) {
    const KvResult retry = run(*s, 3, put);
    EXPECT_TRUE(retry.replayed);
    EXPECT_EQ(retry.revision, 1u);
  }
  EXPECT_EQ(restored->digest(), store.digest());
}

TEST(Session, AnAppliedWriteIsRememberedEvenWhenTheStoreIsFull) {
  KvLimits limits;
  limits.max_keys = 3;
  KvStore store(limits);
  ASSERT_EQ(run(store, 1, KvCommand::put("a", "1")).outcome, KvOutcome::ok);
  // Two keys left: the session key and the body's key both fit.
  ASSERT_EQ(run(store, 2, in_session(KvCommand::put("b", "1"), "c", 1)).outcome, KvOutcome::ok);
  // Full: the body is refused for lack of room, and that refusal is what is remembered.
  const Command next = in_session(KvCommand::put("x", "1"), "c2", 1);
  EXPECT_EQ(run(store, 3, next).outcome, KvOutcome::invalid);
  EXPECT_EQ(store.size(), 3u);
}

}  // namespace
}  // namespace anya::engine
