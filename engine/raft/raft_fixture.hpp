// Helpers for driving one Raft directly in unit tests: build it, feed it messages, collect what
// it sends, persisting every batch at once (as a host with an instant disk would).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "engine/raft/raft.hpp"

namespace anya::engine::test {

struct Node {
  explicit Node(RaftConfig config, RestoredState restored = {}, std::uint64_t now_ms = 0)
      : raft(config, restored, now_ms), now_ms(now_ms) {}

  // Persist and "send" every pending batch; return the messages sent.
  std::vector<Message> drain() {
    std::vector<Message> out;
    while (raft.has_ready()) {
      Ready rd = raft.ready();
      if (rd.hard_state) persisted = *rd.hard_state;
      out.insert(out.end(), rd.messages.begin(), rd.messages.end());
      applied.insert(applied.end(), rd.committed_entries.begin(), rd.committed_entries.end());
      raft.advance(rd);
    }
    return out;
  }
  std::vector<Message> step(const Message& m) {
    raft.step(m, now_ms);
    return drain();
  }
  std::vector<Message> advance_ms(std::uint64_t ms) {
    std::vector<Message> out;
    for (std::uint64_t i = 0; i < ms; i++) {
      now_ms++;
      raft.tick(now_ms);
      auto sent = drain();
      out.insert(out.end(), sent.begin(), sent.end());
    }
    return out;
  }
  // Run the clock until the election timer fires, whatever its random draw.
  std::vector<Message> fire_election_timer() {
    const std::uint64_t deadline = raft.election_deadline_ms();
    return advance_ms(deadline > now_ms ? deadline - now_ms : 0);
  }

  Raft raft;
  std::uint64_t now_ms;
  HardState persisted;
  std::vector<Entry> applied;
};

inline RaftConfig config(NodeId id, std::set<NodeId> voters, bool pre_vote = false,
                         bool check_quorum = false) {
  RaftConfig c;
  c.id = id;
  c.voters = std::move(voters);
  c.pre_vote = pre_vote;
  c.check_quorum = check_quorum;
  c.heartbeat_interval_ms = 10;
  c.election_timeout_ms = 100;
  c.random_seed = id * 7 + 1;
  return c;
}

inline Message msg(MessageType type, NodeId from, NodeId to, Term term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

inline std::vector<Entry> entries_with_terms(std::initializer_list<Term> terms) {
  std::vector<Entry> out;
  Index i = 0;
  for (Term t : terms) out.push_back(Entry{t, ++i, EntryType::normal, "e"});
  return out;
}

inline std::vector<Message> of_type(const std::vector<Message>& ms, MessageType type) {
  std::vector<Message> out;
  std::copy_if(ms.begin(), ms.end(), std::back_inserter(out),
               [type](const Message& m) { return m.type == type; });
  return out;
}

// Make `n` leader of `term` by granting it every vote. Returns what it sent on winning.
inline std::vector<Message> elect(Node& n) {
  auto sent = n.fire_election_timer();
  auto requests = of_type(sent, MessageType::vote);
  if (requests.empty()) requests = of_type(sent, MessageType::pre_vote);
  std::vector<Message> out;
  for (const Message& req : requests) {
    Message grant = msg(req.type == MessageType::vote ? MessageType::vote_response
                                                      : MessageType::pre_vote_response,
                        req.to, n.raft.id(), req.term);
    auto more = n.step(grant);
    out.insert(out.end(), more.begin(), more.end());
    if (n.raft.role() == Role::candidate) {
      for (const Message& vote : of_type(more, MessageType::vote)) {
        auto won = n.step(msg(MessageType::vote_response, vote.to, n.raft.id(), vote.term));
        out.insert(out.end(), won.begin(), won.end());
      }
    }
    if (n.raft.is_leader()) break;
  }
  EXPECT_TRUE(n.raft.is_leader());
  return out;
}

}  // namespace anya::engine::test
