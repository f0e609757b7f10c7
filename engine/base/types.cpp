#include "engine/base/types.hpp"

namespace anya::engine {

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::pre_vote: return "pre_vote";
    case MessageType::pre_vote_response: return "pre_vote_response";
    case MessageType::vote: return "vote";
    case MessageType::vote_response: return "vote_response";
    case MessageType::append: return "append";
    case MessageType::append_response: return "append_response";
    case MessageType::heartbeat: return "heartbeat";
    case MessageType::heartbeat_response: return "heartbeat_response";
    case MessageType::timeout_now: return "timeout_now";
    case MessageType::config_ack: return "config_ack";
    case MessageType::snapshot: return "snapshot";
  }
  return "unknown";
}

const char* role_name(Role role) {
  switch (role) {
    case Role::follower: return "follower";
    case Role::pre_candidate: return "pre_candidate";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
    case Role::learner: return "learner";
  }
  return "unknown";
}

const char* read_mode_name(ReadMode mode) {
  switch (mode) {
    case ReadMode::linearizable: return "linearizable";
    case ReadMode::lease: return "lease";
    case ReadMode::serializable: return "serializable";
  }
  return "unknown";
}

Result<ReadMode> parse_read_mode(std::string_view text) {
  for (ReadMode m : {ReadMode::linearizable, ReadMode::lease, ReadMode::serializable}) {
    if (text == read_mode_name(m)) return m;
  }
  std::string quoted(text.substr(0, 64));
  return Status(Errc::invalid_argument,
                "'" + quoted + "': expected linearizable, lease or serializable");
}

}  // namespace anya::engine
