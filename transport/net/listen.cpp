#include "transport/net/listen.hpp"

namespace anya::transport::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Status listen(tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
              std::string_view field) {
  const std::string where = host + ":" + std::to_string(port);
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return {Errc::invalid_argument, std::string(field) + ": " + where + ": not an IP address"};
  }
  const tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return {Errc::io_error,
            std::string(field) + ": cannot listen on " + where + ": " + ec.message()};
  }
  ANYA_ASSERT(acceptor.is_open());
  return {};
}

std::uint16_t local_port(const tcp::acceptor& acceptor) {
  boost::system::error_code ec;
  const tcp::endpoint e = acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

}  // namespace anya::transport::net
