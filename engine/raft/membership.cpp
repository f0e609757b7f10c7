#include "engine/raft/membership.hpp"

#include "engine/base/le_bytes.hpp"

namespace anya::engine {

const char* conf_change_op_name(ConfChangeOp op) {
  switch (op) {
    case ConfChangeOp::add_learner: return "add_learner";
    case ConfChangeOp::promote: return "promote";
    case ConfChangeOp::remove: return "remove";
  }
  return "unknown";
}

namespace {
void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_address(std::string& out, const std::string& address) {
  ANYA_ASSERT(address.size() <= kMaxAddressBytes);
  put(out, address.size(), 2);
  out += address;
}

// A bounds-checked little-endian reader; the first failure sticks, naming field and offset.
class Reader {
 public:
  Reader(std::string_view b, const char* what) : b_(b), what_(what) {}
  std::uint64_t get(int bytes, const char* field) {
    if (!ok()) return 0;
    if (b_.size() - at_ < static_cast<std::size_t>(bytes)) {
      fail(std::string(field) + " truncated");
      return 0;
    }
    const std::uint64_t v = le::get(b_, at_, static_cast<std::size_t>(bytes));
    at_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::string address(const char* field) {
    const std::size_t len = get(2, field);
    if (!ok()) return {};
    if (len > kMaxAddressBytes || b_.size() - at_ < len) {
      fail(std::string(field) + " length " + std::to_string(len) + " invalid");
      return {};
    }
    std::string out(b_.substr(at_, len));
    at_ += len;
    return out;
  }
  void fail(std::string what) {
    if (ok()) error_ = what_ + ": " + what + " at byte offset " + std::to_string(at_);
  }
  bool ok() const { return error_.empty(); }
  bool done() const { return at_ == b_.size(); }
  const std::string& error() const { return error_; }

 private:
  std::string_view b_;
  std::string what_;
  std::size_t at_ = 0;
  std::string error_;
};

// Voter count u16, learner count u16, then each member: id u64, address (u16 length + bytes).
void put_members(std::string& out, const Membership& m) {
  ANYA_ASSERT(m.voters.size() + m.learners.size() <= kMaxMembers);
  put(out, m.voters.size(), 2);
  put(out, m.learners.size(), 2);
  auto member = [&](NodeId id) {
    put(out, id, 8);
    auto it = m.addresses.find(id);
    put_address(out, it == m.addresses.end() ? std::string() : it->second);
  };
  for (NodeId id : m.voters) member(id);
  for (NodeId id : m.learners) member(id);
}

// `min_voters`: a change always results in at least one voter; a snapshot of a node that has
// not learnt its configuration yet may hold none.
Membership read_members(Reader& in, std::size_t min_voters) {
  Membership m;
  const std::size_t voters = in.get(2, "voter count");
  const std::size_t learners = in.get(2, "learner count");
  if (in.ok() && (voters < min_voters || voters + learners > kMaxMembers)) {
    in.fail(std::to_string(voters) + " voters and " + std::to_string(learners) +
            " learners (need " + std::to_string(min_voters) + " to " +
            std::to_string(kMaxMembers) + " members, >= " + std::to_string(min_voters) +
            " voter)");
  }
  for (std::size_t i = 0; in.ok() && i < voters + learners; i++) {
    const NodeId id = in.get(8, "member id");
    std::string address = in.address("member address");
    if (!in.ok()) break;
    if (id == kNoNode || m.contains(id)) {
      in.fail("member id " + std::to_string(id) + " zero or repeated");
      break;
    }
    (i < voters ? m.voters : m.learners).insert(id);
    if (!address.empty()) m.addresses[id] = std::move(address);
  }
  return m;
}
}  // namespace

std::string encode_conf_change(const ConfChangeRecord& r) {
  std::string out;
  put(out, static_cast<std::uint8_t>(r.change.op), 1);
  put(out, r.change.node, 8);
  put_address(out, r.change.address);
  put_members(out, r.result);
  return out;
}

Result<ConfChangeRecord> decode_conf_change(std::string_view b) {
  Reader in(b, "conf change");
  ConfChangeRecord r;
  const auto op = static_cast<std::uint8_t>(in.get(1, "op"));
  if (in.ok() && (op < 1 || op > 3)) in.fail("unknown op " + std::to_string(op));
  r.change.op = static_cast<ConfChangeOp>(op);
  r.change.node = in.get(8, "node");
  if (in.ok() && r.change.node == kNoNode) in.fail("node id 0");
  r.change.address = in.address("address");
  r.result = read_members(in, 1);
  if (in.ok() && !in.done()) in.fail("trailing bytes");
  if (!in.ok()) return Status(Errc::malformed, in.error());
  return r;
}

std::string encode_membership(const Membership& m) {
  std::string out;
  put_members(out, m);
  return out;
}

Result<Membership> decode_membership(std::string_view b) {
  Reader in(b, "membership");
  Membership m = read_members(in, 0);
  if (in.ok() && !in.done()) in.fail("trailing bytes");
  if (!in.ok()) return Status(Errc::malformed, in.error());
  return m;
}

Status Membership::check(const ConfChange& c) const {
  const std::string who = "node " + std::to_string(c.node);
  if (c.node == kNoNode) return {Errc::invalid_argument, "node: id 0 is reserved"};
  switch (c.op) {
    case ConfChangeOp::add_learner:
      if (contains(c.node)) return {Errc::invalid_argument, who + " is already a member"};
      if (c.address.empty() || c.address.size() > kMaxAddressBytes) {
        return {Errc::invalid_argument, "address: must be 1 to " +
                                            std::to_string(kMaxAddressBytes) + " bytes"};
      }
      return {};
    case ConfChangeOp::promote:
      if (learners.count(c.node) == 0) {
        return {Errc::invalid_argument, who + " is not a learner"};
      }
      return {};
    case ConfChangeOp::remove:
      if (!contains(c.node)) return {Errc::invalid_argument, who + " is not a member"};
      if (voters.count(c.node) != 0 && voters.size() == 1) {
        return {Errc::invalid_argument, who + " is the last voter"};
      }
      return {};
  }
  return {Errc::invalid_argument, "unknown change"};
}

void Membership::apply(const ConfChange& c) {
  ANYA_ASSERT(check(c).is_ok());
  switch (c.op) {
    case ConfChangeOp::add_learner:
      learners.insert(c.node);
      addresses[c.node] = c.address;
      break;
    case ConfChangeOp::promote:
      learners.erase(c.node);
      voters.insert(c.node);
      break;
    case ConfChangeOp::remove:
      learners.erase(c.node);
      voters.erase(c.node);
      addresses.erase(c.node);
      break;
  }
  ANYA_ASSERT(!voters.empty());
}

}  // namespace anya::engine
