// DNS SRV discovery: asks the configured nameserver for SERVICE.DOMAIN (SRV), takes each
// target's address from the answer's additional section or asks for it (A), and proposes
// node-N.DOMAIN as node N (engine/discovery/names.hpp) at ADDRESS:PORT, in RFC 2782 order. It
// asks again when the records' smallest TTL runs out, clamped to [min_refresh, max_refresh];
// after a failure, after min_refresh doubled per failure in a row (up to max_refresh).
//
// Failures (each a report with its reason, the method's entries kept): "timeout", "io",
// "malformed" (the answer did not parse), "nxdomain", "servfail", "refused", "rcode" (another
// error code), "no_records" (the name exists but holds no SRV record with a target). A target
// whose name carries no node id is left out and logged; one whose A lookup says NXDOMAIN too.
#pragma once

#include <memory>

#include "transport/discovery/dns_client.hpp"
#include "transport/discovery/method.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport::discovery {

struct DnsSrvOptions {
  std::string name;                 // SERVICE.DOMAIN
  dns::Nameserver server;
  std::uint64_t min_refresh_ms = 5'000;
  std::uint64_t max_refresh_ms = 300'000;
  std::uint64_t timeout_ms = 2'000;
};

std::unique_ptr<Method> make_dns_srv_method(boost::asio::io_context& io, DnsSrvOptions options,
                                            Logger log);

}  // namespace anya::transport::discovery
