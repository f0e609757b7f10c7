// A linearizability checker for the replicated KV store's client histories (Wing & Gong's
// search with Lowe's memoisation, as Porcupine does it), one key at a time: a KV history is
// linearizable iff each key's is, since every operation touches one key.
//
// An operation whose outcome the client never learned (a timeout, a crash of the node it asked)
// may take effect at any point after its invocation, or never: it is modelled as returning at
// the end of time with two possible effects, applied or none. Writes refused with a definite
// "did not happen" (not_leader before proposing, another leader's entry at its index) are not
// part of the history. Serializable reads are not either: they promise nothing.
//
// The model is one key: absent, or present with a value and a mod revision. Revisions come from
// the log, so a write's revision is learned from its reply; after an unknown write the
// revision is unknown until a read or a conflict reports it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::sim {

struct KvOp {
  enum class Kind : std::uint8_t { get, put, cas, del };
  enum class Outcome : std::uint8_t { ok, not_found, conflict };
  Kind kind = Kind::get;
  std::string key;
  std::string value;              // put, cas: written; get ok: read
  std::uint64_t expected = 0;     // cas (0: must be absent), del (0: unconditional)
  std::uint64_t invoke_us = 0;
  std::optional<std::uint64_t> complete_us;  // nullopt: the outcome is unknown
  Outcome outcome = Outcome::ok;
  // ok put/cas: the write's revision; ok get: the key's mod revision; conflict: the key's
  // current revision (0 if absent). Otherwise 0.
  std::uint64_t revision = 0;
  std::uint32_t client = 0;
  std::string describe() const;
};

struct LinearizabilityResult {
  bool ok = true;
  bool inconclusive = false;   // the search hit its step bound (not a violation)
  std::string key;             // the first key whose history is not linearizable
  std::string explanation;     // that key's operations, in invocation order
  std::uint64_t operations = 0;
  std::uint64_t steps = 0;
};

// Checks every key's history. `max_steps` bounds the search per key.
LinearizabilityResult check_linearizable(const std::vector<KvOp>& history,
                                         std::uint64_t max_steps = 2'000'000);

// A history recorded outside the simulator (the real-process chaos suite), one operation per
// line, nine tab-separated fields:
//   client  kind(get|put|cas|del)  key  value  expected  invoke_us  complete_us|-
//   outcome(ok|not_found|conflict|-)  revision
// "-" in complete_us (and outcome) marks an unknown outcome; blank lines and lines starting with
// '#' are skipped. Errc::invalid_argument naming the line and the field otherwise.
Result<std::vector<KvOp>> parse_history(std::string_view text);

}  // namespace anya::sim
