// The records checker on hand-made logs: it stays quiet while replicas follow the rules, and
// names the rule when a replica (played here by a fabricated result or a store fed another
// log) breaks one.
#include <gtest/gtest.h>

#include "engine/kv/command.hpp"
#include "engine/kv/kv.hpp"
#include "sim/records_checker.hpp"
#include "sim/records_workload.hpp"

namespace anya::sim {
namespace {

using engine::Command;
using engine::Entry;
using engine::Index;
using engine::KvOutcome;
using engine::KvResult;
using engine::KvStore;
using engine::UtxoCommand;
using engine::UtxoOp;

const engine::Outpoint kCoin = sim_outpoint(7, 1);

// Sessions are named by the index of their open: the tests open ca at index 1, cb at index 2.
constexpr std::uint64_t ca = 1;
constexpr std::uint64_t cb = 2;

Command utxo(UtxoOp op, const std::string& owner, std::uint64_t now_ms, std::uint64_t ttl_ms,
             std::uint64_t client, std::uint64_t seq) {
  UtxoCommand u;
  u.op = op;
  u.outpoint = kCoin;
  u.owner = owner;
  u.now_ms = now_ms;
  u.ttl_ms = op == UtxoOp::reserve ? ttl_ms : 0;
  Command c(u);
  c.session = engine::ClientSession{client, seq, now_ms};
  return c;
}

Command open(std::uint64_t now_ms) { return Command(engine::SessionOpen{now_ms}); }

Entry entry(Index index, const Command& command) {
  return Entry{1, index, engine::EntryType::normal, engine::encode_command(command)};
}

// A replica: its own store, applying what it is given and telling the checker.
struct Replica {
  engine::NodeId id;
  KvStore kv;
  KvResult apply(RecordsChecker& checker, const Entry& e) {
    KvResult r = kv.apply(e.index, e.data);
    checker.on_applied(id, e, r, kv);
    return r;
  }
};

std::string violation(RecordsChecker& checker) {
  return checker.take_violation().value_or("");
}

// Opens ca and cb (indexes 1 and 2) on `replica`.
void open_two(RecordsChecker& checker, Replica& replica) {
  ASSERT_EQ(replica.apply(checker, entry(ca, open(1000))), (KvResult{KvOutcome::ok, ca, {}}));
  ASSERT_EQ(replica.apply(checker, entry(cb, open(1000))), (KvResult{KvOutcome::ok, cb, {}}));
}

TEST(RecordsChecker, QuietWhileReplicasFollowTheRules) {
  RecordsChecker checker;
  Replica a{1, KvStore()}, b{2, KvStore()};
  const std::vector<Entry> log = {
      entry(1, open(990)),                                         // ca
      entry(2, open(995)),                                         // cb
      entry(3, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)),
      entry(4, utxo(UtxoOp::reserve, "bob", 1050, 100, cb, 1)),    // held: conflict
      entry(5, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)),  // a retry: replayed
      entry(6, utxo(UtxoOp::reserve, "bob", 1200, 100, cb, 2)),    // expired: bob takes it
      entry(7, utxo(UtxoOp::spend, "bob", 1210, 0, cb, 3)),
      entry(8, utxo(UtxoOp::release, "bob", 1220, 0, cb, 4)),      // spent is final
      entry(9, open(1230)),                                        // a retried open: harmless
  };
  for (const Entry& e : log) a.apply(checker, e);
  for (const Entry& e : log) b.apply(checker, e);
  // Acknowledged as asked: the clocks of the attempt told may differ from the applied copy's.
  checker.on_acknowledged(1, open(0), ca);
  checker.on_acknowledged(1, utxo(UtxoOp::reserve, "alice", 990, 100, ca, 1), 3);
  checker.on_acknowledged(2, utxo(UtxoOp::reserve, "bob", 1300, 100, cb, 2), 6);
  Result<KvStore> restored = KvStore::restore(a.kv.snapshot());
  ASSERT_TRUE(restored.is_ok());
  checker.on_restored(3, *restored);
  EXPECT_EQ(violation(checker), "");
  EXPECT_EQ(checker.counts().checked_sessions, 12u);
  EXPECT_EQ(checker.counts().checked_utxo, 12u);
  EXPECT_EQ(checker.counts().checked_acks, 3u);
  EXPECT_EQ(checker.counts().checked_snapshots, 1u);
}

TEST(RecordsChecker, ARetryAppliedAgainIsAnExactlyOnceViolation) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)));
  const Entry retry = entry(4, utxo(UtxoOp::reserve, "alice", 1010, 100, ca, 1));
  // A replica that ignores the session applies the retry as new: ok, not replayed.
  checker.on_applied(1, retry, KvResult{KvOutcome::ok, 4, {}, false}, a.kv);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("exactly-once: client 1 seq 1 was applied (not replayed) at index 3 and "
                    "again at index 4", 0), 0u) << v;
}

