// The chain probe: what a probe may print (one test per refusal, each naming what is wrong), how
// an exec probe fails (cannot run, exits non-zero, is killed, times out, prints too much), and
// the prober thread handing every result on.
#include "transport/chain/chain_probe.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>

namespace anya::transport {
namespace {

const std::string kTip = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054";
const std::string kGood = "{\"height\": 800000, \"tip\": \"" + kTip + "\"}";

void expect_refused(std::string_view text, const std::string& part) {
  Result<engine::ChainView> r = parse_chain_view_json(text);
  ASSERT_FALSE(r.is_ok()) << "accepted: " << text;
  EXPECT_NE(r.status().message().find(part), std::string::npos)
      << "\"" << r.status().message() << "\" does not say \"" << part << "\"";
}

TEST(ChainViewJson, ParsesHeightAndTip) {
  Result<engine::ChainView> r = parse_chain_view_json(kGood + "\n");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->height, 800000u);
  EXPECT_EQ(r->tip[0], 0x00);
  EXPECT_EQ(r->tip[9], 0x02);
  EXPECT_EQ(r->tip[10], 0xa7);
  EXPECT_EQ(r->tip[31], 0x54);
  EXPECT_EQ(chain_tip_hex(*r), kTip) << "the hex reads back in the order it was printed";
}

TEST(ChainViewJson, UppercaseHexAndHeightZeroAreFine) {
  std::string upper = kTip;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Result<engine::ChainView> r =
      parse_chain_view_json("  {\"tip\": \"" + upper + "\", \"height\": 0}  ");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->height, 0u);
  EXPECT_EQ(chain_tip_hex(*r), kTip);
}

TEST(ChainViewJson, RefusesWhatIsNotAChainView) {
  expect_refused("", "printed nothing");
  expect_refused("  \n", "printed nothing");
  expect_refused("height=800000", "bad JSON");
  expect_refused(kGood + " {}", "bad JSON");
  expect_refused("[800000]", "JSON that is not an object");
  expect_refused("800000", "JSON that is not an object");
  expect_refused("{\"tip\": \"" + kTip + "\"}", "no \"height\"");
  expect_refused("{\"height\": 5}", "no \"tip\"");
  expect_refused("{\"heigth\": 5, \"tip\": \"" + kTip + "\"}", "unknown field \"heigth\"");
  expect_refused("{\"height\": -1, \"tip\": \"" + kTip + "\"}", "\"height\": -1, not a non-neg");
  expect_refused("{\"height\": 8.5, \"tip\": \"" + kTip + "\"}", "not a non-negative whole");
  expect_refused("{\"height\": \"800000\", \"tip\": \"" + kTip + "\"}", "not a non-negative");
  expect_refused("{\"height\": 18446744073709551615, \"tip\": \"" + kTip + "\"}",
                 "above the limit");
  expect_refused("{\"height\": 1, \"tip\": 7}", "\"tip\": 7, not a string");
  expect_refused("{\"height\": 1, \"tip\": \"abc\"}", "\"tip\" of 3 characters, not 64");
  std::string bad = kTip;
  bad[17] = 'g';
  expect_refused("{\"height\": 1, \"tip\": \"" + bad + "\"}", "non-hex character at position 17");
  // Every refusal says what a probe must print.
  expect_refused("{}", "expected {\"height\": N, \"tip\": \"<64 hex digits>\"}");
}

// ---- exec probes --------------------------------------------------------------------------------

TEST(ExecProbe, ReadsWhatTheCommandPrints) {
  Result<engine::ChainView> r =
      run_chain_probe_command("printf '%s\\n' '" + kGood + "'", 5000);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->height, 800000u);
  EXPECT_EQ(chain_tip_hex(*r), kTip);
}

TEST(ExecProbe, AFailingCommandSaysHowItFailed) {
  Result<engine::ChainView> r =
      run_chain_probe_command("echo 'error: could not connect to the server' >&2; exit 3", 5000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(),
            "exited with status 3: error: could not connect to the server");

  r = run_chain_probe_command("/nonexistent/bitcoin-cli getblockchaininfo", 5000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("exited with status 127 (command not found?)"),
            std::string::npos)
      << r.status().message();

  r = run_chain_probe_command("kill -9 $$", 5000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "killed by signal 9");
}

TEST(ExecProbe, BadOutputNamesTheField) {
  Result<engine::ChainView> r = run_chain_probe_command("echo '{\"height\": 5}'", 5000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no \"tip\""), std::string::npos) << r.status().message();
}

TEST(ExecProbe, AHungCommandIsKilledAtItsTimeout) {
  // The shell starts a child that would outlive it: the whole process group goes.
  Result<engine::ChainView> r = run_chain_probe_command("sleep 30 & sleep 30", 100);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "timed out after 100 ms; killed");
}

TEST(ExecProbe, EndlessOutputIsCutAndKilled) {
  Result<engine::ChainView> r = run_chain_probe_command("yes", 5000);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "printed more than 65536 bytes; killed");
}

TEST(ExecProbe, StdinIsEmpty) {
  // A probe that reads stdin must not hang on (or steal) the node's: it reads /dev/null.
  Result<engine::ChainView> r =
      run_chain_probe_command("cat; printf '%s' '" + kGood + "'", 5000);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
}

// ---- the prober thread --------------------------------------------------------------------------

TEST(ChainProber, DeliversEveryResultUntilStopped) {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Result<engine::ChainView>> got;
  int calls = 0;
  auto probe = [&]() -> Result<engine::ChainView> {
    std::lock_guard lock(mutex);
    calls++;
    if (calls == 2) return Status(Errc::io_error, "backend down");
    engine::ChainView v;
    v.height = static_cast<std::uint64_t>(calls);
    return v;
  };
  ChainProber prober(probe, 10, [&](Result<engine::ChainView> r) {
    std::lock_guard lock(mutex);
    got.push_back(std::move(r));
    changed.notify_all();
  });
  prober.start();
  {
    std::unique_lock lock(mutex);
    // A bound so a broken prober fails the test instead of hanging it; not a speed check.
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(30), [&] { return got.size() >= 3; }));
  }
  prober.stop();
  std::lock_guard lock(mutex);
  const std::size_t after_stop = got.size();
  EXPECT_EQ(after_stop, static_cast<std::size_t>(calls)) << "every probe's result is delivered";
  ASSERT_TRUE(got[0].is_ok());
  EXPECT_EQ(got[0]->height, 1u);
  ASSERT_FALSE(got[1].is_ok());
  EXPECT_EQ(got[1].status().message(), "backend down");
  ASSERT_TRUE(got[2].is_ok());
  EXPECT_EQ(got[2]->height, 3u);
}

TEST(ChainProber, StopBeforeTheFirstIntervalEndsWaitsForNothing) {
  int delivered = 0;
  ChainProber prober([] { return Result<engine::ChainView>(engine::ChainView{}); },
                     3'600'000, [&](Result<engine::ChainView>) { delivered++; });
  prober.start();
  prober.stop();  // returns at once although the next probe is an hour away
  EXPECT_LE(delivered, 1);
}

}  // namespace
}  // namespace anya::transport
