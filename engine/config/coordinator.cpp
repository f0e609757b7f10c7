// ConfigCoordinator: the leader's half of the two-phase protocol.
#include <algorithm>
#include <limits>
#include <utility>

#include "engine/config/config.hpp"

namespace anya::engine {
namespace {

// A deadline beyond this is a unit mistake (seconds for milliseconds...), not a choice.
constexpr std::uint64_t kMaxDeadlineMs = std::uint64_t{24} * 60 * 60 * 1000;

Status check_begin_args(const std::string& document, const std::vector<NodeId>& required) {
  if (document.empty()) return Status(Errc::invalid_argument, "config document is empty");
  if (document.size() > ConfigLimits::max_document_bytes) {
    return Status(Errc::invalid_argument,
                  "config document is " + std::to_string(document.size()) +
                      " bytes, over the limit of " +
                      std::to_string(ConfigLimits::max_document_bytes));
  }
  if (required.empty()) {
    return Status(Errc::invalid_argument, "required member set is empty");
  }
  if (required.size() > ConfigLimits::max_required_members) {
    return Status(Errc::invalid_argument,
                  "required member set has " + std::to_string(required.size()) +
                      " members, over the limit of " +
                      std::to_string(ConfigLimits::max_required_members));
  }
  if (required.front() == kNoNode) {  // sorted: node 0 would be first
    return Status(Errc::invalid_argument, "required member set names node 0 (no node)");
  }
  return Status::ok();
}

std::string list_ids(const std::vector<NodeId>& ids) {
  std::string out;
  for (const NodeId id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

}  // namespace

ConfigCoordinator::ConfigCoordinator(std::uint64_t deadline_ms) : deadline_ms_(deadline_ms) {
  ANYA_ASSERT(deadline_ms > 0);
  ANYA_ASSERT(deadline_ms <= kMaxDeadlineMs);
}

Result<ConfigRecord> ConfigCoordinator::begin(const ConfigState& state,
                                              std::optional<std::uint64_t> if_version,
                                              std::string document, std::vector<NodeId> required,
                                              std::uint64_t now_ms) {
  observe_time(now_ms);
  forget_finished(state);
  std::sort(required.begin(), required.end());
  required.erase(std::unique(required.begin(), required.end()), required.end());
  if (Status args = check_begin_args(document, required); !args.is_ok()) return args;
  if (if_version && *if_version != state.active_version()) {
    return Status(Errc::conflict, "config version is " + std::to_string(state.active_version()) +
                                      ", not " + std::to_string(*if_version));
  }
  if (txn_) {
    return Status(Errc::busy, "config version " + std::to_string(txn_->prepare.version) +
                                  " is still in progress; retry when it is decided");
  }
  if (state.staged()) {
    return Status(Errc::busy, "config version " + std::to_string(state.staged()->version) +
                                  " is prepared and not yet committed or aborted");
  }
  if (state.highest_version_seen() >= ConfigLimits::max_version) {
    return Status(Errc::unsupported, "config versions exhausted at " +
                                         std::to_string(state.highest_version_seen()));
  }
  const std::uint64_t version = state.highest_version_seen() + 1;
  ConfigRecord prepare = ConfigRecord::prepare(version, std::move(document), std::move(required));
  ANYA_ASSERT(check_config_record(prepare).is_ok());
  ANYA_ASSERT(version > state.active_version());
  txn_ = Txn{prepare, now_ms + deadline_ms_, {}, false};  // no wrap: see observe_time
  return prepare;
}

Result<ConfigRecord> ConfigCoordinator::rollback(const ConfigState& state,
                                                 std::uint64_t to_version,
                                                 std::optional<std::uint64_t> if_version,
                                                 std::vector<NodeId> required,
                                                 std::uint64_t now_ms) {
  const ConfigHistoryEntry* target = state.find_in_history(to_version);
  if (target == nullptr) {
    const auto& history = state.history();
    const std::string held = history.empty()
                                 ? "the history is empty"
                                 : "it holds versions " + std::to_string(history.front().version) +
                                       " to " + std::to_string(history.back().version);
    return Status(Errc::invalid_argument, "config version " + std::to_string(to_version) +
                                              " is not in the history (" + held + ")");
  }
  ANYA_ASSERT(target->version == to_version);
  return begin(state, if_version, target->document, std::move(required), now_ms);
}

bool ConfigCoordinator::on_ack(NodeId from, std::uint64_t version, bool ok, std::string reason) {
  const bool counts = txn_ && !txn_->decided && version == txn_->prepare.version &&
                      std::binary_search(txn_->prepare.required.begin(),
                                         txn_->prepare.required.end(), from);
  if (!counts) {
    ++ignored_acks_;
    return false;
  }
  auto [it, inserted] = txn_->verdicts.try_emplace(from);
  Verdict& verdict = it->second;
  if (!inserted && !verdict.ok) return true;  // a reject is final: a later ok does not undo it
  verdict.ok = ok;
  verdict.reason = ok ? std::string()
                      : bounded_reason(reason.empty() ? "rejected without a reason" : reason);
  ANYA_ASSERT(txn_->verdicts.size() <= txn_->prepare.required.size());
  return true;
}

std::optional<ConfigRecord> ConfigCoordinator::decide(const ConfigState& state,
                                                      std::uint64_t now_ms) {
  observe_time(now_ms);
  forget_finished(state);
  if (std::optional<ConfigRecord> abort = abort_foreign(state)) return abort;
  return decide_own(state, now_ms);
}

void ConfigCoordinator::reset() {
  txn_.reset();
  foreign_abort_version_ = 0;
}

void ConfigCoordinator::observe_time(std::uint64_t now_ms) {
  ANYA_ASSERT(now_ms >= last_now_ms_);  // the host's clock is monotonic
  // A monotonic clock in milliseconds does not come near 2^64; the guard keeps the deadline
  // arithmetic from wrapping if a host ever passes something else.
  ANYA_ASSERT(now_ms <= std::numeric_limits<std::uint64_t>::max() - kMaxDeadlineMs);
  last_now_ms_ = now_ms;
}

// Our transaction is over once the state has seen its version (or a higher one) and does not
// hold it staged: it was committed, aborted, or its PREPARE was ignored as stale.
void ConfigCoordinator::forget_finished(const ConfigState& state) {
  if (txn_ && state.highest_version_seen() >= txn_->prepare.version && !staged_is_ours(state)) {
    txn_.reset();
  }
  if (!state.staged() || state.staged()->version != foreign_abort_version_) {
    foreign_abort_version_ = 0;
  }
}

// By content, not only version: an earlier leader's PREPARE may carry our version number.
bool ConfigCoordinator::staged_is_ours(const ConfigState& state) const {
  const std::optional<StagedConfig>& staged = state.staged();
  return txn_ && staged && staged->version == txn_->prepare.version &&
         staged->document == txn_->prepare.document &&
         staged->required == txn_->prepare.required;
}

// A transaction staged but not begun here was left by an earlier leader; its acks went
// elsewhere and nobody will decide it, so abort it rather than leave it half applied.
std::optional<ConfigRecord> ConfigCoordinator::abort_foreign(const ConfigState& state) {
  const std::optional<StagedConfig>& staged = state.staged();
  if (!staged || staged_is_ours(state) || staged->version == foreign_abort_version_) {
    return std::nullopt;
  }
  foreign_abort_version_ = staged->version;
  ANYA_ASSERT(foreign_abort_version_ != 0);
  return ConfigRecord::abort(staged->version, "leader changed during the transaction");
}

std::optional<ConfigRecord> ConfigCoordinator::decide_own(const ConfigState& state,
                                                          std::uint64_t now_ms) {
  if (!txn_ || txn_->decided) return std::nullopt;
  const std::uint64_t v = txn_->prepare.version;
  for (const auto& [id, verdict] : txn_->verdicts) {
    if (!verdict.ok) {
      return settle(ConfigRecord::abort(
          v, bounded_reason("member " + std::to_string(id) + " rejected version " +
                            std::to_string(v) + ": " + verdict.reason)));
    }
  }
  // Acks name only a version; they speak of our document once our own state has staged it.
  const bool all_ok = txn_->verdicts.size() == txn_->prepare.required.size();
  if (all_ok && staged_is_ours(state)) return settle(ConfigRecord::commit(v));
  if (now_ms > txn_->deadline_at_ms) {
    std::vector<NodeId> silent;
    for (const NodeId id : txn_->prepare.required) {
      if (txn_->verdicts.count(id) == 0) silent.push_back(id);
    }
    const std::string waiting = silent.empty() ? "" : "; no verdict from " + list_ids(silent);
    return settle(ConfigRecord::abort(
        v, bounded_reason("deadline passed after " + std::to_string(deadline_ms_) + " ms" +
                          waiting)));
  }
  return std::nullopt;
}

std::optional<ConfigRecord> ConfigCoordinator::settle(ConfigRecord record) {
  ANYA_ASSERT(txn_ && !txn_->decided);
  ANYA_ASSERT(record.version == txn_->prepare.version);
  ANYA_ASSERT(check_config_record(record).is_ok());
  txn_->decided = true;
  return record;
}

}  // namespace anya::engine