TEST(RecordsChecker, ASpentOutpointReservedAgainIsCaught) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::spend, "alice", 1000, 0, ca, 1)));
  const Entry again = entry(4, utxo(UtxoOp::reserve, "bob", 1010, 100, cb, 1));
  KvStore broken;  // a replica whose store lost the spend: it grants the reservation
  (void)broken.apply(cb, entry(cb, open(1000)).data);
  const KvResult r = broken.apply(4, again.data);
  ASSERT_EQ(r.outcome, KvOutcome::ok);
  checker.on_applied(2, again, r, broken);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: a spent outpoint is final, yet node 2 computed ok", 0), 0u)
      << v;
  EXPECT_NE(v.find("spent by alice (index 3)"), std::string::npos) << v;
}

TEST(RecordsChecker, TwoOwnersOfOneOutpointAreCaught) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  const Entry grab = entry(4, utxo(UtxoOp::reserve, "bob", 1100, 100, cb, 1));
  KvStore broken;
  (void)broken.apply(cb, entry(cb, open(1000)).data);
  const KvResult r = broken.apply(4, grab.data);
  checker.on_applied(2, grab, r, broken);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: two owners of " + kCoin.text() + " at index 4", 0), 0u) << v;
}

TEST(RecordsChecker, AReplicaHoldingAnotherRecordIsCaught) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  a.apply(checker, entry(4, utxo(UtxoOp::release, "alice", 1100, 0, ca, 2)));
  // A snapshot at revision 4 that still holds alice's reservation.
  KvStore stale;
  (void)stale.apply(ca, entry(ca, open(1000)).data);
  (void)stale.apply(3, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)).data);
  (void)stale.apply(4, engine::encode_command(engine::KvCommand::put("x", "y")));
  checker.on_restored(3, stale);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: node 3 holds " + kCoin.text() +
                        " in the snapshot it restored at revision 4 as reserved by alice",
                    0),
            0u)
      << v;
}

TEST(RecordsChecker, AnAcknowledgementMustNameTheClientsCommand) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  a.apply(checker, entry(4, utxo(UtxoOp::reserve, "bob", 1001, 500, cb, 1)));  // conflict
  checker.on_acknowledged(1, utxo(UtxoOp::reserve, "bob", 1001, 500, cb, 1), 3);
  std::string v = violation(checker);
  EXPECT_EQ(v.rfind("acknowledged: node 1 told client 2 seq 1 its write succeeded at revision "
                    "3 (reserve of", 0), 0u) << v;
  EXPECT_NE(v.find("but that index holds reserve of " + kCoin.text() + " by alice"),
            std::string::npos) << v;
  RecordsChecker second;
  Replica b{1, KvStore()};
  open_two(second, b);
  b.apply(second, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  b.apply(second, entry(4, utxo(UtxoOp::reserve, "bob", 1001, 500, cb, 1)));
  // Told ok, but it lost (conflict).
  second.on_acknowledged(1, utxo(UtxoOp::reserve, "bob", 1001, 500, cb, 1), 4);
  v = violation(second);
  EXPECT_NE(v.find("but its first outcome there was conflict"), std::string::npos) << v;
  RecordsChecker third;
  Replica c{1, KvStore()};
  open_two(third, c);
  c.apply(third, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  // The same (client, seq), another request: the outcome told belongs to the one applied.
  third.on_acknowledged(1, utxo(UtxoOp::spend, "alice", 1000, 0, ca, 1), 3);
  v = violation(third);
  EXPECT_NE(v.find("(spend of " + kCoin.text() + " by alice"), std::string::npos) << v;
}

TEST(RecordsChecker, AnOpenAcknowledgedMustBeTheOpenAtThatIndex) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  checker.on_acknowledged(1, open(0), cb);
  EXPECT_EQ(violation(checker), "");
  checker.on_acknowledged(2, open(0), 3);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("acknowledged: node 2 told a client its session open succeeded with client "
                    "id 3, but that index holds reserve of", 0), 0u) << v;
}

TEST(RecordsChecker, AnOpenNamingAnotherSessionIsCaught) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  // A store that names the session by something else than the open's index.
  checker.on_applied(1, entry(1, open(1000)), KvResult{KvOutcome::ok, 7, {}, false}, a.kv);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("sessions: node 1 computed ok (revision 7) for a session open (now 1000 ms) "
                    "at index 1; the reference model computed ok (revision 1)", 0), 0u) << v;
}

