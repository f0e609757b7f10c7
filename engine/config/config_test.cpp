// The configuration 2PC, one test per rule of the contract in config.hpp.
#include "engine/config/config.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace anya::engine {
namespace {

constexpr std::uint64_t kDeadlineMs = 1000;

// Rejects the documents it was told to, with a message naming them.
class FakeValidator : public ConfigValidator {
 public:
  Status validate(std::uint64_t version, std::string_view document) override {
    calls.push_back(version);
    if (reject.count(std::string(document)) == 0) return Status::ok();
    return Status(Errc::invalid_argument, "unknown field in " + std::string(document));
  }
  std::set<std::string> reject;
  std::vector<std::uint64_t> calls;
};

// Three members (1, 2, 3) that apply one shared log, each up to where it is told.
class Cluster : public ::testing::Test {
 protected:
  static constexpr std::size_t kMembers = 3;

  // Appends `record` to the log and applies it on every member; returns the leader's effects.
  ConfigEffects commit_and_apply(const ConfigRecord& record) {
    append(record);
    ConfigEffects leader_effects;
    for (std::size_t m = 0; m < kMembers; ++m) {
      for (ConfigEffects& e : catch_up(m)) {
        if (m == 0) leader_effects = e;
      }
    }
    return leader_effects;
  }

  void append(const ConfigRecord& record) {
    log.push_back(Entry{1, log.size() + 1, EntryType::config_txn, encode_config_record(record)});
  }

  // Applies what member `m` has not applied yet; acks go to the coordinator like the host would.
  std::vector<ConfigEffects> catch_up(std::size_t m) {
    std::vector<ConfigEffects> out;
    while (applied[m] < log.size()) {
      out.push_back(states[m].apply(log[applied[m]++], validators[m], m + 1));
      if (out.back().ack) acks.push_back({m + 1, *out.back().ack});
    }
    return out;
  }

  void deliver_acks() {
    for (const auto& [from, ack] : acks) coordinator.on_ack(from, ack.version, ack.ok, ack.reason);
    acks.clear();
  }

  // Begin with every member required, replicate, deliver acks and decide.
  ConfigEffects change(const std::string& document, std::uint64_t now_ms = 0) {
    Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, document, {1, 2, 3}, now_ms);
    EXPECT_TRUE(prepare.is_ok()) << prepare.status().to_string();
    commit_and_apply(*prepare);
    deliver_acks();
    std::optional<ConfigRecord> decision = coordinator.decide(states[0], now_ms);
    EXPECT_TRUE(decision.has_value());
    return commit_and_apply(*decision);
  }

  std::vector<Entry> log;
  ConfigState states[kMembers];
  FakeValidator validators[kMembers];
  std::size_t applied[kMembers] = {0, 0, 0};
  std::vector<std::pair<NodeId, ConfigAck>> acks;
  ConfigCoordinator coordinator{kDeadlineMs};
};

TEST_F(Cluster, PrepareAckCommitActivatesOnAllMembers) {
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, R"({"a":1})", {3, 1, 2, 2}, 0);
  ASSERT_TRUE(prepare.is_ok());
  EXPECT_EQ(prepare->version, 1u);
  EXPECT_EQ(prepare->required, (std::vector<NodeId>{1, 2, 3})) << "sorted and unique";
  EXPECT_EQ(commit_and_apply(*prepare).staged, 1u);
  ASSERT_EQ(acks.size(), 3u) << "each required member acks";
  EXPECT_FALSE(coordinator.decide(states[0], 10).has_value()) << "no verdicts delivered yet";
  deliver_acks();
  std::optional<ConfigRecord> decision = coordinator.decide(states[0], 10);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(*decision, ConfigRecord::commit(1));
  EXPECT_FALSE(coordinator.decide(states[0], 10).has_value()) << "a decision is returned once";
  EXPECT_EQ(commit_and_apply(*decision).activated, 1u);
  for (const ConfigState& s : states) {
    EXPECT_EQ(s.active_version(), 1u);
    EXPECT_EQ(s.active_document(), R"({"a":1})");
    EXPECT_FALSE(s.staged().has_value());
    ASSERT_EQ(s.history().size(), 1u);
    EXPECT_EQ(s.history().back().index, 2u) << "the COMMIT's log index";
  }
  EXPECT_FALSE(coordinator.decide(states[0], 20).has_value());
  EXPECT_EQ(coordinator.open_version(), 0u) << "finished once the COMMIT applied";
}

