#include "sim/linearizability.hpp"

#include <algorithm>
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
  friend bool operator<(const State& a, const State& b) {
    return std::tie(a.exists, a.value, a.rev) < std::tie(b.exists, b.value, b.rev);
  }
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
