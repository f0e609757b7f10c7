// ConfigState: what every member does with a committed config_txn record.
#include <algorithm>
#include <utility>

#include "engine/config/config.hpp"

namespace anya::engine {
namespace {

ConfigEffects ignored(std::uint64_t version, std::string why, std::uint64_t& counter) {
  ++counter;
  ConfigEffects effects;
  effects.ignored = true;
  effects.version = version;
  effects.reason = std::move(why);
  return effects;
}

const std::string kNoDocument;

}  // namespace

ConfigEffects ConfigState::apply(Index index, const ConfigRecord& record,
                                 ConfigValidator& validator, NodeId self) {
  ANYA_ASSERT(index > last_index_);  // the host applies the log in order, each entry once
  ANYA_ASSERT(self != kNoNode);
  last_index_ = index;
  const Status valid = check_config_record(record);
  ConfigEffects effects;
  if (!valid.is_ok()) {
    effects = ignored(0, valid.message(), counters_.invalid_records);
  } else if (record.kind == ConfigRecordKind::prepare) {
    effects = apply_prepare(index, record, validator, self);
  } else if (record.kind == ConfigRecordKind::commit) {
    effects = apply_commit(index, record);
  } else {
    effects = apply_abort(record);
  }
  check_invariants();
  return effects;
}

ConfigEffects ConfigState::apply(const Entry& entry, ConfigValidator& validator, NodeId self) {
  ANYA_ASSERT(entry.type == EntryType::config_txn);
  Result<ConfigRecord> record = decode_config_record(entry.data);
  if (record.is_ok()) return apply(entry.index, *record, validator, self);
  // A bad record cannot come from a correct leader; refusing it keeps the member alive and
  // every member refuses it alike, so they still agree.
  ANYA_ASSERT(entry.index > last_index_);
  last_index_ = entry.index;
  return ignored(0, record.status().message(), counters_.invalid_records);
}

ConfigEffects ConfigState::apply_prepare(Index index, const ConfigRecord& record,
                                         ConfigValidator& validator, NodeId self) {
  ANYA_ASSERT(record.kind == ConfigRecordKind::prepare);
  const std::uint64_t v = record.version;
  if (v <= highest_version_seen_) {
    return ignored(v, "PREPARE of version " + std::to_string(v) + " is not above version " +
                          std::to_string(highest_version_seen_),
                   counters_.stale_prepares);
  }
  // Seen even if ignored below: a version that reached the log is never handed out again.
  highest_version_seen_ = v;
  if (staged_) {
    return ignored(v, "PREPARE of version " + std::to_string(v) + " while version " +
                          std::to_string(staged_->version) + " is open",
                   counters_.prepares_while_open);
  }
  const Status verdict = validator.validate(v, record.document);
  std::string reason;
  if (!verdict.is_ok()) {
    reason = bounded_reason(verdict.message().empty() ? "rejected by the validator"
                                                      : verdict.message());
  }
  staged_ = StagedConfig{v, record.document, record.required, index, verdict.is_ok(), reason};
  ConfigEffects effects;
  effects.staged = v;
  effects.version = v;
  if (std::binary_search(record.required.begin(), record.required.end(), self)) {
    effects.ack = ConfigAck{v, verdict.is_ok(), std::move(reason)};
  }
  return effects;
}

ConfigEffects ConfigState::apply_commit(Index index, const ConfigRecord& record) {
  const std::uint64_t v = record.version;
  if (!staged_ || staged_->version != v) {
    return ignored(v, "COMMIT of version " + std::to_string(v) + ", which is not staged",
                   counters_.unmatched_commits);
  }
  ANYA_ASSERT(v > active_version());
  // One push makes the document and the version active together.
  history_.push_back(ConfigHistoryEntry{v, std::move(staged_->document), index});
  staged_.reset();
  while (history_.size() > ConfigLimits::history_capacity) history_.pop_front();
  ConfigEffects effects;
  effects.activated = v;
  effects.version = v;
  return effects;
}

ConfigEffects ConfigState::apply_abort(const ConfigRecord& record) {
  const std::uint64_t v = record.version;
  if (!staged_ || staged_->version != v) {
    return ignored(v, "ABORT of version " + std::to_string(v) + ", which is not staged",
                   counters_.unmatched_aborts);
  }
  staged_.reset();
  ConfigEffects effects;
  effects.dropped = v;
  effects.version = v;
  effects.reason = record.reason;
  return effects;
}

std::uint64_t ConfigState::active_version() const {
  return history_.empty() ? 0 : history_.back().version;
}

const std::string& ConfigState::active_document() const {
  return history_.empty() ? kNoDocument : history_.back().document;
}

const ConfigHistoryEntry* ConfigState::find_in_history(std::uint64_t version) const {
  for (const ConfigHistoryEntry& entry : history_) {
    if (entry.version == version) return &entry;
  }
  return nullptr;
}

void ConfigState::check_invariants() const {
  ANYA_ASSERT(history_.size() <= ConfigLimits::history_capacity);
  for (std::size_t i = 1; i < history_.size(); ++i) {
    ANYA_ASSERT(history_[i - 1].version < history_[i].version);
    ANYA_ASSERT(history_[i - 1].index < history_[i].index);
  }
  ANYA_ASSERT(active_version() <= highest_version_seen_);
  if (staged_) {
    ANYA_ASSERT(staged_->version > active_version());
    ANYA_ASSERT(staged_->version <= highest_version_seen_);
    ANYA_ASSERT(!staged_->document.empty());
  }
}

}  // namespace anya::engine
