// Client sessions: the at-most-once rule for writes that carry (client id, seq). The rule is in
// kv.hpp; this file keeps each session's remembered outcomes under its reserved key.
//
// Session record layout (the value of kSessionKeyPrefix + client id in decimal; little-endian):
//   version u8 (1), last_used_ms u64, max_seq u64, outcome count u32 (<= kSessionWindow), then
//   each outcome in increasing seq order: seq u64, outcome u8, revision u64, message (u32 length
//   + at most kMaxRememberedMessageBytes bytes).
#include <algorithm>
#include <map>

#include "engine/base/mutants.hpp"
#include "engine/kv/kv.hpp"
#include "engine/kv/wire.hpp"

namespace anya::engine {

namespace {

constexpr std::uint8_t kSessionRecordVersion = 1;
constexpr std::size_t kMaxRememberedMessageBytes = 64;
constexpr std::size_t kSessionHeaderBytes = 1 + 8 + 8 + 4;
constexpr std::size_t kMaxOutcomeBytes = 8 + 1 + 8 + 4 + kMaxRememberedMessageBytes;
// Sessions examined for idleness per session write: enough to keep up, bounded per apply.
constexpr int kIdleChecksPerApply = 2;

struct SessionRecord {
  std::uint64_t last_used_ms = 0;
  std::uint64_t max_seq = 0;
  std::map<std::uint64_t, KvResult> outcomes;  // by seq; Invariant: all > max_seq - window
};

std::string session_key(std::uint64_t client_id) {
  return std::string(kSessionKeyPrefix) + std::to_string(client_id);
}

// The client id a session key names, 0 if it is not a canonical decimal id >= 1.
std::uint64_t session_id_of(std::string_view key) {
  const std::string_view digits = key.substr(kSessionKeyPrefix.size());
  if (digits.empty() || digits.size() > 20 || digits[0] == '0') return 0;
  std::uint64_t id = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return 0;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (id > (UINT64_MAX - digit) / 10) return 0;
    id = id * 10 + digit;
  }
  return id;
}

std::string encode_session(const SessionRecord& record) {
  ANYA_ASSERT(record.outcomes.size() <= kSessionWindow);
  std::string out;
  out.push_back(static_cast<char>(kSessionRecordVersion));
  kvwire::put_u64(out, record.last_used_ms);
  kvwire::put_u64(out, record.max_seq);
  kvwire::put_u32(out, record.outcomes.size());
  for (const auto& [seq, result] : record.outcomes) {
    ANYA_ASSERT(result.message.size() <= kMaxRememberedMessageBytes);
    kvwire::put_u64(out, seq);
    out.push_back(static_cast<char>(result.outcome));
    kvwire::put_u64(out, result.revision);
    kvwire::put_bytes(out, result.message);
  }
  return out;
}

Result<SessionRecord> decode_session(std::string_view bytes) {
  kvwire::Reader r(bytes, Errc::corrupt, "session record");
  if (r.u8("version") != kSessionRecordVersion && r.ok()) r.fail_at("unknown version", 0);
  SessionRecord record;
  record.last_used_ms = r.u64("last_used_ms");
  record.max_seq = r.u64("max_seq");
  const std::size_t count_offset = r.offset();
  const std::uint32_t count = r.u32("outcome count");
  if (r.ok() && count > kSessionWindow) r.fail_at("outcome count", count_offset);
  for (std::uint32_t i = 0; r.ok() && i < count; ++i) {
    const std::size_t offset = r.offset();
    const std::uint64_t seq = r.u64("seq");
    KvResult result;
    const std::uint8_t outcome = r.u8("outcome");
    result.revision = r.u64("revision");
    result.message = std::string(r.sized("message", 0, kMaxRememberedMessageBytes));
    if (r.ok() && (outcome > static_cast<std::uint8_t>(KvOutcome::invalid) || seq == 0 ||
                   seq > record.max_seq || record.outcomes.count(seq) != 0)) {
      r.fail_at("outcome out of range", offset);
    }
    result.outcome = static_cast<KvOutcome>(outcome);
    record.outcomes.emplace(seq, std::move(result));
  }
  r.expect_end();
  if (!r.ok()) return r.status();
  return record;
}

KvResult expired(std::string message) {
  return KvResult{KvOutcome::expired, 0, std::move(message)};
}

}  // namespace

KvResult KvStore::apply_open(Index index, const SessionOpen& open) {
  forget_sessions(open.now_ms);
  SessionRecord record;
  record.last_used_ms = open.now_ms;
  const KvResult saved = write(index, session_key(index), encode_session(record));
  if (saved.outcome != KvOutcome::ok) return saved;  // the store is full; nothing opened
  session_order_.emplace(index, index);
  ANYA_ASSERT(session_order_.size() <= limits_.max_sessions);
  return KvResult{KvOutcome::ok, index, {}};
}