TEST_F(Cluster, OnlyRequiredMembersAckButAllStage) {
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, "{}", {2}, 0);
  ASSERT_TRUE(prepare.is_ok());
  commit_and_apply(*prepare);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first, 2u);
  for (const ConfigState& s : states) EXPECT_TRUE(s.staged().has_value());
  EXPECT_EQ(validators[0].calls, std::vector<std::uint64_t>{1}) << "every member validates";
}

TEST_F(Cluster, RejectAbortsAndDropsStagedEverywhere) {
  validators[1].reject.insert("bad");
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, "bad", {1, 2, 3}, 0);
  ASSERT_TRUE(prepare.is_ok());
  commit_and_apply(*prepare);
  EXPECT_FALSE(acks[1].second.ok);
  EXPECT_EQ(acks[1].second.reason, "unknown field in bad");
  EXPECT_FALSE(states[1].staged()->locally_valid);
  deliver_acks();
  std::optional<ConfigRecord> decision = coordinator.decide(states[0], 1);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->kind, ConfigRecordKind::abort);
  EXPECT_EQ(decision->reason, "member 2 rejected version 1: unknown field in bad");
  ConfigEffects effects = commit_and_apply(*decision);
  EXPECT_EQ(effects.dropped, 1u);
  EXPECT_EQ(effects.reason, decision->reason);
  for (const ConfigState& s : states) {
    EXPECT_EQ(s.active_version(), 0u);
    EXPECT_FALSE(s.staged().has_value());
  }
}

TEST_F(Cluster, RejectIsFinalEvenIfAnOkFollows) {
  ASSERT_TRUE(coordinator.begin(states[0], {}, "{}", {1}, 0).is_ok());
  EXPECT_TRUE(coordinator.on_ack(1, 1, false, "no"));
  EXPECT_TRUE(coordinator.on_ack(1, 1, true, ""));
  std::optional<ConfigRecord> decision = coordinator.decide(states[0], 1);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->kind, ConfigRecordKind::abort);
}

TEST_F(Cluster, DeadlineAbortsNamingTheSilentMembers) {
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, "{}", {1, 2, 3}, 100);
  ASSERT_TRUE(prepare.is_ok());
  commit_and_apply(*prepare);
  coordinator.on_ack(1, 1, true, "");
  EXPECT_FALSE(coordinator.decide(states[0], 100 + kDeadlineMs).has_value()) << "not passed yet";
  std::optional<ConfigRecord> decision = coordinator.decide(states[0], 101 + kDeadlineMs);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->kind, ConfigRecordKind::abort);
  EXPECT_EQ(decision->reason, "deadline passed after 1000 ms; no verdict from 2, 3");
  EXPECT_EQ(commit_and_apply(*decision).dropped, 1u);
  EXPECT_FALSE(coordinator.on_ack(2, 1, true, "")) << "a late ack is ignored";
  EXPECT_EQ(coordinator.ignored_acks(), 1u);
}

TEST_F(Cluster, CompareAndSetConflictNamesTheCurrentVersion) {
  change("{}");
  change("{}");
  Result<ConfigRecord> stale = coordinator.begin(states[0], 1, "{}", {1}, 0);
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), Errc::conflict);
  EXPECT_EQ(stale.status().message(), "config version is 2, not 1");
  EXPECT_TRUE(coordinator.begin(states[0], 2, "{}", {1}, 0).is_ok());
}

