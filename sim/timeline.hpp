// A picture of one run: each node's role over time, terms, commits, crashes, pauses, partitions
// and clock jumps, written as one self-contained HTML file with inline SVG (no scripts, no
// external resources) so a person can see what happened around a failure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/types.hpp"

namespace anya::sim {

class Timeline {
 public:
  enum class Mark {
    crash, restart, pause, resume, clock_jump, dead, violation, liveness, membership
  };

  void role(std::uint64_t at_us, engine::NodeId node, engine::Role role, engine::Term term);
  void commit(std::uint64_t at_us, engine::NodeId node, engine::Index index);
  void mark(std::uint64_t at_us, engine::NodeId node, Mark kind, std::string note);
  void partition(std::uint64_t start_us, std::uint64_t end_us, std::string describe);
  void finish(std::uint64_t end_us) { end_us_ = end_us; }

  std::string render_html(const std::string& title, std::uint32_t nodes) const;

 private:
  struct RoleChange {
    std::uint64_t at_us;
    engine::NodeId node;
    engine::Role role;
    engine::Term term;
  };
  struct CommitPoint {
    std::uint64_t at_us;
    engine::NodeId node;
    engine::Index index;
  };
  struct MarkPoint {
    std::uint64_t at_us;
    engine::NodeId node;
    Mark kind;
    std::string note;
  };
  struct Span {
    std::uint64_t start_us;
    std::uint64_t end_us;
    std::string describe;
  };
  std::vector<RoleChange> roles_;
  std::vector<CommitPoint> commits_;
  std::vector<MarkPoint> marks_;
  std::vector<Span> partitions_;
  std::uint64_t end_us_ = 0;
};

}  // namespace anya::sim
