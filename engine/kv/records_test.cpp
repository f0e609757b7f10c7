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

Command in_session(Command command, std::uint64_t client, std::uint64_t seq,
                   std::uint64_t now_ms = 0) {
  command.session = ClientSession{client, seq, now_ms};
  return command;
}

KvResult run(KvStore& store, Index index, const Command& command) {
  return store.apply(index, encode_command(command));
}

// Opens a session at the next index; its client id.
std::uint64_t open_session(KvStore& store, std::uint64_t now_ms = 0) {
  const Index at = store.revision() + 1;
  const KvResult opened = run(store, at, SessionOpen{now_ms});
  EXPECT_EQ(opened.outcome, KvOutcome::ok) << opened.message;
  EXPECT_EQ(opened.revision, at);
  return at;
}

const KeyValue* session_of(const KvStore& store, std::uint64_t client) {
  return store.get(std::string(kSessionKeyPrefix) + std::to_string(client));
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
          in_session(KvCommand::put("k", "v"), 17, 1, 99),
          in_session(reserve(1, "o", 5), ~std::uint64_t{0}, ~std::uint64_t{0}, 6),
          in_session(attest, 2, 3),
          SessionOpen{123}};
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
  EXPECT_NE(check_command(in_session(KvCommand::put("k", "v"), 1, 0)).message().find(
                "client_seq"),
            std::string::npos);
  EXPECT_NE(check_command(in_session(KvCommand::put("k", "v"), 0, 1)).message().find(
                "client_id"),
            std::string::npos);
  EXPECT_NE(check_command(in_session(SessionOpen{}, 1, 1)).message().find("session open"),
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

TEST(Session, OpenAssignsTheEntryIndexAsTheClientId) {
  KvStore store;
  ASSERT_EQ(run(store, 1, KvCommand::put("a", "1")).outcome, KvOutcome::ok);
  const std::uint64_t first = open_session(store, 5);
  const std::uint64_t second = open_session(store, 5);  // a retried open: another session
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(second, 3u);
  ASSERT_NE(session_of(store, first), nullptr);
  EXPECT_EQ(session_of(store, first)->create_revision, first);
  EXPECT_EQ(run(store, 4, in_session(KvCommand::put("k", "v"), second, 1)).outcome,
            KvOutcome::ok);
}

TEST(Session, RetryReturnsTheFirstOutcomeAndAppliesOnce) {
  KvStore store;
  const std::uint64_t c = open_session(store);
  const Command put = in_session(KvCommand::put("k", "v1"), c, 1);
  const KvResult first = run(store, 2, put);
  ASSERT_EQ(first.outcome, KvOutcome::ok);
  // Another client changes the key; the retry must not write v1 again.
  ASSERT_EQ(run(store, 3, KvCommand::put("k", "other")).outcome, KvOutcome::ok);
  const KvResult retry = run(store, 4, put);
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.outcome, KvOutcome::ok);
  EXPECT_EQ(retry.revision, 2u);
  EXPECT_EQ(store.get("k")->value, "other");
  // A refused reserve is remembered as refused, even after the outpoint is free again.
  ASSERT_EQ(run(store, 5, reserve(0, "alice", 0)).outcome, KvOutcome::ok);
  const Command bob = in_session(reserve(0, "bob", 10), c, 2, 10);
  EXPECT_EQ(run(store, 6, bob).outcome, KvOutcome::conflict);
  ASSERT_EQ(run(store, 7, utxo(UtxoOp::release, 0, "alice", 20)).outcome, KvOutcome::ok);
  const KvResult again = run(store, 8, bob);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.outcome, KvOutcome::conflict);
  EXPECT_FALSE(record_of(store, 0).has_value());
}

TEST(Session, WindowAndUnknownSessions) {
  KvStore store;
  ASSERT_EQ(run(store, 1, KvCommand::put("a", "x")).outcome, KvOutcome::ok);
  // Only an open makes a session: an id never opened (a later index, or an index that held
  // another command) is refused whatever its seq, and nothing is written.
  for (const std::uint64_t never_opened : {1u, 2u, 99u}) {
    const KvResult r = run(store, store.revision() + 1,
                           in_session(KvCommand::put("a", "y"), never_opened, 1));
    EXPECT_EQ(r.outcome, KvOutcome::expired) << never_opened;
    EXPECT_NE(r.message.find("has no session"), std::string::npos) << r.message;
  }
  EXPECT_EQ(store.get("a")->value, "x");
  const std::uint64_t c = open_session(store);
  Index at = store.revision();
  // An opened session may start at any seq.
  for (std::uint64_t seq = 1000; seq <= 1000 + kSessionWindow + 5; ++seq) {
    ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("k", std::to_string(seq)), c, seq))
                  .outcome,
              KvOutcome::ok);
  }
  // Seq 1005 fell out of the window: its outcome is unknown, so it is refused, not re-applied.
  const KvResult old = run(store, ++at, in_session(KvCommand::put("k", "again"), c, 1005));
  EXPECT_EQ(old.outcome, KvOutcome::expired);
  EXPECT_EQ(store.get("k")->value, std::to_string(1000 + kSessionWindow + 5));
  // Seq 1006 is the oldest remembered.
  EXPECT_TRUE(run(store, ++at, in_session(KvCommand::put("k", "x"), c, 1006)).replayed);
  // A gap inside the window (a request that never arrived) still applies once.
  const Command gap = in_session(KvCommand::put("g", "1"), c, 1000 + kSessionWindow + 20);
  EXPECT_FALSE(run(store, ++at, gap).replayed);
  const Command inside = in_session(KvCommand::put("g", "2"), c, 1000 + kSessionWindow + 19);
  EXPECT_FALSE(run(store, ++at, inside).replayed);
  EXPECT_TRUE(run(store, ++at, inside).replayed);
}

