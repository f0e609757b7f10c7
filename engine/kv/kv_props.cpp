// Properties of the key-value state machine against a dumb model (a std::map and the rules of
// kv.hpp written out plainly): random command sequences over a few keys, with compare-and-set
// revisions that are sometimes right and sometimes stale, truncated commands and small store
// limits, give the same result for every command and the same final state; and taking a snapshot
// and restoring it at any points of the sequence changes no later result and no final byte.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv/kv.hpp"

namespace anya::engine {
namespace {

constexpr int kKeys = 6;          // few keys, so commands collide on them
constexpr int kMaxValueLen = 12;
constexpr Index kMaxRandomRevision = 40;

enum class Kind { put, cas, del, truncated };
enum class RevisionChoice { current, zero, arbitrary };

// One step as drawn; resolved into a command against the model's state when it runs, so a cas
// can name the revision a well-informed client would have read.
struct Step {
  Kind kind = Kind::put;
  int key = 0;
  int value_len = 0;
  RevisionChoice revision = RevisionChoice::current;
  Index arbitrary_revision = 0;
  Index gap = 1;           // indexes skipped for entries that are not KV commands
  std::size_t cut = 0;     // truncated: how many bytes to drop (mod the size), at least one
  bool restore_after = false;
};

std::ostream& operator<<(std::ostream& os, const Step& s) {
  return os << "{kind " << static_cast<int>(s.kind) << " key " << s.key << " len " << s.value_len
            << " rev " << static_cast<int>(s.revision) << "/" << s.arbitrary_revision << " gap "
            << s.gap << " cut " << s.cut << (s.restore_after ? " restore" : "") << "}";
}

// Uniform in [min, max] whatever the test size (inRange grows with the size otherwise).
template <typename T>
rc::Gen<T> uniform(T min, T max) {
  return rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(min, max + 1));
}

rc::Gen<Step> gen_step() {
  return rc::gen::build<Step>(
      rc::gen::set(&Step::kind, rc::gen::element(Kind::put, Kind::cas, Kind::cas, Kind::del,
                                                 Kind::truncated)),
      rc::gen::set(&Step::key, uniform(0, kKeys - 1)),
      rc::gen::set(&Step::value_len, uniform(0, kMaxValueLen)),
      rc::gen::set(&Step::revision, rc::gen::element(RevisionChoice::current,
                                                     RevisionChoice::current,
                                                     RevisionChoice::zero,
                                                     RevisionChoice::arbitrary)),
      rc::gen::set(&Step::arbitrary_revision, uniform<Index>(0, kMaxRandomRevision)),
      rc::gen::set(&Step::gap, rc::gen::weightedElement<Index>({{6, 1}, {1, 2}, {1, 5}})),
      rc::gen::set(&Step::cut, uniform<std::size_t>(0, 64)),
      rc::gen::set(&Step::restore_after, rc::gen::weightedElement<bool>({{5, false}, {1, true}})));
}

std::string key_name(int key) { return "key" + std::to_string(key); }

// The rules of kv.hpp, written as plainly as possible.
struct Model {
  KvLimits limits;
  std::map<std::string, KeyValue> keys;
  std::size_t bytes = 0;

  Index current(const std::string& key) const {
    const auto it = keys.find(key);
    return it == keys.end() ? 0 : it->second.mod_revision;
  }

  KvResult write(Index index, const std::string& key, const std::string& value) {
    const auto it = keys.find(key);
    const bool exists = it != keys.end();
    const std::size_t old_bytes = exists ? key.size() + it->second.value.size() : 0;
    if (!exists && keys.size() >= limits.max_keys) return {KvOutcome::invalid, 0, {}};
    if (bytes - old_bytes + key.size() + value.size() > limits.max_store_bytes) {
      return {KvOutcome::invalid, 0, {}};
    }
    bytes = bytes - old_bytes + key.size() + value.size();
    if (exists) {
      it->second = KeyValue{value, it->second.create_revision, index, it->second.version + 1};
    } else {
      keys[key] = KeyValue{value, index, index, 1};
    }
    return {KvOutcome::ok, index, {}};
  }

