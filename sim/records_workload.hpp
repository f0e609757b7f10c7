// The simulator's clients in client sessions: what the KV clients (sim/workload.cpp) and the
// UTXO clients (sim/records_workload.cpp) share. A client without a session first opens one (a
// SessionOpen command; the store names the session by the log index of that entry, returned as
// the reply's revision), then sends its write as the session's seq 1. Every write carries
// (client id, seq); a write whose outcome is unknown (the client timed out, the node failed, or
// answered busy) or that was refused before it could apply (not_leader) is retried with the same
// (client id, seq), possibly at another node after a failover, up to kMaxSessionAttempts
// attempts. An open goes through the same attempts; a retried open that had applied opened a
// session nobody uses, which the store forgets in time (harmless).
//
// Two more rules keep a client's session usable, as a real client's must:
//   - a request given up after every attempt was refused (not_leader: it never applied), or
//     whose open never succeeded, hands its seq to the next request, so unanswered clusters do
//     not burn seqs;
//   - a reply "session expired" (the store does not hold the session any more: idle, or least
//     recently used) leaves the outcome unknown; the client drops the session and its next
//     write opens a new one.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "engine/base/result.hpp"
#include "engine/base/types.hpp"
#include "engine/kv/command.hpp"

namespace anya::sim {

// Attempts per write: enough to outlast a failover or two (each attempt waits at most
// SimOptions::kv_timeout_ms), few enough that a client stuck behind a long partition moves on.
inline constexpr std::uint32_t kMaxSessionAttempts = 6;

// The timeout event's parameter: which client, which attempt of which request. The client
// ignores a timeout (or a reply) that is not for its current attempt.
inline constexpr std::uint64_t kAttemptSeqBits = 40;
inline constexpr std::uint64_t kAttemptBits = 8;
static_assert(kMaxSessionAttempts < (1u << kAttemptBits));
std::uint64_t attempt_param(std::uint32_t client, std::uint32_t attempt, std::uint64_t seq);
struct AttemptParam {
  std::uint32_t client = 0;
  std::uint32_t attempt = 0;
  std::uint64_t seq = 0;
};
AttemptParam unpack_attempt(std::uint64_t param);

// NodeCore answers a session request whose outcome the store no longer knows with a conflict
// "session expired: ...": for the client that is an unknown outcome, not a refusal.
bool session_expired(const Status& status);

// A client's session, as the client knows it.
struct SessionState {
  std::uint64_t id = 0;     // the client id its open was given; 0: none (never opened, or expired)
  std::uint64_t seq = 0;    // of its current (or latest) write; a retry reuses it
  bool opening = false;     // the current request's attempts carry a SessionOpen, not the write
};

// A fresh set of outpoints every generation (spent ones are final; contention needs new ones):
// outpoint `vout` of a transaction id drawn from `generation` alone.
engine::Outpoint sim_outpoint(std::uint64_t generation, std::uint32_t vout);

// One simulated wallet: an owner of reservations, talking to the cluster in its own session.
struct UtxoClient {
  SessionState session;          // Invariant: session.opening only while busy
  std::string owner;             // the reservation owner it names
  // Requests begun: identifies the current one (an open and the write after it are two).
  std::uint64_t request = 0;
  bool busy = false;             // a request is under way (an attempt, or a retry due)
  bool in_flight = false;        // an attempt awaits its reply or its timeout
  std::uint32_t attempt = 0;     // of the current request, 1 = the first
  bool maybe_applied = false;    // some attempt ended with an unknown outcome
  engine::NodeId target = 1;     // where it sends next (it follows leader hints)
  engine::UtxoCommand command;   // now_ms is stamped by the node each attempt reaches
  std::set<std::string> held;    // outpoints it was told it reserved and has not let go of
  std::set<std::string> spent;   // outpoints it learned are spent (it mostly leaves them be)
};

}  // namespace anya::sim
