// ConfigState::encode/decode: the configuration-document state in a snapshot.
#include <limits>

#include "engine/config/config.hpp"
#include "engine/base/le_bytes.hpp"

namespace anya::engine {

namespace {
constexpr std::uint8_t kStateFormat = 1;

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& out, std::string_view b) {
  ANYA_ASSERT(b.size() <= std::numeric_limits<std::uint32_t>::max());
  put(out, b.size(), 4);
  out.append(b);
}

// Bounds-checked little-endian reader; the first failure sticks, naming field and offset.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  std::uint64_t get(int bytes, const char* field) {
    if (!need(static_cast<std::size_t>(bytes), field)) return 0;
    const std::uint64_t v = le::get(b_, at_, static_cast<std::size_t>(bytes));
    at_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::string bytes(std::size_t limit, const char* field) {
    const std::size_t len = get(4, field);
    if (ok() && len > limit) fail(std::string(field) + " length " + std::to_string(len) +
                                  " exceeds limit " + std::to_string(limit));
    if (!need(len, field)) return {};
    std::string out(b_.substr(at_, len));
    at_ += len;
    return out;
  }
  void fail(const std::string& what) {
    if (ok()) error_ = "config state: " + what + " at byte offset " + std::to_string(at_);
  }
  bool ok() const { return error_.empty(); }
  bool done() const { return at_ == b_.size(); }
  const std::string& error() const { return error_; }

 private:
  bool need(std::size_t n, const char* field) {
    if (!ok()) return false;
    if (b_.size() - at_ < n) {
      fail(std::string(field) + " truncated");
      return false;
    }
    return true;
  }
  std::string_view b_;
  std::size_t at_ = 0;
  std::string error_;
};
}  // namespace

std::string ConfigState::encode() const {
  check_invariants();
  std::string out;
  put(out, kStateFormat, 1);
  put(out, highest_version_seen_, 8);
  put(out, last_index_, 8);
  for (std::uint64_t c : {counters_.stale_prepares, counters_.prepares_while_open,
                          counters_.unmatched_commits, counters_.unmatched_aborts,
                          counters_.invalid_records}) {
    put(out, c, 8);
  }
  put(out, history_.size(), 4);
  for (const ConfigHistoryEntry& h : history_) {
    put(out, h.version, 8);
    put(out, h.index, 8);
    put_bytes(out, h.document);
  }
  put(out, staged_ ? 1 : 0, 1);
  if (staged_) {
    put(out, staged_->version, 8);
    put(out, staged_->index, 8);
    put(out, staged_->locally_valid ? 1 : 0, 1);
    put_bytes(out, staged_->document);
    put(out, staged_->required.size(), 4);
    for (NodeId id : staged_->required) put(out, id, 8);
    put_bytes(out, staged_->local_reason);
  }
  return out;
}

Result<ConfigState> ConfigState::decode(std::string_view bytes) {
  Reader in(bytes);
  ConfigState st;
  const std::uint64_t format = in.get(1, "format");
  if (in.ok() && format != kStateFormat) in.fail("unknown format " + std::to_string(format));
  st.highest_version_seen_ = in.get(8, "highest version seen");
  st.last_index_ = in.get(8, "last index");
  for (std::uint64_t* c : {&st.counters_.stale_prepares, &st.counters_.prepares_while_open,
                           &st.counters_.unmatched_commits, &st.counters_.unmatched_aborts,
                           &st.counters_.invalid_records}) {
    *c = in.get(8, "counter");
  }
  const std::size_t count = in.get(4, "history count");
  if (in.ok() && count > ConfigLimits::history_capacity) {
    in.fail("history count " + std::to_string(count) + " exceeds capacity " +
            std::to_string(ConfigLimits::history_capacity));
  }
  for (std::size_t i = 0; in.ok() && i < count; i++) {
    ConfigHistoryEntry h;
    h.version = in.get(8, "history version");
    h.index = in.get(8, "history index");
    h.document = in.bytes(ConfigLimits::max_document_bytes, "history document");
    if (in.ok() && !st.history_.empty() && (h.version <= st.history_.back().version ||
                                            h.index <= st.history_.back().index)) {
      in.fail("history entry " + std::to_string(i) + " does not follow the previous one");
    }
    st.history_.push_back(std::move(h));
  }
  const std::uint64_t staged = in.get(1, "staged flag");
  if (in.ok() && staged > 1) in.fail("staged flag " + std::to_string(staged));
  if (in.ok() && staged == 1) {
    StagedConfig sc;
    sc.version = in.get(8, "staged version");
    sc.index = in.get(8, "staged index");
    const std::uint64_t valid = in.get(1, "locally valid flag");
    if (in.ok() && valid > 1) in.fail("locally valid flag " + std::to_string(valid));
    sc.locally_valid = valid == 1;
    sc.document = in.bytes(ConfigLimits::max_document_bytes, "staged document");
    const std::size_t required = in.get(4, "required count");
    if (in.ok() && required > ConfigLimits::max_required_members) {
      in.fail("required count " + std::to_string(required) + " exceeds limit");
    }
    for (std::size_t i = 0; in.ok() && i < required; i++) {
      sc.required.push_back(in.get(8, "required member"));
    }
    sc.local_reason = in.bytes(ConfigLimits::max_reason_bytes, "local reason");
    if (in.ok() && (sc.document.empty() || sc.version <= st.active_version() ||
                    sc.version > st.highest_version_seen_)) {
      in.fail("staged version " + std::to_string(sc.version) + " out of order");
    }
    st.staged_ = std::move(sc);
  }
  if (in.ok() && st.active_version() > st.highest_version_seen_) {
    in.fail("active version above the highest version seen");
  }
  if (in.ok() && !in.done()) in.fail("trailing bytes");
  if (!in.ok()) return Status(Errc::malformed, in.error());
  st.check_invariants();
  return st;
}

}  // namespace anya::engine