KvResult KvStore::apply_session(Index index, Command& command) {
  ANYA_ASSERT(command.session.has_value());
  const ClientSession session = *command.session;
  const std::string key = session_key(session.client_id);
  const std::string client = "client " + std::to_string(session.client_id);
  forget_idle_sessions(session.now_ms);

  const KeyValue* stored = get(key);
  if (stored == nullptr) {
    // Only an open creates a session: a late retry for a forgotten one must not re-open it.
    return expired(client + " has no session (never opened, or forgotten: idle for " +
                   std::to_string(kSessionIdleMs / 3'600'000) + " h or the least recently " +
                   "used of " + std::to_string(limits_.max_sessions) + "); open a new one");
  }
  Result<SessionRecord> decoded = decode_session(stored->value);
  if (!decoded) return expired(client + ": " + decoded.status().message());
  SessionRecord record = std::move(decoded).value();
  const auto it = record.outcomes.find(session.seq);
  if (it != record.outcomes.end() && !mutants::active(mutants::session_ignored)) {
    KvResult first = it->second;
    first.replayed = true;  // applied before: its first outcome, nothing changes now
    return first;
  }
  if (record.max_seq >= kSessionWindow && session.seq <= record.max_seq - kSessionWindow) {
    return expired(client + " seq " + std::to_string(session.seq) + " is older than its last " +
                   std::to_string(kSessionWindow) + " requests; its outcome is no longer known");
  }

  // Keep room for the session record whatever the body writes, so that an applied body is
  // always remembered (else a retry could apply it twice).
  const std::size_t old_bytes = key.size() + stored->value.size();
  const std::size_t new_bytes_max = key.size() + kSessionHeaderBytes +
                                    (record.outcomes.size() + 1) * kMaxOutcomeBytes;
  reserve_ = Reserve{0, new_bytes_max > old_bytes ? new_bytes_max - old_bytes : 0};
  if (entries_.size() + reserve_.keys > limits_.max_keys ||
      store_bytes_ + reserve_.bytes > limits_.max_store_bytes) {
    reserve_ = Reserve{};
    return KvResult{KvOutcome::invalid, 0,
                    "store full: no room to remember " + client + "'s outcome; nothing applied"};
  }
  KvResult result = apply_body(index, command);
  reserve_ = Reserve{};

  KvResult remembered = result;
  if (remembered.message.size() > kMaxRememberedMessageBytes) {
    remembered.message.resize(kMaxRememberedMessageBytes);
  }
  record.outcomes[session.seq] = std::move(remembered);
  record.max_seq = std::max(record.max_seq, session.seq);
  record.last_used_ms = std::max(record.last_used_ms, session.now_ms);
  while (record.max_seq >= kSessionWindow &&
         record.outcomes.begin()->first <= record.max_seq - kSessionWindow) {
    record.outcomes.erase(record.outcomes.begin());
  }
  session_order_.erase(get(key)->mod_revision);  // the body may not touch session keys
  const KvResult saved = write(index, key, encode_session(record));
  ANYA_ASSERT(saved.outcome == KvOutcome::ok);  // the reserve above kept room for it
  session_order_.emplace(index, session.client_id);
  ANYA_ASSERT(session_order_.size() <= limits_.max_sessions);
  return result;
}

void KvStore::forget_sessions(std::uint64_t now_ms) {
  forget_idle_sessions(now_ms);
  while (!session_order_.empty() && session_order_.size() >= limits_.max_sessions) {
    forget_session(session_order_.begin()->second);  // the least recently used
  }
}

void KvStore::forget_idle_sessions(std::uint64_t now_ms) {
  for (int i = 0; i < kIdleChecksPerApply && !session_order_.empty(); ++i) {
    const std::uint64_t client_id = session_order_.begin()->second;
    const KeyValue* stored = get(session_key(client_id));
    ANYA_ASSERT(stored != nullptr);
    Result<SessionRecord> record = decode_session(stored->value);
    // The least recently written is not always the longest idle (clocks differ between
    // proposers), but it is close, and the count bound catches the rest.
    if (record && record->last_used_ms + kSessionIdleMs > now_ms) return;
    forget_session(client_id);
  }
}

void KvStore::forget_session(std::uint64_t client_id) {
  const std::string key = session_key(client_id);
  const KeyValue* stored = get(key);
  ANYA_ASSERT(stored != nullptr);
  const std::size_t removed = session_order_.erase(stored->mod_revision);
  ANYA_ASSERT(removed == 1);
  erase(key);
}

Status KvStore::rebuild_session_order() {
  session_order_.clear();
  for (auto it = entries_.lower_bound(kSessionKeyPrefix);
       it != entries_.end() && it->first.starts_with(kSessionKeyPrefix); ++it) {
    const std::uint64_t client_id = session_id_of(it->first);
    if (client_id == 0 || client_id != it->second.create_revision) {
      return Status(Errc::corrupt, "kv snapshot: session key " + it->first +
                                       " does not name the index that opened it");
    }
    const auto [at, fresh] = session_order_.emplace(it->second.mod_revision, client_id);
    if (!fresh) {  // apply writes one session per index; a snapshot with two was not ours
      return Status(Errc::corrupt, "kv snapshot: sessions " + std::to_string(at->second) +
                                       " and " + std::to_string(client_id) +
                                       " both last written at revision " +
                                       std::to_string(it->second.mod_revision));
    }
  }
  return Status::ok();
}

}  // namespace anya::engine
