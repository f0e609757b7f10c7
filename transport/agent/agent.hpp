// One running node as a process runs it: the Node, its admin HTTPS server (with the authorizer
// and the audit trail), the optional health listener and the reloadable TLS files on one
// io_context, with graceful shutdown and SIGHUP reloads. `anya-ha agent` runs it on the main thread with signal handling; the
// embedding API (ClusterManager) runs it on a thread of its own.
#pragma once

#include <functional>
#include <memory>

#include "transport/chain/chain_probe.hpp"
#include "transport/config/node_config.hpp"
#include "transport/log/log.hpp"
#include "transport/node/node.hpp"

namespace anya::transport {

class Agent {
 public:
  Agent(NodeConfig config, Logger log, NodeEvents events = {});
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Before start(): probe the chain with this (the embedding API's callback) instead of the
  // [bitcoin] chain_probe command. Either way the probe runs on a thread of its own.
  void set_chain_probe(ChainProbeFn probe);
  // Recovers storage, listens on the peer and admin ports. Errors name the field or file.
  Status start();
  // Runs until stopped. With handle_signals, SIGTERM and SIGINT start a graceful stop.
  // Returns the process exit code: 0 after a graceful stop, 1 after a fatal storage error.
  int run(bool handle_signals);
  // Thread-safe: begins a graceful stop (transfer leadership, close links, return from run()).
  void request_stop();
  // Thread-safe: runs `fn` on the node's thread (the only thread that may touch the node).
  void post(std::function<void(Node&)> fn);

  std::uint16_t peer_port() const;
  std::uint16_t admin_port() const;
  std::uint16_t health_port() const;  // 0 unless admin.health_listen is set

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anya::transport
