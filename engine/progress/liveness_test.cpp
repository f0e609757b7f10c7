// The failure detector's states and their hysteresis, and the smoothed round-trip time.
#include "engine/progress/liveness.hpp"

#include <gtest/gtest.h>

namespace anya::engine {
namespace {

const LivenessConfig kConfig{/*suspect_after_ms=*/300, /*down_after_ms=*/900, /*rise=*/2};

TEST(Liveness, UnknownUntilHeardThenSuspectThenDownWhenSilent) {
  PeerLiveness p(kConfig, 1000);
  EXPECT_EQ(p.state(), Liveness::unknown);
  p.tick(1299);
  EXPECT_EQ(p.state(), Liveness::unknown);
  p.tick(1300);  // never heard, silent for the suspect bound since watching began
  EXPECT_EQ(p.state(), Liveness::suspect);
  p.tick(1900);
  EXPECT_EQ(p.state(), Liveness::down);
  EXPECT_FALSE(p.ever_heard());
}

TEST(Liveness, OneLateAnswerMakesSuspectNotDownAndOneAnswerClearsIt) {
  PeerLiveness p(kConfig, 0);
  p.heard(10, 2);
  EXPECT_EQ(p.state(), Liveness::reachable);
  p.tick(309);
  EXPECT_EQ(p.state(), Liveness::reachable);
  p.tick(310);
  EXPECT_EQ(p.state(), Liveness::suspect);
  p.heard(400, std::nullopt);
  EXPECT_EQ(p.state(), Liveness::reachable);
  EXPECT_EQ(p.transitions(), 2u);
  p.tick(800);  // a long silence again, still short of down
  EXPECT_EQ(p.state(), Liveness::suspect);
}

TEST(Liveness, LeavingDownNeedsAnswersInARow) {
  PeerLiveness p(kConfig, 0);
  p.heard(0, std::nullopt);
  p.tick(900);
  ASSERT_EQ(p.state(), Liveness::down);
  // A peer that answers now and then (further apart than the suspect bound) stays down.
  p.heard(1000, std::nullopt);
  EXPECT_EQ(p.state(), Liveness::down);
  p.heard(1400, std::nullopt);
  EXPECT_EQ(p.state(), Liveness::down);
  // Two answers in step: back.
  p.heard(1450, std::nullopt);
  EXPECT_EQ(p.state(), Liveness::reachable);
  // A tick between answers that finds it silent only briefly changes nothing.
  p.tick(1500);
  EXPECT_EQ(p.state(), Liveness::reachable);
}

TEST(Liveness, ADownPeerGoesNowhereButDownWhileSilent) {
  PeerLiveness p(kConfig, 0);
  p.heard(0, std::nullopt);
  p.tick(1000);
  ASSERT_EQ(p.state(), Liveness::down);
  const std::uint64_t transitions = p.transitions();
  p.tick(1200);
  p.tick(5000);
  EXPECT_EQ(p.state(), Liveness::down);
  EXPECT_EQ(p.transitions(), transitions);
  EXPECT_EQ(p.silence_ms(5000), 5000u);
}

TEST(Liveness, SmoothedRoundTripFollowsRfc6298) {
  PeerLiveness p(kConfig, 0);
  EXPECT_FALSE(p.srtt_ms().has_value());
  p.heard(1, 8);
  EXPECT_EQ(*p.srtt_ms(), 8u);
  EXPECT_EQ(*p.rttvar_ms(), 4u);
  p.heard(2, 16);  // srtt = 7/8*8 + 1/8*16 = 9; rttvar = 3/4*4 + 1/4*8 = 5
  EXPECT_EQ(*p.srtt_ms(), 9u);
  EXPECT_EQ(*p.rttvar_ms(), 5u);
  for (int i = 0; i < 100; i++) p.heard(3 + i, 1);
  EXPECT_EQ(*p.srtt_ms(), 1u);  // converges on a steady sample
  EXPECT_EQ(p.rtt_samples(), 102u);
}

TEST(LivenessDeathTest, BoundsMustNest) {
  EXPECT_DEATH(PeerLiveness(LivenessConfig{300, 300, 2}, 0), "");
  EXPECT_DEATH(PeerLiveness(LivenessConfig{300, 900, 0}, 0), "");
}

}  // namespace
}  // namespace anya::engine