TEST_F(Cluster, BusyWhileATransactionIsOpen) {
  ASSERT_TRUE(coordinator.begin(states[0], {}, "{}", {1}, 0).is_ok());
  Result<ConfigRecord> second = coordinator.begin(states[0], {}, "{}", {1}, 0);
  EXPECT_EQ(second.status().code(), Errc::busy) << "open in the coordinator";
  ConfigCoordinator other(kDeadlineMs);
  commit_and_apply(ConfigRecord::prepare(1, "{}", {1}));
  EXPECT_EQ(other.begin(states[0], {}, "{}", {1}, 0).status().code(), Errc::busy)
      << "open in the log";
  EXPECT_EQ(other.begin(states[0], 7, "{}", {1}, 0).status().code(), Errc::conflict)
      << "a conflict is final, so it wins over busy";
}

TEST_F(Cluster, BeginRejectsBadArguments) {
  auto code = [&](std::string doc, std::vector<NodeId> required) {
    return coordinator.begin(states[0], {}, std::move(doc), std::move(required), 0).status().code();
  };
  EXPECT_EQ(code("", {1}), Errc::invalid_argument);
  EXPECT_EQ(code(std::string(ConfigLimits::max_document_bytes + 1, 'x'), {1}),
            Errc::invalid_argument);
  EXPECT_EQ(code("{}", {}), Errc::invalid_argument);
  EXPECT_EQ(code("{}", {0, 1}), Errc::invalid_argument);
  EXPECT_EQ(coordinator.open_version(), 0u);
  EXPECT_TRUE(coordinator.begin(states[0], {}, std::string(ConfigLimits::max_document_bytes, 'x'),
                                {1}, 0).is_ok());
}

TEST_F(Cluster, RollbackMakesANewVersionWithTheOldDocument) {
  change("one");
  change("two");
  Result<ConfigRecord> rollback = coordinator.rollback(states[0], 1, 2, {1, 2, 3}, 0);
  ASSERT_TRUE(rollback.is_ok());
  EXPECT_EQ(rollback->version, 3u);
  EXPECT_EQ(rollback->document, "one");
  commit_and_apply(*rollback);
  deliver_acks();
  commit_and_apply(*coordinator.decide(states[0], 0));
  EXPECT_EQ(states[2].active_version(), 3u);
  EXPECT_EQ(states[2].active_document(), "one");
  Result<ConfigRecord> unknown = coordinator.rollback(states[0], 9, {}, {1}, 0);
  EXPECT_EQ(unknown.status().code(), Errc::invalid_argument);
  EXPECT_EQ(unknown.status().message(),
            "config version 9 is not in the history (it holds versions 1 to 3)");
}

TEST_F(Cluster, AbortedVersionsAreNeverReused) {
  validators[0].reject.insert("bad");
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, "bad", {1}, 0);
  commit_and_apply(*prepare);
  deliver_acks();
  EXPECT_EQ(commit_and_apply(*coordinator.decide(states[0], 0)).dropped, 1u);
  Result<ConfigRecord> next = coordinator.begin(states[0], {}, "good", {1}, 0);
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(next->version, 2u);
}

TEST_F(Cluster, LeaderChangeMidTransactionIsResolvedByAbort) {
  Result<ConfigRecord> prepare = coordinator.begin(states[0], {}, "{}", {1, 2, 3}, 0);
  commit_and_apply(*prepare);
  coordinator.reset();  // the old leader steps down; member 2 takes over with a new coordinator
  ConfigCoordinator next(kDeadlineMs);
  EXPECT_FALSE(next.on_ack(1, 1, true, "")) << "not its transaction";
  EXPECT_EQ(next.begin(states[1], {}, "{}", {1}, 0).status().code(), Errc::busy);
  std::optional<ConfigRecord> decision = next.decide(states[1], 0);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(*decision, ConfigRecord::abort(1, "leader changed during the transaction"));
  EXPECT_FALSE(next.decide(states[1], 0).has_value()) << "proposed once";
  EXPECT_EQ(commit_and_apply(*decision).dropped, 1u);
  Result<ConfigRecord> fresh = next.begin(states[1], {}, "{}", {1}, 0);
  ASSERT_TRUE(fresh.is_ok());
  EXPECT_EQ(fresh->version, 2u);
}

