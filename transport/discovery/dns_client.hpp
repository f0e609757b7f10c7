// One DNS query on the node's io_context: a UDP datagram to the configured nameserver, again
// over TCP when the answer comes back truncated (an SRV set of many members), all within one
// deadline. The answer must come from the nameserver's address and port, carry our random id,
// be a response, and repeat our question; datagrams that do not are ignored (a stray or forged
// datagram cannot end the query), and the wait goes on until the deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/base/result.hpp"
#include "transport/discovery/dns_message.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport::dns {

struct Nameserver {
  std::string address;  // an IPv4 address
  std::uint16_t port = 53;

  std::string to_string() const { return address + ":" + std::to_string(port); }
};

// The first IPv4 nameserver of a resolv.conf-style file. Errc::not_found naming the file.
Result<Nameserver> system_nameserver(const std::string& resolv_conf = "/etc/resolv.conf");

// Calls `done` on the io thread exactly once: the parsed answer (whatever its rcode), or
// Errc::io_error ("timeout after 2000ms asking 127.0.0.1:53 for ...", a socket error), or
// Errc::malformed (the answer did not parse). The io_context must run until then.
void query(boost::asio::io_context& io, const Nameserver& server, const std::string& name,
           std::uint16_t type, std::uint64_t timeout_ms,
           std::function<void(Result<Message>)> done);

}  // namespace anya::transport::dns