  KvResult apply(Index index, const KvCommand& command) {
    const Index now = current(command.key);
    switch (command.op) {
      case KvOp::put: return write(index, command.key, command.value);
      case KvOp::cas:
        if (now != command.expected_revision) return {KvOutcome::conflict, now, {}};
        return write(index, command.key, command.value);
      case KvOp::del:
        if (now == 0) return {KvOutcome::not_found, 0, {}};
        if (command.expected_revision != 0 && command.expected_revision != now) {
          return {KvOutcome::conflict, now, {}};
        }
        bytes -= command.key.size() + keys[command.key].value.size();
        keys.erase(command.key);
        return {KvOutcome::ok, index, {}};
    }
    return {KvOutcome::invalid, 0, {}};
  }
};

KvCommand resolve(const Step& step, const Model& model) {
  const std::string key = key_name(step.key);
  const Index now = model.current(key);
  Index revision = 0;
  switch (step.revision) {
    case RevisionChoice::current: revision = now; break;
    case RevisionChoice::zero: revision = 0; break;
    case RevisionChoice::arbitrary: revision = step.arbitrary_revision; break;
  }
  std::string value(static_cast<std::size_t>(step.value_len), static_cast<char>('a' + step.key));
  switch (step.kind) {
    case Kind::cas: return KvCommand::cas(key, revision, value);
    case Kind::del:
      return KvCommand::del(key, revision == 0 ? std::nullopt : std::optional<Index>(revision));
    case Kind::put:
    case Kind::truncated: break;
  }
  return KvCommand::put(key, value);
}

// Only ok/conflict/not_found carry revisions; an invalid result's message is for people.
void check_same(const KvResult& got, const KvResult& want) {
  RC_ASSERT(got.outcome == want.outcome);
  RC_ASSERT(got.revision == want.revision);
  RC_ASSERT(got.message.empty() == (want.outcome != KvOutcome::invalid));
}

void check_same_state(const KvStore& store, const Model& model, Index last_index) {
  RC_ASSERT(store.revision() == last_index);
  RC_ASSERT(store.size() == model.keys.size());
  RC_ASSERT(store.store_bytes() == model.bytes);
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = key_name(k);
    const KeyValue* got = store.get(key);
    const auto want = model.keys.find(key);
    RC_ASSERT((got != nullptr) == (want != model.keys.end()));
    if (got != nullptr) RC_ASSERT(*got == want->second);
  }
}

KvLimits gen_limits() {
  const bool small = *rc::gen::weightedElement<bool>({{2, false}, {1, true}});
  if (!small) return KvLimits{};
  return KvLimits{*uniform<std::size_t>(1, kKeys), *uniform<std::size_t>(5, 60)};
}

// Runs the steps on a store (restoring it from its own snapshot where a step says so, if
// `with_restores`) and on the model, comparing every result; returns the final snapshot.
std::string run(const std::vector<Step>& steps, KvLimits limits, bool with_restores) {
  KvStore store(limits);
  Model model{limits, {}, 0};
  Index index = 0;
  for (const Step& step : steps) {
    index += step.gap;
    const KvCommand command = resolve(step, model);
    std::string bytes = encode_command(command);
    KvResult want;
    if (step.kind == Kind::truncated) {
      bytes.resize(bytes.size() - 1 - step.cut % bytes.size());
      want = KvResult{KvOutcome::invalid, 0, "x"};
    } else {
      want = model.apply(index, command);
    }
    check_same(store.apply(index, bytes), want);
    if (with_restores && step.restore_after) {
      auto restored = KvStore::restore(store.snapshot(), limits);
      RC_ASSERT(restored.is_ok());
      store = std::move(restored.value());
    }
  }
  check_same_state(store, model, index);
  return store.snapshot();
}

RC_GTEST_PROP(KvProps, MatchesAMapModel, ()) {
  const KvLimits limits = gen_limits();
  const auto steps = *rc::gen::container<std::vector<Step>>(gen_step());
  static_cast<void>(run(steps, limits, false));
}

RC_GTEST_PROP(KvProps, SnapshotRestoreAnywhereChangesNothingLater, ()) {
  const KvLimits limits = gen_limits();
  const auto steps = *rc::gen::container<std::vector<Step>>(gen_step());
  const std::string straight = run(steps, limits, false);
  const std::string restored = run(steps, limits, true);
  RC_ASSERT(restored == straight);
  // The final snapshot restores to a store whose own snapshot is the same bytes.
  const auto again = KvStore::restore(straight, limits);
  RC_ASSERT(again.is_ok());
  RC_ASSERT(again->snapshot() == straight);
}

}  // namespace
}  // namespace anya::engine