// A new leader that has not applied an older leader's PREPARE picks the same version. The first
// of the two is staged and aborted; the second is ignored; nothing commits either by mistake.
TEST_F(Cluster, SameVersionFromTwoLeadersNeverCommitsTheWrongDocument) {
  append(ConfigRecord::prepare(1, "old", {1, 2, 3}));  // committed, not applied by member 1 yet
  ConfigCoordinator next(kDeadlineMs);
  Result<ConfigRecord> mine = next.begin(states[0], {}, "new", {1, 2, 3}, 0);
  ASSERT_TRUE(mine.is_ok());
  EXPECT_EQ(mine->version, 1u);
  commit_and_apply(*mine);
  ASSERT_EQ(acks.size(), 3u) << "acks for version 1, which speak of \"old\"";
  for (const auto& [from, ack] : acks) next.on_ack(from, ack.version, ack.ok, ack.reason);
  acks.clear();
  std::optional<ConfigRecord> decision = next.decide(states[0], 0);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(*decision, ConfigRecord::abort(1, "leader changed during the transaction"));
  EXPECT_TRUE(states[0].counters().prepares_while_open == 0 &&
              states[0].counters().stale_prepares == 1);
  commit_and_apply(*decision);
  EXPECT_FALSE(next.decide(states[0], 0).has_value());
  EXPECT_EQ(next.open_version(), 0u) << "its PREPARE was ignored: nothing left to decide";
  for (const ConfigState& s : states) EXPECT_EQ(s.active_version(), 0u);
}

// The same race, but the acks (for "old") reach the new leader before it has applied anything:
// a full set of ok acks for its version number must not make it commit.
TEST_F(Cluster, LaggingLeaderDoesNotCommitOnAcksForAnotherDocument) {
  append(ConfigRecord::prepare(1, "old", {2, 3}));
  ConfigCoordinator next(kDeadlineMs);
  Result<ConfigRecord> mine = next.begin(states[0], {}, "new", {2, 3}, 0);
  ASSERT_TRUE(mine.is_ok());
  append(*mine);
  catch_up(1);
  catch_up(2);
  ASSERT_EQ(acks.size(), 2u);
  for (const auto& [from, ack] : acks) EXPECT_TRUE(next.on_ack(from, ack.version, true, ""));
  EXPECT_FALSE(next.decide(states[0], 0).has_value()) << "its own state has staged nothing yet";
  catch_up(0);
  EXPECT_EQ(next.decide(states[0], 0),
            ConfigRecord::abort(1, "leader changed during the transaction"));
}

