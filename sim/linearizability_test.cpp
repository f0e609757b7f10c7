// The linearizability checker: histories that are and are not linearizable, including the
// stale reads this product once served, and unknown outcomes.
#include "sim/linearizability.hpp"

#include <gtest/gtest.h>

namespace anya::sim {
namespace {

using Kind = KvOp::Kind;
using Outcome = KvOp::Outcome;

KvOp op(Kind kind, std::string value, std::uint64_t at, std::optional<std::uint64_t> done,
        Outcome outcome = Outcome::ok, std::uint64_t revision = 0, std::uint64_t expected = 0) {
  KvOp o;
  o.kind = kind;
  o.key = "k";
  o.value = std::move(value);
  o.invoke_us = at;
  o.complete_us = done;
  o.outcome = outcome;
  o.revision = revision;
  o.expected = expected;
  return o;
}

TEST(Linearizability, SequentialWritesAndReads) {
  const auto r = check_linearizable({op(Kind::get, "", 0, 1, Outcome::not_found),
                                     op(Kind::put, "a", 2, 3, Outcome::ok, 5),
                                     op(Kind::get, "a", 4, 5, Outcome::ok, 5),
                                     op(Kind::cas, "b", 6, 7, Outcome::ok, 9, 5),
                                     op(Kind::get, "b", 8, 9, Outcome::ok, 9),
                                     op(Kind::del, "", 10, 11, Outcome::ok, 12),
                                     op(Kind::get, "", 12, 13, Outcome::not_found)});
  EXPECT_TRUE(r.ok) << r.explanation;
}

TEST(Linearizability, AStaleReadAfterANewerAcknowledgedWriteIsCaught) {
  // The bug seen after a leadership transfer: the old leader answers with the old value after
  // the new one acknowledged a newer write.
  const auto r = check_linearizable({op(Kind::put, "old", 0, 10, Outcome::ok, 3),
                                     op(Kind::put, "new", 20, 30, Outcome::ok, 7),
                                     op(Kind::get, "old", 40, 50, Outcome::ok, 3)});
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.inconclusive);
  EXPECT_EQ(r.key, "k");
  EXPECT_NE(r.explanation.find("get"), std::string::npos);
}

TEST(Linearizability, AReadConcurrentWithAWriteMaySeeEither) {
  for (const char* seen : {"old", "new"}) {
    const std::uint64_t rev = std::string(seen) == "old" ? 3 : 7;
    const auto r = check_linearizable({op(Kind::put, "old", 0, 10, Outcome::ok, 3),
                                       op(Kind::put, "new", 20, 40, Outcome::ok, 7),
                                       op(Kind::get, seen, 30, 35, Outcome::ok, rev)});
    EXPECT_TRUE(r.ok) << seen << "\n" << r.explanation;
  }
}

TEST(Linearizability, AnUnknownWriteMayLandLateOrNever) {
  // Never observed: fine.
  EXPECT_TRUE(check_linearizable({op(Kind::put, "a", 0, 1, Outcome::ok, 2),
                                  op(Kind::put, "lost", 5, std::nullopt),
                                  op(Kind::get, "a", 50, 60, Outcome::ok, 2)})
                  .ok);
  // Observed long after its invocation: fine.
  EXPECT_TRUE(check_linearizable({op(Kind::put, "a", 0, 1, Outcome::ok, 2),
                                  op(Kind::put, "late", 5, std::nullopt),
                                  op(Kind::get, "late", 50, 60, Outcome::ok, 9)})
                  .ok);
  // But once seen it cannot be unseen.
  const auto r = check_linearizable({op(Kind::put, "a", 0, 1, Outcome::ok, 2),
                                     op(Kind::put, "late", 5, std::nullopt),
                                     op(Kind::get, "late", 50, 60, Outcome::ok, 9),
                                     op(Kind::get, "a", 70, 80, Outcome::ok, 2)});
  EXPECT_FALSE(r.ok);
}

TEST(Linearizability, CompareAndSetOutcomesMustFitTheRevision) {
  EXPECT_TRUE(check_linearizable({op(Kind::put, "a", 0, 1, Outcome::ok, 4),
                                  op(Kind::cas, "b", 2, 3, Outcome::conflict, 4, 3)})
                  .ok);
  // A cas that won against a revision the key no longer had is not linearizable.
  EXPECT_FALSE(check_linearizable({op(Kind::put, "a", 0, 1, Outcome::ok, 4),
                                   op(Kind::put, "b", 2, 3, Outcome::ok, 6),
                                   op(Kind::cas, "c", 4, 5, Outcome::ok, 8, 4)})
                   .ok);
  // Two creates with expect 0 cannot both win.
  EXPECT_FALSE(check_linearizable({op(Kind::cas, "x", 0, 10, Outcome::ok, 4, 0),
                                   op(Kind::cas, "y", 1, 11, Outcome::ok, 5, 0)})
                   .ok);
}

TEST(Linearizability, KeysAreCheckedApart) {
  KvOp other = op(Kind::get, "zzz", 40, 50, Outcome::ok, 1);
  other.key = "other";
  const auto r = check_linearizable({op(Kind::put, "a", 0, 10, Outcome::ok, 3), other});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.key, "other");
}

}  // namespace
}  // namespace anya::sim

namespace anya::sim {
namespace {

TEST(HistoryFile, ParsesOperationsAndUnknownOutcomes) {
  const auto ops = parse_history(
      "# client kind key value expected invoke complete outcome revision\n"
      "1\tput\tk\tv1\t0\t10\t20\tok\t5\n"
      "\n"
      "2\tcas\tk\tv2\t5\t30\t-\t-\t0\n"
      "1\tget\tk\tv1\t0\t40\t50\tok\t5\n");
  ASSERT_TRUE(ops.is_ok()) << ops.status().message();
  ASSERT_EQ(ops->size(), 3u);
  EXPECT_EQ((*ops)[1].kind, KvOp::Kind::cas);
  EXPECT_FALSE((*ops)[1].complete_us.has_value());
  EXPECT_EQ((*ops)[2].revision, 5u);
  EXPECT_TRUE(check_linearizable(*ops).ok);
}

TEST(HistoryFile, BadLinesAreRefusedNamingLineAndField) {
  const struct {
    const char* text;
    const char* expected;
  } cases[] = {
      {"1\tput\tk\tv\t0\t10\t20\tok\n", "line 1: expected 9 tab-separated fields, found 8"},
      {"x\tput\tk\tv\t0\t10\t20\tok\t5\n", "line 1: client: 'x'"},
      {"1\tpost\tk\tv\t0\t10\t20\tok\t5\n", "line 1: kind: 'post'"},
      {"1\tput\t\tv\t0\t10\t20\tok\t5\n", "line 1: key"},
      {"\n1\tput\tk\tv\t0\t10\t5\tok\t5\n", "line 2: complete_us: '5'"},
      {"1\tput\tk\tv\t0\t10\t20\tmaybe\t5\n", "line 1: outcome: 'maybe'"},
      {"1\tget\tk\t\t0\t10\t-\t-\t0\n", "line 1: complete_us: a read with no answer"},
  };
  for (const auto& c : cases) {
    const auto r = parse_history(c.text);
    ASSERT_FALSE(r.is_ok()) << c.text;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace anya::sim
