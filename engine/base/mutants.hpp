// Deliberately broken engine variants, to prove that the simulator finds real bugs. Each is a
// classic Raft mistake, or a broken rule of the state machine. A variant is compiled only into its own test executable (sim/meson.build
// passes -DANYA_MUTANT=<id>); every other build defines no ANYA_MUTANT and every check below is
// the constant `false`, so no variant can reach the product.
#pragma once

namespace anya::mutants {

enum Id : int {
  none = 0,
  vote_twice = 1,           // grant a second vote in the same term
  commit_old_term = 2,      // commit an earlier term's entry by counting replicas (Figure 8)
  send_before_persist = 3,  // let messages leave before their state is durable
  skip_up_to_date = 4,      // vote without the §5.4.1 log up-to-date check
  learners_vote = 5,        // count learners as voters: in elections and toward commits
  // answer a linearizable read at once from the leader's state while CheckQuorum holds and an
  // entry of its term has committed: no round confirmed after the read arrived, no look at
  // the clock first, nor at a transfer under way (the node's rule before engine/node)
  stale_read = 6,
  // chain views play no part in elections: a node behind the chain campaigns, and voters
  // grant it their votes (transfers still avoid behind nodes)
  chain_ignored = 7,
  // The replicated state machine's promises (engine/kv), caught by sim/records_checker.hpp:
  // a retried session request is applied again instead of answered with its first outcome
  session_ignored = 8,
  // a spent outpoint can be reserved again (spent is meant to be final)
  spent_reservable = 9,
};

#ifdef ANYA_MUTANT
inline constexpr int kActive = ANYA_MUTANT;
#else
inline constexpr int kActive = none;
#endif

constexpr bool active(Id id) { return kActive == id; }

}  // namespace anya::mutants
