// Opening a listening socket, the one way every listener here does it (the peer links, the
// admin API, the health listener): an IP literal (no name lookup), SO_REUSEADDR so a restarted
// node binds again at once, the system's largest backlog. Errors name the configuration field.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/result.hpp"

namespace anya::transport::net {

// Binds and listens `acceptor` on host:port. Errc::invalid_argument "FIELD: HOST:PORT: not an
// IP address", Errc::io_error "FIELD: cannot listen on HOST:PORT: REASON".
Status listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host,
              std::uint16_t port, std::string_view field);

// The port `acceptor` listens on; 0 if it does not.
std::uint16_t local_port(const boost::asio::ip::tcp::acceptor& acceptor);

}  // namespace anya::transport::net
