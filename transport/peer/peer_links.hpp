// Peer links: the engine's NetworkPort in production. Each pair of members shares one TLS 1.3
// WebSocket (mutual authentication: both certificates chain to the cluster CA and name the node
// they speak for); each WebSocket binary message carries exactly one codec frame.
//
// One link per pair: while two members have no link, both dial (with jittered exponential
// back-off), so a joining node or one that knows the other first can always connect. When two
// links come up at once, each side keeps the one the lower id dialled and closes the other: a
// deterministic tie-break both sides reach alone. A newer preferred link replaces an older one
// (the peer restarted before we saw the old socket die); what the replaced link had not yet
// written moves to the new one, so replacing a link loses nothing.
//
// Refusals, each logged with the reason and counted: a certificate that does not chain to the CA
// or names no node (TLS handshake), a node that is not a member (once set_members has run), a
// dialled node whose certificate names another node, a
// claimed node id that differs from the certificate, another cluster's name, a frame over
// Limits::max_frame_bytes (checked by the WebSocket layer before it buffers the frame), a frame
// that does not decode, and a message whose `from` is not the authenticated peer.
//
// Connections that are accepted but not yet links are bounded (PeerLinkOptions::max_*_links):
// one that has sent nothing holds only a socket (the TLS WebSocket is made at its first byte),
// at the caps the oldest is closed for a newcomer, and floods are counted and logged in bulk,
// one line per reason per 10 s. After a burst the freed heap is handed back to the system.
//
// Sending never blocks. Each link has a bounded queue; at the limit the oldest queued heartbeats
// go first, and only if none is left is the new message dropped, counted and (for appends)
// logged: Raft retransmits, but an operator must be able to see it happen.
//
// Everything runs on one io_context thread, the node's; no method is thread-safe. PeerLinks must
// outlive every run of that io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "engine/ports.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace anya::transport {

struct PeerLinkOptions {
  engine::NodeId self = engine::kNoNode;
  std::string cluster;                  // name, compared at the WebSocket upgrade
  std::string admin_endpoint;           // told to peers, so clients can be sent to the leader
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;        // 0: pick a free port (tests)
  std::shared_ptr<boost::asio::ssl::context> server_tls;
  std::shared_ptr<boost::asio::ssl::context> client_tls;
  std::uint64_t dial_backoff_min_ms = 10;
  std::uint64_t dial_backoff_max_ms = 1000;
  std::uint64_t handshake_timeout_ms = 5000;
  std::uint64_t ping_interval_ms = 1000;  // round-trip time samples and dead-link detection
  std::uint64_t dead_after_ms = 10000;    // nothing heard for this long: close the link
  std::size_t max_queued_messages = 4096;
  std::size_t max_queued_bytes = 64u << 20;
  // Admission of accepted connections (transport/net/connection_gate.hpp). Those that are not
  // yet a link (TLS, certificate and upgrade checks, all within handshake_timeout_ms of the
  // accept) are capped in total and per address; at a cap one of them (the oldest, from the
  // address holding the most) is closed to admit the newcomer, so a flood cannot keep a node
  // from linking. A link that is up is never closed
  // for a newcomer; when max_accepted_links are all up, newcomers are refused.
  std::size_t max_accepted_links = 128;
  std::size_t max_unauthenticated_links = 64;
  std::size_t max_unauthenticated_links_per_source = 16;
};

// Counters per peer, read by the metrics endpoint. Never used for decisions.
struct PeerStats {
  bool connected = false;
  std::uint64_t messages_sent = 0, bytes_sent = 0;
  std::uint64_t messages_received = 0, bytes_received = 0;
  std::uint64_t dropped_not_connected = 0;  // no link when the engine sent
  std::uint64_t dropped_queue_full = 0;     // heartbeats shed or new messages refused
  std::uint64_t dropped_appends = 0;        // of which log entries (always logged)
  std::uint64_t connects = 0, disconnects = 0;
  std::optional<std::uint64_t> last_contact_ms;  // steady clock, ms; any frame or pong
  std::optional<double> rtt_ms;                  // last ping round trip
  std::string admin_endpoint;                    // the peer's, as it told us at the upgrade
};

struct PeerLinkCallbacks {
  std::function<void(const engine::Message&)> on_message;
  // A link to `peer` closed (EOF, reset, timeout, replaced links excluded). The node uses it to
  // start a pre-vote at once when `peer` was the leader.
  std::function<void(engine::NodeId peer, const std::string& reason)> on_peer_down;
  // A dial to `peer` was refused: nothing listens at its address, so its process is not
  // running. Evidence a follower may act on before its leader's lease ends (engine/node).
  std::function<void(engine::NodeId peer)> on_peer_gone;
};

class PeerLinks : public engine::NetworkPort {
 public:
  PeerLinks(boost::asio::io_context& io, PeerLinkOptions options, PeerLinkCallbacks callbacks,
            Logger log);
  ~PeerLinks() override;
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // Binds and listens. Errc::io_error naming the address if it cannot.
  Status start();
  std::uint16_t listen_port() const;
  // The members (and, while joining, the seed nodes) and their peer addresses, self included or
  // not. Dials the new ones; closes links to members no longer listed.
  void set_members(const std::map<engine::NodeId, std::string>& addresses);
  void send(const engine::Message& message) override;
  // Closes every link and the listener; pending handlers finish with operation_aborted.
  void stop();

  const std::map<engine::NodeId, PeerStats>& stats() const;
  // Connections and frames refused, by reason ("tls", "identity", "cluster", "frame_size",
  // "malformed", "spoofed_sender", "not_a_node", ...; for floods of connections that never
  // become links: "flood_evicted" closed to admit a newer one, "flood_refused" every slot held
  // by a link, "flood_timeout" sent nothing before the handshake deadline).
  const std::map<std::string, std::uint64_t>& rejections() const;
  // New TLS contexts (a reload): links made from now on use them; links up stay as they are.
  void set_tls(std::shared_ptr<boost::asio::ssl::context> server,
               std::shared_ptr<boost::asio::ssl::context> client);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace anya::transport