TEST(ConfigState, DuplicateAndOutOfOrderRecordsAreIgnoredAndCounted) {
  ConfigState s;
  FakeValidator v;
  Index i = 0;
  EXPECT_TRUE(s.apply(++i, ConfigRecord::commit(1), v, 1).ignored) << "COMMIT before PREPARE";
  EXPECT_TRUE(s.apply(++i, ConfigRecord::abort(1, ""), v, 1).ignored) << "ABORT before PREPARE";
  EXPECT_EQ(s.apply(++i, ConfigRecord::prepare(2, "{}", {1}), v, 1).staged, 2u);
  EXPECT_TRUE(s.apply(++i, ConfigRecord::prepare(2, "{}", {1}), v, 1).ignored) << "duplicate";
  EXPECT_TRUE(s.apply(++i, ConfigRecord::prepare(1, "{}", {1}), v, 1).ignored) << "older";
  EXPECT_TRUE(s.apply(++i, ConfigRecord::prepare(3, "{}", {1}), v, 1).ignored) << "open";
  EXPECT_TRUE(s.apply(++i, ConfigRecord::commit(3), v, 1).ignored) << "not the staged one";
  EXPECT_EQ(s.apply(++i, ConfigRecord::commit(2), v, 1).activated, 2u);
  EXPECT_TRUE(s.apply(++i, ConfigRecord::commit(2), v, 1).ignored) << "duplicate COMMIT";
  EXPECT_TRUE(s.apply(++i, ConfigRecord::prepare(3, "{}", {1}), v, 1).ignored)
      << "3 was seen, though ignored";
  EXPECT_EQ(s.counters().unmatched_commits, 3u);
  EXPECT_EQ(s.counters().unmatched_aborts, 1u);
  EXPECT_EQ(s.counters().stale_prepares, 3u);
  EXPECT_EQ(s.counters().prepares_while_open, 1u);
  EXPECT_EQ(s.counters().total(), 8u);
  EXPECT_EQ(s.highest_version_seen(), 3u);
  EXPECT_EQ(s.active_version(), 2u);
  EXPECT_EQ(v.calls, std::vector<std::uint64_t>{2}) << "ignored PREPAREs are not validated";
}

TEST(ConfigState, ActiveVersionNeverGoesBackwards) {
  ConfigState s;
  FakeValidator v;
  Index i = 0;
  for (std::uint64_t version : {5, 3, 9, 7, 12}) {
    const std::uint64_t before = s.active_version();
    (void)s.apply(++i, ConfigRecord::prepare(version, "{}", {1}), v, 1);
    (void)s.apply(++i, ConfigRecord::commit(version), v, 1);
    EXPECT_GE(s.active_version(), before);
  }
  EXPECT_EQ(s.active_version(), 12u);
  EXPECT_EQ(s.history().size(), 3u) << "5, 9 and 12; 3 and 7 were stale";
}

TEST(ConfigState, UndecodableAndInvalidRecordsAreIgnoredAndCounted) {
  ConfigState s;
  FakeValidator v;
  ConfigEffects e = s.apply(Entry{1, 1, EntryType::config_txn, "\x01garbage"}, v, 1);
  EXPECT_TRUE(e.ignored);
  EXPECT_NE(e.reason.find("truncated"), std::string::npos) << e.reason;
  EXPECT_TRUE(s.apply(2, ConfigRecord::prepare(1, "", {1}), v, 1).ignored) << "empty document";
  EXPECT_TRUE(s.apply(3, ConfigRecord::prepare(1, "{}", {2, 1}), v, 1).ignored) << "unsorted";
  EXPECT_EQ(s.counters().invalid_records, 3u);
  EXPECT_EQ(s.last_index(), 3u);
  EXPECT_EQ(s.highest_version_seen(), 0u);
}

TEST(ConfigState, ValidatorMessageIsBoundedInTheAck) {
  struct Verbose : ConfigValidator {
    Status validate(std::uint64_t, std::string_view) override {
      return Status(Errc::invalid_argument, std::string(5000, 'x'));
    }
  } verbose;
  ConfigState s;
  ConfigEffects e = s.apply(1, ConfigRecord::prepare(1, "{}", {1}), verbose, 1);
  ASSERT_TRUE(e.ack.has_value());
  EXPECT_FALSE(e.ack->ok);
  EXPECT_EQ(e.ack->reason.size(), ConfigLimits::max_reason_bytes);
}

