#include "sim/records_checker.hpp"

#include <algorithm>
#include <iterator>
#include <tuple>

#include "engine/kv/bitcoin.hpp"

namespace anya::sim {

using engine::Index;
using engine::KvOutcome;
using engine::NodeId;

namespace {

// FNV-1a: the same on every platform, unlike std::hash.
std::uint64_t data_hash(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string n(std::uint64_t v) { return std::to_string(v); }

std::string describe_command(const engine::Command& command) {
  std::string out;
  if (const engine::UtxoCommand* u = command.utxo()) {
    out = std::string(engine::utxo_op_name(u->op)) + " of " + u->outpoint.text() + " by " +
          u->owner + " (now " + n(u->now_ms) + " ms";
    if (u->op == engine::UtxoOp::reserve) out += ", ttl " + n(u->ttl_ms) + " ms";
    out += ")";
  } else if (const engine::KvCommand* kv = command.kv()) {
    static const char* const kNames[] = {"?", "put", "cas", "delete"};
    out = std::string(kNames[static_cast<int>(kv->op)]) + " of key " + kv->key;
  } else if (const engine::SessionOpen* open = command.open()) {
    out = "a session open (now " + n(open->now_ms) + " ms)";
  } else {
    out = "a DLC command";
  }
  if (command.session) {
    out += " [client " + n(command.session->client_id) + " seq " + n(command.session->seq) +
           "]";
  }
  return out;
}

// What a request asks, apart from the clocks that stamp each attempt: a retry of it has the
// same fingerprint.
std::string fingerprint(const engine::Command& command) {
  if (const engine::UtxoCommand* u = command.utxo()) {
    return std::string(engine::utxo_op_name(u->op)) + " " + u->outpoint.text() + " " + u->owner +
           " ttl " + n(u->ttl_ms);
  }
  if (const engine::KvCommand* kv = command.kv()) {
    return "kv " + n(static_cast<std::uint64_t>(kv->op)) + " " + n(kv->expected_revision) + " " +
           n(kv->key.size()) + ":" + kv->key + " " + kv->value;
  }
  if (command.open() != nullptr) return "open";
  return "dlc";
}

std::string describe_result(KvOutcome outcome, Index revision, bool replayed) {
  return std::string(engine::kv_outcome_name(outcome)) + " (revision " + n(revision) +
         (replayed ? ", replayed)" : ")");
}

}  // namespace

// ---- stats --------------------------------------------------------------------------------

void RecordStats::add(const RecordStats& o) {
  sessions_opened += o.sessions_opened;
  session_writes += o.session_writes;
  session_retries += o.session_retries;
  session_replays += o.session_replays;
  session_expired += o.session_expired;
  utxo_reserved += o.utxo_reserved;
  utxo_released += o.utxo_released;
  utxo_spent += o.utxo_spent;
  utxo_refused += o.utxo_refused;
  utxo_unknown += o.utxo_unknown;
  checked_entries += o.checked_entries;
  checked_sessions += o.checked_sessions;
  checked_utxo += o.checked_utxo;
  checked_acks += o.checked_acks;
  checked_snapshots += o.checked_snapshots;
  checked_final_replicas += o.checked_final_replicas;
}

std::string RecordStats::describe() const {
  return "sessions: " + n(sessions_opened) + " opened, " + n(session_writes) + " writes, " +
         n(session_retries) + " retries, " +
         n(session_replays) + " answered replayed, " + n(session_expired) + " expired; utxo: " +
         n(utxo_reserved) + " reserved, " + n(utxo_released) + " released, " + n(utxo_spent) +
         " spent, " + n(utxo_refused) + " refused, " + n(utxo_unknown) +
         " unknown; checked: " + n(checked_entries) + " applications against the model, " +
         n(checked_sessions) + " exactly-once, " + n(checked_utxo) + " utxo records, " +
         n(checked_acks) + " acknowledgements, " + n(checked_snapshots) + " snapshots, " +
         n(checked_final_replicas) + " final replicas";
}

// ---- the model ----------------------------------------------------------------------------

std::string RecordsChecker::Record::describe() const {
  switch (state) {
    case State::free: return "free";
    case State::reserved:
      return "reserved by " + owner + " until " + n(expires_at_ms) + " ms (index " +
             n(changed_at) + ")";
    case State::spent: return "spent by " + owner + " (index " + n(changed_at) + ")";
  }
  return "?";
}

RecordsChecker::Slot RecordsChecker::model_apply(const engine::Entry& entry,
                                                 const engine::KvResult& first) {
  Slot slot;
  slot.data_hash = data_hash(entry.data);
  // Plain KV bodies are not modelled here (the linearizability checker covers them): every
  // replica must compute what the first one did.
  slot.outcome = first.outcome;
  slot.revision = first.revision;
  Result<engine::Command> decoded = engine::decode_command(entry.data);
  if (!decoded) {
    slot.describe = entry.data.empty() ? "an empty entry" : "bytes that are not a command";
    return slot;
  }
  engine::Command& command = decoded.value();
  slot.describe = describe_command(command);
  slot.request = fingerprint(command);
  if (const engine::UtxoCommand* utxo = command.utxo()) slot.utxo = *utxo;
  if (const engine::SessionOpen* open = command.open()) {
    model_open(slot, *open, entry.index, first);
  } else if (command.session) {
    model_session(slot, command, entry.index, first);
  } else if (slot.utxo) {
    std::tie(slot.outcome, slot.revision) = model_utxo(*slot.utxo, entry.index);
  }
  return slot;
}

// An open (engine/kv/kv.hpp) creates the session named by its index. Before it, the store
// makes room: it may forget idle sessions, and forgets the least recently used while it holds
// max_sessions; the model marks those it may have forgotten so (see the header).
void RecordsChecker::model_open(Slot& slot, const engine::SessionOpen& open, Index index,
                                const engine::KvResult& first) {
  slot.open = true;
  max_session_now_ms_ = std::max(max_session_now_ms_, open.now_ms);
  if (sessions_.size() >= max_sessions_) {
    // The store's least recently used has max_sessions - 1 newer sessions, all in the model.
    std::size_t marks = sessions_.size() - max_sessions_ + 1;
    for (auto it = session_order_.begin(); it != session_order_.end() && marks > 0; ++it) {
      sessions_.at(it->second).evictable = true;
      marks--;
    }
  }
  if (first.outcome == KvOutcome::invalid && first.revision == 0) {
    slot.outcome = first.outcome;  // the store was full (not modelled): nothing opened
    slot.revision = 0;
    return;
  }
  slot.outcome = KvOutcome::ok;
  slot.revision = index;
  Session& session = sessions_[index];
  ANYA_ASSERT(session.last_used_at == 0);  // an index opens one session, once
  session.last_used_ms = open.now_ms;
  session.last_used_at = index;
  session_order_.emplace(index, index);
  ANYA_ASSERT(session_order_.size() == sessions_.size());
}

void RecordsChecker::forget_session(std::map<std::uint64_t, Session>::iterator session) {
  ANYA_ASSERT(session != sessions_.end());
  const std::size_t unordered = session_order_.erase(session->second.last_used_at);
  ANYA_ASSERT(unordered == 1);
  sessions_.erase(session);
}

// The session rule of engine/kv/kv.hpp: a request for a session the store does not hold, or
// with a seq older than the window, is expired; a known (client, seq) replays its first
// outcome; anything else applies.
void RecordsChecker::model_session(Slot& slot, engine::Command& command, Index index,
                                   const engine::KvResult& first) {
  const engine::ClientSession& s = *command.session;
  slot.session = true;
  slot.client_id = s.client_id;
  slot.seq = s.seq;
  max_session_now_ms_ = std::max(max_session_now_ms_, s.now_ms);
  slot.outcome = KvOutcome::expired;
  slot.revision = 0;
  const auto known = sessions_.find(s.client_id);
  if (known == sessions_.end()) return;  // never opened, or forgotten: never re-opened
  Session& session = known->second;
  const bool too_old = session.max_seq >= engine::kSessionWindow &&
                       s.seq <= session.max_seq - engine::kSessionWindow;
  if (too_old) return;
  // Forgotten by the store (see the header): the model forgets it too.
  const bool idle = session.last_used_ms + engine::kSessionIdleMs <= max_session_now_ms_;
  if ((idle || session.evictable) && first.outcome == KvOutcome::expired && !first.replayed) {
    return forget_session(known);
  }
  if (const auto o = session.outcomes.find(s.seq); o != session.outcomes.end()) {
    std::tie(slot.outcome, slot.revision) = o->second;
    slot.replayed = true;
    return;
  }
  if (slot.utxo) {
    std::tie(slot.outcome, slot.revision) = model_utxo(*slot.utxo, index);
  } else {
    slot.outcome = first.outcome;
    slot.revision = first.revision;
  }
  session.outcomes[s.seq] = {slot.outcome, slot.revision};
  session.max_seq = std::max(session.max_seq, s.seq);
  session.last_used_ms = std::max(session.last_used_ms, s.now_ms);
  const std::size_t unordered = session_order_.erase(session.last_used_at);
  ANYA_ASSERT(unordered == 1);
  session.last_used_at = index;
  session_order_.emplace(index, s.client_id);
  while (session.max_seq >= engine::kSessionWindow &&
         session.outcomes.begin()->first <= session.max_seq - engine::kSessionWindow) {
    session.outcomes.erase(session.outcomes.begin());
  }
  ANYA_ASSERT(!session.outcomes.empty());
}

// The reservation rules of engine/kv/bitcoin.hpp, decided by the command's own clock.
std::pair<KvOutcome, Index> RecordsChecker::model_utxo(const engine::UtxoCommand& command,
                                                       Index index) {
  using State = Record::State;
  std::map<Index, Record>& history = outpoints_[engine::utxo_key(command.outpoint)];
  const Record current = history.empty() ? Record{} : history.rbegin()->second;
  if (current.state == State::spent) return {KvOutcome::conflict, current.changed_at};
  const bool held_by_other = current.state == State::reserved &&
                             current.owner != command.owner &&
                             current.expires_at_ms > command.now_ms;
  if (held_by_other) return {KvOutcome::conflict, current.changed_at};
  Record next;
  next.changed_at = index;
  switch (command.op) {
    case engine::UtxoOp::reserve:
      next.state = State::reserved;
      next.owner = command.owner;
      next.expires_at_ms = command.now_ms + command.ttl_ms;
      break;
    case engine::UtxoOp::release:
      if (current.state == State::free) return {KvOutcome::not_found, 0};
      if (current.owner != command.owner) return {KvOutcome::conflict, current.changed_at};
      break;  // free again
    case engine::UtxoOp::spend:
      next.state = State::spent;
      next.owner = command.owner;
      break;
  }
  ANYA_ASSERT(history.empty() || history.rbegin()->first < index);
  history.emplace(index, std::move(next));
  return {KvOutcome::ok, index};
}

RecordsChecker::Record RecordsChecker::record_at(const std::string& key, Index revision) const {
  const auto it = outpoints_.find(key);
  if (it == outpoints_.end()) return Record{};
  const auto after = it->second.upper_bound(revision);
  if (after == it->second.begin()) return Record{};
  return std::prev(after)->second;
}

// ---- the checks ---------------------------------------------------------------------------

void RecordsChecker::on_applied(NodeId node, const engine::Entry& entry,
                                const engine::KvResult& result, const engine::KvStore& kv) {
  counts_.checked_entries++;
  const Index index = entry.index;
  ANYA_ASSERT(index > 0);
  if (index > model_index_) {
    slots_.emplace(index, model_apply(entry, result));
    model_index_ = index;
  }
  const auto it = slots_.find(index);
  if (it == slots_.end()) {
    return fail("log agreement: node " + n(node) + " applied a normal entry at index " +
                n(index) + ", which the model went past with no replica applying one there " +
                "(it had reached index " + n(model_index_) + ")");
  }
  const Slot& slot = it->second;
  if (data_hash(entry.data) != slot.data_hash) {
    const char* what = acknowledged_.count(index) != 0 ? "acknowledged write lost"
                                                        : "log agreement";
    return fail(std::string(what) + ": node " + n(node) + " applied other bytes at index " +
                n(index) + " than the first replica to apply it, which applied " +
                slot.describe);
  }
  check_exactly_once(node, slot, index, result);
  check_outcome(node, slot, index, result);
  if (slot.utxo) {
    counts_.checked_utxo++;
    check_record(node, engine::utxo_key(slot.utxo->outpoint), kv, index,
                 "after applying index " + n(index));
  }
}

void RecordsChecker::check_exactly_once(NodeId node, const Slot& slot, Index index,
                                        const engine::KvResult& result) {
  if (!slot.session) return;
  counts_.checked_sessions++;
  if (result.outcome == KvOutcome::expired || result.replayed) return;
  const auto [it, fresh] = applied_at_.emplace(std::pair(slot.client_id, slot.seq), index);
  if (fresh || it->second == index) return;
  fail("exactly-once: client " + n(slot.client_id) + " seq " + n(slot.seq) +
       " was applied (not replayed) at index " + n(it->second) + " and again at index " +
       n(index) + " on node " + n(node) + " (" + slot.describe + ", outcome " +
       engine::kv_outcome_name(result.outcome) + "): a retried request took effect twice");
}

void RecordsChecker::check_outcome(NodeId node, const Slot& slot, Index index,
                                   const engine::KvResult& result) {
  if (result.outcome == slot.outcome && result.revision == slot.revision &&
      result.replayed == slot.replayed) {
    return;
  }
  const std::string computed = "node " + n(node) + " computed " +
                               describe_result(result.outcome, result.revision, result.replayed) +
                               " for " + slot.describe + " at index " + n(index);
  const std::string modelled =
      describe_result(slot.outcome, slot.revision, slot.replayed);
  if (!slot.utxo) {
    const bool modelled_here = slot.session || slot.open;
    return fail(std::string(modelled_here ? "sessions: " : "state machine agreement: ") +
                computed + "; " + (modelled_here ? "the reference model" : "the first replica") +
                " computed " + modelled);
  }
  const engine::UtxoCommand& u = *slot.utxo;
  const Record before = record_at(engine::utxo_key(u.outpoint), index - 1);
  const bool applied = result.outcome == KvOutcome::ok && !result.replayed;
  if (applied && before.state == Record::State::spent) {
    return fail("reservations: a spent outpoint is final, yet " + computed + "; " +
                u.outpoint.text() + " was " + before.describe());
  }
  if (applied && u.op == engine::UtxoOp::reserve && before.state == Record::State::reserved &&
      before.owner != u.owner && before.expires_at_ms > u.now_ms) {
    return fail("reservations: two owners of " + u.outpoint.text() + " at index " + n(index) +
                ": " + computed + " while it was " + before.describe());
  }
  fail("reservations: " + computed + "; the reference model computes " + modelled +
       " (the outpoint was " + before.describe() + ")");
}

void RecordsChecker::check_record(NodeId node, const std::string& key, const engine::KvStore& kv,
                                  Index revision, const std::string& when) {
  const Record expected = record_at(key, revision);
  Record actual;
  if (const engine::KeyValue* stored = kv.get(key)) {
    Result<engine::UtxoRecord> decoded = engine::decode_utxo_record(stored->value);
    if (!decoded) {
      return fail("reservations: node " + n(node) + " holds an unreadable record under " + key +
                  " " + when + ": " + decoded.status().message());
    }
    actual.state = decoded->state == engine::UtxoState::spent ? Record::State::spent
                                                              : Record::State::reserved;
    actual.owner = decoded->owner;
    actual.expires_at_ms = decoded->expires_at_ms;
    actual.changed_at = stored->mod_revision;
  }
  const bool same = expected.state == actual.state &&
                    (expected.state == Record::State::free ||
                     (expected.owner == actual.owner &&
                      expected.expires_at_ms == actual.expires_at_ms &&
                      expected.changed_at == actual.changed_at));
  if (same) return;
  const std::string outpoint = key.substr(engine::kUtxoKeyPrefix.size());
  const std::string holds = "node " + n(node) + " holds " + outpoint + " " + when + " as " +
                            actual.describe() + "; the reference model as " + expected.describe();
  if (expected.state == Record::State::reserved && actual.state == Record::State::reserved &&
      expected.owner != actual.owner) {
    return fail("reservations: two owners: " + holds);
  }
  if (expected.state == Record::State::spent) {
    return fail("reservations: a spent outpoint is final, yet " + holds);
  }
  fail("reservations: " + holds);
}

void RecordsChecker::check_all_records(NodeId node, const engine::KvStore& kv,
                                       const std::string& when) {
  std::set<std::string> keys;
  for (const auto& [key, history] : outpoints_) keys.insert(key);
  for (const auto& [key, value] : kv.scan(engine::kUtxoKeyPrefix, engine::kMaxKeys)) {
    keys.insert(key);
  }
  for (const std::string& key : keys) check_record(node, key, kv, kv.revision(), when);
}

void RecordsChecker::on_restored(NodeId node, const engine::KvStore& kv) {
  const Index revision = kv.revision();
  if (revision == 0) return;
  counts_.checked_snapshots++;
  if (revision > model_index_) {
    return fail("log agreement: node " + n(node) + " restored a snapshot at revision " +
                n(revision) + ", beyond every index a replica applied (" + n(model_index_) + ")");
  }
  check_all_records(node, kv, "in the snapshot it restored at revision " + n(revision));
}

void RecordsChecker::on_acknowledged(NodeId node, const engine::Command& request,
                                     Index revision) {
  counts_.checked_acks++;
  const auto it = slots_.find(revision);
  if (request.open() != nullptr) {
    ANYA_ASSERT(!request.session.has_value());
    const std::string who = "acknowledged: node " + n(node) + " told a client its session " +
                            "open succeeded with client id " + n(revision);
    if (it == slots_.end()) return fail(who + ", an index no replica applied a normal entry at");
    const Slot& slot = it->second;
    if (!slot.open) return fail(who + ", but that index holds " + slot.describe);
    if (slot.outcome != KvOutcome::ok || slot.revision != revision) {
      return fail(who + ", but the open there was " +
                  describe_result(slot.outcome, slot.revision, slot.replayed));
    }
    acknowledged_.insert(revision);
    return;
  }
  ANYA_ASSERT(request.session.has_value());
  const std::uint64_t client_id = request.session->client_id;
  const std::uint64_t seq = request.session->seq;
  const std::string who = "acknowledged: node " + n(node) + " told client " + n(client_id) +
                          " seq " + n(seq) + " its write succeeded at revision " + n(revision);
  if (it == slots_.end()) return fail(who + ", an index no replica applied a normal entry at");
  const Slot& slot = it->second;
  if (!slot.session || slot.client_id != client_id || slot.seq != seq ||
      slot.request != fingerprint(request)) {
    return fail(who + " (" + describe_command(request) + "), but that index holds " +
                slot.describe);
  }
  if (slot.outcome != KvOutcome::ok || slot.replayed) {
    return fail(who + ", but its first outcome there was " +
                describe_result(slot.outcome, slot.revision, slot.replayed));
  }
  acknowledged_.insert(revision);
}

void RecordsChecker::check_final(NodeId node, const engine::KvStore& kv,
                                 const engine::RaftLog& log) {
  counts_.checked_final_replicas++;
  check_all_records(node, kv, "at the end of the run (revision " + n(kv.revision()) + ")");
  for (auto it = acknowledged_.lower_bound(log.first_index());
       it != acknowledged_.end() && *it <= log.applied(); ++it) {
    const engine::Entry& e = log.at(*it);
    const Slot& slot = slots_.at(*it);
    if (e.type != engine::EntryType::normal || data_hash(e.data) != slot.data_hash) {
      return fail("acknowledged write lost: at the end node " + n(node) + "'s log holds " +
                  "another entry at index " + n(*it) + " than the acknowledged " +
                  slot.describe);
    }
  }
}

void RecordsChecker::fail(std::string what) {
  if (!violation_) violation_ = std::move(what);
}

std::optional<std::string> RecordsChecker::take_violation() {
  if (!violation_ || reported_) return std::nullopt;
  reported_ = true;
  return violation_;
}

}  // namespace anya::sim
