#include "sim/linearizability.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_set>

#include "engine/base/result.hpp"

namespace anya::sim {

namespace {

constexpr std::size_t kExplainOps = 40;  // operations quoted in a violation

// The model of one key. rev 0 while present: not known (written by an unknown-outcome op).
struct State {
  bool exists = false;
  std::string value;
  std::uint64_t rev = 0;
};

bool rev_matches(const State& s, std::uint64_t rev) { return s.rev == 0 || s.rev == rev; }

std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t state_hash(const State& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ (s.exists ? 1 : 2);
  for (const char c : s.value) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ mix64(s.rev));
}

// The search's memo: (set of operations linearized, state reached) pairs already explored,
// each side as a 64-bit hash: the set by Zobrist hashing (the XOR of a random word per
// operation), so adding or removing one costs O(1). A collision could only hide a branch
// (a missed violation), never report a false one; at 2^-64 per pair it does not happen.
struct PairHash {
  std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& p) const {
    return static_cast<std::size_t>(mix64(p.first ^ mix64(p.second)));
  }
};

// The states `op` may leave behind from `s`; empty when it cannot happen from `s`.
std::vector<State> step(const State& s, const KvOp& op) {
  using Kind = KvOp::Kind;
  using Outcome = KvOp::Outcome;
  std::vector<State> out;
  const bool unknown = !op.complete_us.has_value();
  if (unknown) {
    // It may never have happened: no effect is always possible (reads are never unknown).
    ANYA_ASSERT(op.kind != Kind::get);
    out.push_back(s);
  }
  switch (op.kind) {
    case Kind::get:
      if (op.outcome == Outcome::not_found && !s.exists) out.push_back(s);
      if (op.outcome == Outcome::ok && s.exists && s.value == op.value &&
          rev_matches(s, op.revision)) {
        out.push_back(State{true, s.value, op.revision});
      }
      break;
    case Kind::put:
      if (unknown) {
        out.push_back(State{true, op.value, 0});
      } else if (op.outcome == Outcome::ok && (s.rev == 0 || op.revision > s.rev || !s.exists)) {
        out.push_back(State{true, op.value, op.revision});
      }
      break;
    case Kind::cas: {
      const bool may_match = op.expected == 0 ? !s.exists : s.exists && rev_matches(s, op.expected);
      const bool may_differ = op.expected == 0 ? s.exists : !s.exists || s.rev != op.expected;
      if (unknown) {
        if (may_match) out.push_back(State{true, op.value, 0});
      } else if (op.outcome == Outcome::ok && may_match) {
        out.push_back(State{true, op.value, op.revision});
      } else if (op.outcome == Outcome::conflict && may_differ) {
        if (!s.exists && op.revision == 0) out.push_back(s);
        if (s.exists && rev_matches(s, op.revision) && op.revision != 0) {
          out.push_back(State{true, s.value, op.revision});
        }
      }
      break;
    }
    case Kind::del: {
      const bool may_match = s.exists && (op.expected == 0 || rev_matches(s, op.expected));
      if (unknown) {
        if (may_match) out.push_back(State{});
      } else if (op.outcome == Outcome::ok && may_match) {
        out.push_back(State{});
      } else if (op.outcome == Outcome::not_found && !s.exists) {
        out.push_back(s);
      } else if (op.outcome == Outcome::conflict && s.exists && op.expected != 0 &&
                 s.rev != op.expected && rev_matches(s, op.revision)) {
        out.push_back(State{true, s.value, op.revision});
      }
      break;
    }
  }
  return out;
}

// One key's history as the doubly linked list of call and return events the search lifts
// operations out of.
struct Event {
  bool call = true;
  std::size_t op = 0;
  std::size_t match = 0;  // call: its return's event index; return: its call's
  std::size_t prev = 0, next = 0;
};