TEST(RecordsChecker, ARequestForASessionNeverOpenedIsExpired) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  // Session 3 was never opened (index 3 is this very request): the store answers expired.
  const KvResult r = a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, 3, 1)));
  EXPECT_EQ(r.outcome, KvOutcome::expired);
  EXPECT_EQ(violation(checker), "");
  // A store that opens a session on the fly (the old rule) applies it.
  checker.on_applied(2, entry(4, utxo(UtxoOp::reserve, "alice", 1000, 500, 9, 1)),
                     KvResult{KvOutcome::ok, 4, {}, false}, a.kv);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: node 2 computed ok (revision 4) for reserve of", 0), 0u) << v;
  EXPECT_NE(v.find("[client 9 seq 1] at index 4; the reference model computes expired"),
            std::string::npos) << v;
}

TEST(RecordsChecker, AnExpiredAnswerWhereTheModelReplaysIsASessionMismatch) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 500, ca, 1)));
  // A replica that forgot the session, not idle, answers the retry as expired.
  checker.on_applied(2, entry(4, utxo(UtxoOp::reserve, "alice", 1005, 500, ca, 1)),
                     KvResult{KvOutcome::expired, 0, "forgotten", false}, a.kv);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: node 2 computed expired", 0), 0u) << v;
}

TEST(RecordsChecker, AnIdleSessionMayBeForgottenButNeverReopened) {
  RecordsChecker checker;
  Replica a{1, KvStore()};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)));
  // A proposer a day ahead opens a session: ca's is idle by its clock, and the store forgets it.
  const std::uint64_t day_later_ms = 1000 + engine::kSessionIdleMs;
  a.apply(checker, entry(4, open(day_later_ms)));
  const KvResult r = a.apply(checker, entry(5, utxo(UtxoOp::release, "alice", 1010, 0, ca, 2)));
  EXPECT_EQ(r.outcome, KvOutcome::expired);
  EXPECT_EQ(violation(checker), "") << "expired is the answer for a forgotten session";
  // A store that re-opens the forgotten session for a new seq: the model holds no session.
  checker.on_applied(1, entry(6, utxo(UtxoOp::release, "alice", 1020, 0, ca, 3)),
                     KvResult{KvOutcome::ok, 6, {}, false}, a.kv);
  std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: node 1 computed ok (revision 6)", 0), 0u) << v;
  EXPECT_NE(v.find("the reference model computes expired"), std::string::npos) << v;
  // And for a retry of seq 1, applied before the leap: it must not apply again.
  RecordsChecker second;
  Replica b{1, KvStore()};
  open_two(second, b);
  b.apply(second, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)));
  b.apply(second, entry(4, open(day_later_ms)));
  second.on_applied(1, entry(5, utxo(UtxoOp::reserve, "alice", 1020, 100, ca, 1)),
                    KvResult{KvOutcome::ok, 5, {}, false}, b.kv);
  v = violation(second);
  EXPECT_EQ(v.rfind("exactly-once: client 1 seq 1 was applied (not replayed) at index 3 and "
                    "again at index 5", 0), 0u) << v;
}

TEST(RecordsChecker, TheLeastRecentlyUsedSessionMayBeEvictedByAnOpen) {
  engine::KvLimits limits;
  limits.max_sessions = 2;
  RecordsChecker checker(limits.max_sessions);
  Replica a{1, KvStore(limits)};
  open_two(checker, a);
  a.apply(checker, entry(3, utxo(UtxoOp::reserve, "alice", 1000, 100, ca, 1)));  // cb is LRU
  a.apply(checker, entry(4, open(1100)));  // the store is full: it evicts cb
  const KvResult r = a.apply(checker, entry(5, utxo(UtxoOp::reserve, "bob", 1200, 100, cb, 1)));
  EXPECT_EQ(r.outcome, KvOutcome::expired);
  EXPECT_EQ(violation(checker), "") << "expired is the answer for an evicted session";
  // ca was used more recently: a replica that forgot it instead is caught.
  checker.on_applied(2, entry(6, utxo(UtxoOp::release, "alice", 1300, 0, ca, 2)),
                     KvResult{KvOutcome::expired, 0, "evicted", false}, a.kv);
  const std::string v = violation(checker);
  EXPECT_EQ(v.rfind("reservations: node 2 computed expired", 0), 0u) << v;
}

TEST(RecordsChecker, AttemptParametersRoundTrip) {
  const AttemptParam p = unpack_attempt(attempt_param(5, 3, 123456789));
  EXPECT_EQ(p.client, 5u);
  EXPECT_EQ(p.attempt, 3u);
  EXPECT_EQ(p.seq, 123456789u);
  EXPECT_TRUE(session_expired(Status(Errc::conflict, "session expired: gone")));
  EXPECT_FALSE(session_expired(Status(Errc::conflict, "revision mismatch")));
  EXPECT_NE(sim_outpoint(1, 0).txid, sim_outpoint(2, 0).txid);
  EXPECT_TRUE(engine::parse_outpoint(sim_outpoint(3, 2).text()).is_ok());
}

}  // namespace
}  // namespace anya::sim