TEST(ConfigState, HistoryKeepsTheLast32Activations) {
  ConfigState s;
  FakeValidator v;
  Index i = 0;
  for (std::uint64_t version = 1; version <= 40; ++version) {
    (void)s.apply(++i, ConfigRecord::prepare(version, "doc" + std::to_string(version), {1}), v,
                  1);
    (void)s.apply(++i, ConfigRecord::commit(version), v, 1);
  }
  ASSERT_EQ(s.history().size(), ConfigLimits::history_capacity);
  EXPECT_EQ(s.history().front().version, 9u);
  EXPECT_EQ(s.history().back().version, 40u);
  EXPECT_EQ(s.active_document(), "doc40");
  EXPECT_EQ(s.find_in_history(8), nullptr);
  ASSERT_NE(s.find_in_history(9), nullptr);
  EXPECT_EQ(s.find_in_history(9)->document, "doc9");
}

TEST(ConfigRecordCodec, RoundTripsEveryKind) {
  const std::vector<ConfigRecord> records = {
      ConfigRecord::prepare(1, R"({"k":"v"})", {1, 2, 99}),
      ConfigRecord::prepare(ConfigLimits::max_version, std::string(1, '\0'), {~NodeId{0}}),
      ConfigRecord::commit(7),
      ConfigRecord::abort(8, "member 2 rejected version 8: bad"),
      ConfigRecord::abort(9, ""),
  };
  for (const ConfigRecord& r : records) {
    Result<ConfigRecord> back = decode_config_record(encode_config_record(r));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, r);
  }
  EXPECT_EQ(encode_config_record(ConfigRecord::commit(1)).size(), 21u) << "the fixed part";
}

TEST(ConfigRecordCodec, RejectsEveryTruncation) {
  const std::string bytes = encode_config_record(ConfigRecord::prepare(3, "{}", {1, 2}));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Result<ConfigRecord> r = decode_config_record(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.is_ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.status().code(), Errc::malformed);
  }
  Result<ConfigRecord> r = decode_config_record(std::string_view(bytes).substr(0, 12));
  EXPECT_EQ(r.status().message(),
            "config record: document length truncated: needs 4 bytes, 3 remain at byte offset 9");
  EXPECT_FALSE(decode_config_record(bytes + "x").is_ok()) << "trailing byte";
}

TEST(ConfigRecordCodec, RejectsBrokenRulesNamingFieldAndOffset) {
  auto message = [](std::string bytes) {
    return decode_config_record(bytes).status().message();
  };
  std::string bad_kind = encode_config_record(ConfigRecord::commit(1));
  bad_kind[0] = 9;
  EXPECT_EQ(message(bad_kind), "config record: unknown record kind 9 at byte offset 0");
  std::string zero = encode_config_record(ConfigRecord::commit(1));
  zero[1] = 0;
  EXPECT_EQ(message(zero), "config record: version 0 (versions start at 1) at byte offset 1");
  std::string huge = encode_config_record(ConfigRecord::prepare(1, "{}", {1}));
  huge[11] = 0x7f;  // document length 0x007f0002
  EXPECT_EQ(message(huge).find("config record: document length 8323074 exceeds"), 0u);
  std::string many = encode_config_record(ConfigRecord::prepare(1, "{}", {1}));
  many[15] = 2;  // two ids announced, one present
  EXPECT_NE(message(many).find("required member ids truncated"), std::string::npos);
  std::string dup = encode_config_record(ConfigRecord::prepare(1, "{}", {1, 2}));
  dup[27] = 1;  // second id = first
  EXPECT_EQ(message(dup),
            "config record: required member id 1 not above the previous id 1 at byte offset 27");
  EXPECT_NE(check_config_record(ConfigRecord::commit(0)).message().find("version 0"),
            std::string::npos);
}

TEST(ConfigRecordCodec, BoundedReasonKeepsUtf8Whole) {
  std::string text(ConfigLimits::max_reason_bytes - 1, 'a');
  text += "\xc3\xa9";  // é straddles the limit
  EXPECT_EQ(bounded_reason(text).size(), ConfigLimits::max_reason_bytes - 1);
  EXPECT_EQ(bounded_reason("short"), "short");
}

}  // namespace
}  // namespace anya::engine