class Search {
 public:
  Search(const std::vector<const KvOp*>& ops) : ops_(ops) {
    struct Point {
      std::uint64_t at;
      int order;  // calls before returns at the same instant: they overlap
      std::size_t op;
      bool call;
    };
    std::vector<Point> points;
    for (std::size_t i = 0; i < ops.size(); i++) {
      points.push_back({ops[i]->invoke_us, 0, i, true});
      points.push_back({ops[i]->complete_us.value_or(std::numeric_limits<std::uint64_t>::max()),
                        1, i, false});
    }
    std::stable_sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
      return std::tie(a.at, a.order) < std::tie(b.at, b.order);
    });
    // Index 0 is the list's head sentinel.
    events_.resize(points.size() + 1);
    std::vector<std::size_t> call_of(ops.size()), return_of(ops.size());
    for (std::size_t k = 0; k < points.size(); k++) {
      Event& e = events_[k + 1];
      e.call = points[k].call;
      e.op = points[k].op;
      e.prev = k;
      e.next = k + 2 <= points.size() ? k + 2 : 0;
      (e.call ? call_of : return_of)[e.op] = k + 1;
    }
    events_[0].next = points.empty() ? 0 : 1;
    for (std::size_t i = 0; i < ops.size(); i++) {
      events_[call_of[i]].match = return_of[i];
      events_[return_of[i]].match = call_of[i];
    }
  }

  // True if linearizable; false with `inconclusive` set if the step bound was hit first.
  bool run(std::uint64_t max_steps, std::uint64_t& steps, bool& inconclusive) {
    struct Frame {
      std::size_t call;
      State before;
      std::size_t choice;
    };
    std::vector<Frame> stack;
    std::vector<std::uint64_t> zobrist(ops_.size());
    for (std::size_t i = 0; i < ops_.size(); i++) zobrist[i] = mix64(i + 0x9e3779b97f4a7c15ULL);
    std::uint64_t done = 0;  // the Zobrist hash of the linearized set
    State state;
    std::size_t entry = events_[0].next;
    std::size_t first_choice = 0;
    while (events_[0].next != 0) {
      if (++steps > max_steps) {
        inconclusive = true;
        return false;
      }
      ANYA_ASSERT(entry != 0);
      const Event& e = events_[entry];
      if (e.call) {
        const std::vector<State> choices = step(state, *ops_[e.op]);
        bool moved = false;
        for (std::size_t k = first_choice; k < choices.size(); k++) {
          if (!seen_.emplace(done ^ zobrist[e.op], state_hash(choices[k])).second) {
            continue;  // this set of operations has led to this state before
          }
          done ^= zobrist[e.op];
          stack.push_back({entry, state, k});
          state = choices[k];
          lift(entry);
          entry = events_[0].next;
          moved = true;
          break;
        }
        first_choice = 0;
        if (!moved) entry = e.next;
        continue;
      }
      // A return whose call is not linearized yet: undo the last choice.
      if (stack.empty()) return false;
      const Frame f = stack.back();
      stack.pop_back();
      state = f.before;
      done ^= zobrist[events_[f.call].op];
      unlift(f.call);
      entry = f.call;
      first_choice = f.choice + 1;
    }
    return true;
  }

 private:
  void unlink(std::size_t i) {
    events_[events_[i].prev].next = events_[i].next;
    if (events_[i].next != 0) events_[events_[i].next].prev = events_[i].prev;
  }
  void relink(std::size_t i) {
    events_[events_[i].prev].next = i;
    if (events_[i].next != 0) events_[events_[i].next].prev = i;
  }
  void lift(std::size_t call) {
    unlink(call);
    unlink(events_[call].match);
  }
  void unlift(std::size_t call) {
    relink(events_[call].match);
    relink(call);
  }

  const std::vector<const KvOp*>& ops_;
  std::vector<Event> events_;
  std::unordered_set<std::pair<std::uint64_t, std::uint64_t>, PairHash> seen_;
};

}  // namespace

std::string KvOp::describe() const {
  static const char* kinds[] = {"get", "put", "cas", "del"};
  static const char* outcomes[] = {"ok", "not_found", "conflict"};
  std::string s = "client " + std::to_string(client) + " " + kinds[static_cast<int>(kind)] +
                  "(" + key;
  if (kind == Kind::put || kind == Kind::cas) s += ", '" + value + "'";
  if (kind == Kind::cas || kind == Kind::del) s += ", expect " + std::to_string(expected);
  s += ") @" + std::to_string(invoke_us) + "us -> ";
  if (!complete_us) return s + "unknown";
  s += outcomes[static_cast<int>(outcome)];
  if (kind == Kind::get && outcome == Outcome::ok) s += " '" + value + "'";
  return s + " rev " + std::to_string(revision) + " @" + std::to_string(*complete_us) + "us";
}

