// Tests for the connection gate (connection_gate.hpp), one per rule of its header: the caps on
// unauthenticated connections (in total, per source) and on all connections, which connection
// is evicted at each cap (the oldest of the full scope, silent ones first), that authenticated
// connections are never evicted and a newcomer is refused only when every slot is
// authenticated, how closes are attributed to deadlines, and the log limiter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "transport/net/connection_gate.hpp"

namespace anya::transport::net {
namespace {

using Verdict = Admission::Verdict;

// Small limits so every cap is reached in a few steps.
GateLimits small_limits() {
  GateLimits l;
  l.max_connections = 5;
  l.max_unauthenticated = 4;
  l.max_unauthenticated_per_source = 2;
  l.handshake_deadline_ms = 100;
  l.idle_deadline_ms = 1000;
  return l;
}

ConnectionId accepted(ConnectionGate& gate, const std::string& source, std::uint64_t now = 0) {
  const Admission a = gate.admit(source, now);
  EXPECT_EQ(a.verdict, Verdict::accept) << "from " << source;
  EXPECT_NE(a.id, kNoConnection);
  return a.id;
}

// Admits as an owner does: an evicted connection is closed, and its close reported, at once.
Admission admit_as_owner(ConnectionGate& gate, const std::string& source, std::uint64_t now) {
  Admission a = gate.admit(source, now);
  if (a.verdict == Verdict::accept_after_evicting) gate.closed(a.evicted, now);
  return a;
}

// ---------------------------------------------------------------- admission under the caps

TEST(ConnectionGate, AdmitsEachNewcomerWithAFreshIdWhileUnderEveryCap) {
  ConnectionGate gate(small_limits());
  const ConnectionId a = accepted(gate, "10.0.0.1");
  const ConnectionId b = accepted(gate, "10.0.0.1");
  const ConnectionId c = accepted(gate, "10.0.0.2");
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(gate.open_connections(), 3u);
  EXPECT_EQ(gate.unauthenticated(), 3u);
  EXPECT_EQ(gate.unauthenticated_from("10.0.0.1"), 2u);
  EXPECT_EQ(gate.unauthenticated_from("10.0.0.9"), 0u);
  EXPECT_EQ(gate.count(GateEvent::evicted_unauthenticated), 0u);
}

// ---------------------------------------------------------------- the priority slot

TEST(ConnectionGate, AtThePerSourceCapTheOldestOfThatSourceIsEvicted) {
  ConnectionGate gate(small_limits());
  const ConnectionId other = accepted(gate, "10.0.0.2");  // older than all of 10.0.0.1's
  const ConnectionId first = accepted(gate, "10.0.0.1");
  const ConnectionId second = accepted(gate, "10.0.0.1");
  const Admission third = gate.admit("10.0.0.1", 5);
  EXPECT_EQ(third.verdict, Verdict::accept_after_evicting);
  EXPECT_EQ(third.evicted, first) << "evicted another source's connection, or not the oldest";
  EXPECT_EQ(third.evicted_source, "10.0.0.1");
  EXPECT_EQ(third.reason, GateEvent::evicted_unauthenticated);
  EXPECT_FALSE(gate.is_open(first));
  EXPECT_TRUE(gate.is_open(other));
  EXPECT_TRUE(gate.is_open(second));
  EXPECT_TRUE(gate.is_open(third.id));
  EXPECT_EQ(gate.unauthenticated_from("10.0.0.1"), 2u);
  EXPECT_EQ(gate.count(GateEvent::evicted_unauthenticated), 1u);
}

TEST(ConnectionGate, AtTheUnauthenticatedCapWithEqualHoldingsTheOldestOfAllIsEvicted) {
  ConnectionGate gate(small_limits());  // 4 unauthenticated at most, 2 per source
  const ConnectionId oldest = accepted(gate, "10.0.0.1");
  accepted(gate, "10.0.0.2");
  accepted(gate, "10.0.0.3");
  accepted(gate, "10.0.0.4");
  const Admission a = gate.admit("10.0.0.5", 1);
  EXPECT_EQ(a.verdict, Verdict::accept_after_evicting);
  EXPECT_EQ(a.evicted, oldest);
  EXPECT_EQ(gate.unauthenticated(), 4u);
  EXPECT_EQ(gate.open_connections(), 4u);
}

TEST(ConnectionGate, AtTheUnauthenticatedCapTheAddressHoldingTheMostPays) {
  ConnectionGate gate(small_limits());  // 4 unauthenticated at most, 2 per source
  const ConnectionId lone = accepted(gate, "10.0.0.2");  // the oldest of all
  const ConnectionId first = accepted(gate, "10.0.0.1");
  accepted(gate, "10.0.0.1");
  accepted(gate, "10.0.0.3");
  const Admission a = gate.admit("10.0.0.4", 1);
  EXPECT_EQ(a.verdict, Verdict::accept_after_evicting);
  EXPECT_EQ(a.evicted, first) << "evicted from an address holding one, not the one holding two";
  EXPECT_TRUE(gate.is_open(lone));
}

// While one of the flood's addresses holds more unauthenticated connections than the client's
// does (here 2 addresses share the 3 slots the client leaves), the client is never evicted.
TEST(ConnectionGate, ALoneClientSurvivesAFloodFromAFewOtherAddresses) {
  ConnectionGate gate(small_limits());
  const ConnectionId client = accepted(gate, "10.0.0.9");  // silent, and the oldest
  for (int i = 0; i < 1000; i++) {
    const Admission flood = admit_as_owner(gate, "10.0.1." + std::to_string(i % 2), 1);
    ASSERT_NE(flood.evicted, client) << "after " << i << " flood connections";
  }
  EXPECT_TRUE(gate.is_open(client));
}

TEST(ConnectionGate, AConnectionThatSpokeIsEvictedAfterTheSilentOnes) {
  ConnectionGate gate(small_limits());
  const ConnectionId client = accepted(gate, "10.0.0.1");
  gate.spoke(client);
  gate.spoke(client);  // idempotent
  const ConnectionId idle = accepted(gate, "10.0.0.1");
  Admission a = gate.admit("10.0.0.1", 1);
  EXPECT_EQ(a.evicted, idle) << "the older client mid-handshake went before an idle one";
  // With every candidate talking, age decides again.
  gate.spoke(a.id);
  a = gate.admit("10.0.0.1", 2);
  EXPECT_EQ(a.evicted, client);
}

TEST(ConnectionGate, AClientThatSpokeSurvivesAnySilentFloodFromItsOwnAddress) {
  ConnectionGate gate(small_limits());
  for (int i = 0; i < 10; i++) admit_as_owner(gate, "10.0.0.1", 0);
  const Admission client = admit_as_owner(gate, "10.0.0.1", 1);
  EXPECT_EQ(client.verdict, Verdict::accept_after_evicting) << "a newcomer is never refused";
  gate.spoke(client.id);
  for (int i = 0; i < 1000; i++) {
    const Admission flood = admit_as_owner(gate, "10.0.0.1", 2);
    ASSERT_NE(flood.evicted, client.id) << "after " << i << " more silent connections";
  }
  gate.authenticated(client.id, 3);
  EXPECT_TRUE(gate.is_open(client.id));
}

TEST(ConnectionGate, AuthenticatedConnectionsAreNeverEvicted) {
  ConnectionGate gate(small_limits());  // 5 connections at most
  std::vector<ConnectionId> proven;
  for (int i = 0; i < 4; i++) {
    proven.push_back(accepted(gate, "10.0.0.1"));
    gate.authenticated(proven.back(), 0);
  }
  EXPECT_EQ(gate.unauthenticated(), 0u);
  const ConnectionId waiting = accepted(gate, "10.0.0.2");  // the fifth and last slot
  const Admission a = gate.admit("10.0.0.3", 1);
  EXPECT_EQ(a.verdict, Verdict::accept_after_evicting);
  EXPECT_EQ(a.evicted, waiting) << "evicted an authenticated connection";
  for (ConnectionId id : proven) EXPECT_TRUE(gate.is_open(id));
}

TEST(ConnectionGate, ANewcomerIsRefusedOnlyWhenEverySlotIsAuthenticated) {
  ConnectionGate gate(small_limits());
  for (int i = 0; i < 5; i++) gate.authenticated(accepted(gate, "10.0.0.1"), 0);
  const Admission refused = gate.admit("10.0.0.2", 1);
  EXPECT_EQ(refused.verdict, Verdict::refuse);
  EXPECT_EQ(refused.reason, GateEvent::refused_full);
  EXPECT_EQ(refused.id, kNoConnection);
  EXPECT_EQ(gate.open_connections(), 5u) << "a refused newcomer took a slot";
  EXPECT_EQ(gate.count(GateEvent::refused_full), 1u);
  // One closes: the next newcomer gets its slot.
  gate.closed(1, 2);
  EXPECT_EQ(gate.admit("10.0.0.2", 2).verdict, Verdict::accept);
}

// ---------------------------------------------------------------- closes

TEST(ConnectionGate, TheCloseOfAnEvictedConnectionIsIgnored) {
  ConnectionGate gate(small_limits());
  const ConnectionId first = accepted(gate, "10.0.0.1");
  accepted(gate, "10.0.0.1");
  const Admission a = gate.admit("10.0.0.1", 500);
  ASSERT_EQ(a.evicted, first);
  gate.closed(first, 500);  // past its handshake deadline, but it was evicted, not timed out
  EXPECT_EQ(gate.count(GateEvent::handshake_timeout), 0u);
  EXPECT_EQ(gate.open_connections(), 2u);
  EXPECT_EQ(gate.unauthenticated_from("10.0.0.1"), 2u);
}

TEST(ConnectionGate, AnUnauthenticatedCloseAtItsDeadlineIsAHandshakeTimeout) {
  ConnectionGate gate(small_limits());  // 100 ms to authenticate
  const ConnectionId early = accepted(gate, "10.0.0.1", 1000);
  const ConnectionId late = accepted(gate, "10.0.0.2", 1000);
  const ConnectionId proven = accepted(gate, "10.0.0.3", 1000);
  gate.authenticated(proven, 1050);
  gate.closed(early, 1099);  // a refusal or an EOF before the deadline
  EXPECT_EQ(gate.count(GateEvent::handshake_timeout), 0u);
  gate.closed(late, 1100);
  EXPECT_EQ(gate.count(GateEvent::handshake_timeout), 1u);
  gate.closed(proven, 1100);
  EXPECT_EQ(gate.count(GateEvent::handshake_timeout), 1u) << "an authenticated one counted";
  EXPECT_EQ(gate.open_connections(), 0u);
  EXPECT_EQ(gate.unauthenticated(), 0u);
  EXPECT_EQ(gate.unauthenticated_from("10.0.0.1"), 0u);
}

TEST(ConnectionGate, AnAuthenticatedCloseAfterItsIdleDeadlineIsAnIdleTimeout) {
  ConnectionGate gate(small_limits());  // 1000 ms idle
  const ConnectionId busy = accepted(gate, "10.0.0.1", 0);
  const ConnectionId idle = accepted(gate, "10.0.0.1", 0);
  gate.authenticated(busy, 10);
  gate.authenticated(idle, 10);
  gate.active(busy, 900);
  gate.closed(busy, 1500);  // 600 ms after its last request
  EXPECT_EQ(gate.count(GateEvent::idle_timeout), 0u);
  gate.closed(idle, 1010);
  EXPECT_EQ(gate.count(GateEvent::idle_timeout), 1u);
}

TEST(ConnectionGate, AZeroIdleDeadlineCountsNoIdleTimeouts) {
  GateLimits l = small_limits();
  l.idle_deadline_ms = 0;
  ConnectionGate gate(l);
  const ConnectionId id = accepted(gate, "10.0.0.1", 0);
  gate.authenticated(id, 0);
  gate.closed(id, 1'000'000);
  EXPECT_EQ(gate.count(GateEvent::idle_timeout), 0u);
}

TEST(ConnectionGateDeathTest, AnOwnerThatNeverReportsItsEvictionsClosedIsABug) {
  ConnectionGate gate(small_limits());
  EXPECT_DEATH(
      {
        for (int i = 0; i < 100; i++) (void)gate.admit("10.0.0.1", 0);
      },
      "assertion failed");
}

TEST(ConnectionGate, CountersNameEveryEventZerosIncluded) {
  ConnectionGate gate(small_limits());
  for (int i = 0; i < 3; i++) (void)gate.admit("10.0.0.1", 0);
  EXPECT_THAT(gate.counters(),
              ::testing::ElementsAre(::testing::Pair("evicted_unauthenticated", 1),
                                     ::testing::Pair("handshake_timeout", 0),
                                     ::testing::Pair("idle_timeout", 0),
                                     ::testing::Pair("refused_full", 0)));
}

// ---------------------------------------------------------------- misuse is a bug

TEST(ConnectionGateDeathTest, LimitsOutOfOrderAreABug) {
  GateLimits l = small_limits();
  l.max_unauthenticated_per_source = l.max_unauthenticated + 1;
  EXPECT_DEATH(ConnectionGate{l}, "assertion failed");
}

TEST(ConnectionGateDeathTest, AuthenticatingAnUnknownConnectionIsABug) {
  ConnectionGate gate(small_limits());
  EXPECT_DEATH(gate.authenticated(42, 0), "assertion failed");
}

// ---------------------------------------------------------------- the log limiter

TEST(LogLimiter, OneLinePerReasonPerIntervalCountingTheSkippedOnes) {
  LogLimiter limiter(10'000);
  EXPECT_TRUE(limiter.should_log("evicted", 1000));
  for (int i = 0; i < 42; i++) EXPECT_FALSE(limiter.should_log("evicted", 1000 + i * 100));
  EXPECT_FALSE(limiter.should_log("evicted", 10'999));
  const LogLimiter::Turn turn = limiter.should_log("evicted", 11'000);
  EXPECT_TRUE(turn.log);
  EXPECT_EQ(turn.suppressed, 43u);
  // The count starts over after a line is written.
  EXPECT_FALSE(limiter.should_log("evicted", 11'001));
  EXPECT_EQ(limiter.should_log("evicted", 21'000).suppressed, 1u);
}

TEST(LogLimiter, ReasonsAreLimitedIndependently) {
  LogLimiter limiter(10'000);
  EXPECT_TRUE(limiter.should_log("evicted", 0));
  EXPECT_TRUE(limiter.should_log("refused", 1));
  EXPECT_FALSE(limiter.should_log("evicted", 2));
  EXPECT_FALSE(limiter.should_log("refused", 3));
}

TEST(LogLimiter, TheSuppressedNoteIsEmptyWhenNothingWasSkipped) {
  EXPECT_EQ(LogLimiter::suppressed_note(0), "");
  EXPECT_EQ(LogLimiter::suppressed_note(42), " (42 more since the last message)");
}

TEST(ConnectionGate, TheGatesLimiterAppliesPerReason) {
  ConnectionGate gate(small_limits());
  EXPECT_TRUE(gate.should_log("evicted_unauthenticated", 0));
  EXPECT_FALSE(gate.should_log("evicted_unauthenticated", 1));
  EXPECT_TRUE(gate.should_log("refused_full", 1));
}

}  // namespace
}  // namespace anya::transport::net