TEST(Session, LeastRecentlyUsedAndIdleSessionsAreForgotten) {
  KvLimits limits;
  limits.max_sessions = 3;
  KvStore store(limits);
  const std::uint64_t a = open_session(store);
  const std::uint64_t b = open_session(store);
  const std::uint64_t c = open_session(store);
  Index at = store.revision();
  ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("a", "2"), a, 1)).outcome,
            KvOutcome::ok);  // a is now the most recent; b the least
  const std::uint64_t d = open_session(store);
  EXPECT_EQ(session_of(store, b), nullptr);
  EXPECT_NE(session_of(store, a), nullptr);
  // Idle past kSessionIdleMs by a later command's clock: forgotten.
  at = store.revision();
  ASSERT_EQ(run(store, ++at, in_session(KvCommand::put("d", "1"), d, 1, kSessionIdleMs + 1))
                .outcome,
            KvOutcome::ok);
  EXPECT_EQ(session_of(store, c), nullptr);
}

// A session forgotten (idle by one proposer's far-ahead clock, or evicted) is never re-opened
// by a late retry: the retry is refused as expired and nothing applies twice. This was a real
// bug when a request could open its own session: simulator seed 39, scenario
// session-clock-leap.
TEST(Session, AForgottenSessionIsNeverReopenedByALateRetry) {
  for (const bool evict : {false, true}) {
    KvLimits limits;
    limits.max_sessions = 2;
    KvStore store(limits);
    const std::uint64_t c = open_session(store, 1000);
    const Command put = in_session(KvCommand::put("k", "once"), c, 1, 1000);
    ASSERT_EQ(run(store, 2, put).outcome, KvOutcome::ok);
    ASSERT_EQ(run(store, 3, KvCommand::put("k", "changed")).outcome, KvOutcome::ok);
    if (evict) {
      open_session(store, 1000);
      open_session(store, 1000);  // c was the least recently used of 3 > max_sessions
    } else {
      const std::uint64_t other = open_session(store, 2000);
      // One proposer's clock leaps a day ahead: c looks idle and is forgotten.
      ASSERT_EQ(run(store, store.revision() + 1,
                    in_session(KvCommand::put("x", "1"), other, 1, 1000 + kSessionIdleMs))
                    .outcome,
                KvOutcome::ok);
    }
    ASSERT_EQ(session_of(store, c), nullptr) << "evict " << evict;
    const KvResult late = run(store, store.revision() + 1, put);
    EXPECT_EQ(late.outcome, KvOutcome::expired) << "evict " << evict;
    EXPECT_EQ(store.get("k")->value, "changed") << "evict " << evict;
    EXPECT_EQ(session_of(store, c), nullptr);
  }
}

TEST(Session, SurvivesSnapshotAndMatchesDigest) {
  KvStore store;
  const std::uint64_t c = open_session(store);
  const Command put = in_session(KvCommand::put("k", "v"), c, 1);
  ASSERT_EQ(run(store, 2, put).outcome, KvOutcome::ok);
  ASSERT_EQ(run(store, 3, in_session(reserve(4, "o", 0), c, 2)).outcome, KvOutcome::ok);
  auto restored = KvStore::restore(store.snapshot());
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ(restored->digest(), store.digest());
  for (KvStore* s : {&store, &*restored}) {
    const KvResult retry = run(*s, 4, put);
    EXPECT_TRUE(retry.replayed);
    EXPECT_EQ(retry.revision, 2u);
    const KvResult unknown = run(*s, 5, in_session(KvCommand::put("k", "v"), 3, 1));
    EXPECT_EQ(unknown.outcome, KvOutcome::expired);
  }
  EXPECT_EQ(restored->digest(), store.digest());
}

TEST(Session, AnAppliedWriteIsRememberedEvenWhenTheStoreIsFull) {
  KvLimits limits;
  limits.max_keys = 4;
  KvStore store(limits);
  const std::uint64_t c = open_session(store);
  const std::uint64_t c2 = open_session(store);
  ASSERT_EQ(run(store, 3, KvCommand::put("a", "1")).outcome, KvOutcome::ok);
  // One key left, and the session keys exist: the body's key fits.
  ASSERT_EQ(run(store, 4, in_session(KvCommand::put("b", "1"), c, 1)).outcome, KvOutcome::ok);
  // Full: the body is refused for lack of room, and that refusal is what is remembered.
  const Command next = in_session(KvCommand::put("x", "1"), c2, 1);
  EXPECT_EQ(run(store, 5, next).outcome, KvOutcome::invalid);
  EXPECT_TRUE(run(store, 6, next).replayed);
  // And no session can be opened in a full store.
  EXPECT_EQ(run(store, 7, SessionOpen{}).outcome, KvOutcome::invalid);
  EXPECT_EQ(store.size(), 4u);
}

}  // namespace
}  // namespace anya::engine