namespace {
std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Status parse_line(std::string_view line, std::size_t number, KvOp& op) {
  std::vector<std::string_view> f;
  for (std::size_t start = 0;;) {
    const std::size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  const std::string where = "line " + std::to_string(number) + ": ";
  const auto bad = [&](const char* field, std::string_view got, const char* want) {
    return Status(Errc::invalid_argument, where + field + ": '" + std::string(got.substr(0, 40)) +
                                              "' is not " + want);
  };
  if (f.size() != 9) {
    return Status(Errc::invalid_argument,
                  where + "expected 9 tab-separated fields, found " + std::to_string(f.size()));
  }
  const auto client = parse_u64(f[0]);
  if (!client || *client > 0xffffffffu) return bad("client", f[0], "a client number");
  op.client = static_cast<std::uint32_t>(*client);
  static const std::pair<std::string_view, KvOp::Kind> kinds[] = {
      {"get", KvOp::Kind::get}, {"put", KvOp::Kind::put}, {"cas", KvOp::Kind::cas},
      {"del", KvOp::Kind::del}};
  bool kind_ok = false;
  for (const auto& [name, kind] : kinds) {
    if (f[1] == name) {
      op.kind = kind;
      kind_ok = true;
    }
  }
  if (!kind_ok) return bad("kind", f[1], "get, put, cas or del");
  if (f[2].empty()) return bad("key", f[2], "a key");
  op.key = std::string(f[2]);
  op.value = std::string(f[3]);
  const auto expected = parse_u64(f[4]);
  if (!expected) return bad("expected", f[4], "a revision");
  op.expected = *expected;
  const auto invoke = parse_u64(f[5]);
  if (!invoke) return bad("invoke_us", f[5], "a time in microseconds");
  op.invoke_us = *invoke;
  if (f[6] == "-") {
    if (op.kind == KvOp::Kind::get) {
      return Status(Errc::invalid_argument, where + "complete_us: a read with no answer "
                                                    "constrains nothing; leave it out");
    }
    op.complete_us.reset();
    return {};
  }
  const auto complete = parse_u64(f[6]);
  if (!complete || *complete < op.invoke_us) {
    return bad("complete_us", f[6], "a time in microseconds at or after invoke_us");
  }
  op.complete_us = *complete;
  if (f[7] == "ok") {
    op.outcome = KvOp::Outcome::ok;
  } else if (f[7] == "not_found") {
    op.outcome = KvOp::Outcome::not_found;
  } else if (f[7] == "conflict") {
    op.outcome = KvOp::Outcome::conflict;
  } else {
    return bad("outcome", f[7], "ok, not_found or conflict");
  }
  const auto revision = parse_u64(f[8]);
  if (!revision) return bad("revision", f[8], "a revision");
  op.revision = *revision;
  return {};
}
}  // namespace

Result<std::vector<KvOp>> parse_history(std::string_view text) {
  std::vector<KvOp> ops;
  std::size_t number = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    number++;
    if (line.empty() || line[0] == '#') continue;
    KvOp op;
    if (Status s = parse_line(line, number, op); !s) return s;
    ops.push_back(std::move(op));
  }
  return ops;
}

LinearizabilityResult check_linearizable(const std::vector<KvOp>& history,
                                         std::uint64_t max_steps) {
  std::map<std::string, std::vector<const KvOp*>> by_key;
  for (const KvOp& op : history) {
    ANYA_ASSERT(!op.complete_us || *op.complete_us >= op.invoke_us);
    by_key[op.key].push_back(&op);
  }
  LinearizabilityResult result;
  result.operations = history.size();
  for (auto& [key, ops] : by_key) {
    std::stable_sort(ops.begin(), ops.end(), [](const KvOp* a, const KvOp* b) {
      return a->invoke_us < b->invoke_us;
    });
    Search search(ops);
    bool inconclusive = false;
    std::uint64_t steps = 0;
    const bool ok = search.run(max_steps, steps, inconclusive);
    result.steps += steps;
    if (inconclusive) {
      result.inconclusive = true;
      continue;
    }
    if (!ok) {
      result.ok = false;
      result.key = key;
      // The operations around the end of the history, where the search gave up.
      const std::size_t from = ops.size() > kExplainOps ? ops.size() - kExplainOps : 0;
      if (from > 0) result.explanation += "  (" + std::to_string(from) + " earlier omitted)\n";
      for (std::size_t i = from; i < ops.size(); i++) {
        result.explanation += "  " + ops[i]->describe() + "\n";
      }
      return result;
    }
  }
  return result;
}

}  // namespace anya::sim
