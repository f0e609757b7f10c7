#include "transport/discovery/multicast_method.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/multicast.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <random>

#include "engine/base/prng.hpp"
#include "transport/discovery/announcement.hpp"

namespace anya::transport::discovery {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using engine::discovery::AnnouncementFilter;
using engine::discovery::MethodReport;
using engine::discovery::Proposal;
using engine::discovery::Verdict;

namespace {

constexpr const char* kName = "multicast";
constexpr std::uint64_t kDropLogIntervalMs = 60'000;
constexpr int kMaxReceiveErrors = 100;

std::uint64_t system_wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
}

class State : public std::enable_shared_from_this<State> {
 public:
  State(asio::io_context& io, MulticastOptions o, Logger log)
      : options_(std::move(o)), log_(std::move(log)), sender_(io), receiver_(io), timer_(io),
        filter_(options_.cluster, options_.self, options_.replay_window_ms),
        prng_(std::random_device{}() | std::uint64_t{std::random_device{}()} << 32) {
    if (!options_.wall_clock_ms) options_.wall_clock_ms = system_wall_ms;
  }

  Status open();
  void start(ReportFn report) {
    report_ = std::move(report);
    receive();
    announce();
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    sender_.close(ignored);
    receiver_.close(ignored);
  }
  std::map<std::string, std::uint64_t> drops() const { return drops_; }

 private:
  void announce();
  void receive();
  void on_datagram(std::string_view bytes);
  void drop(const std::string& reason, const std::string& detail);

  MulticastOptions options_;
  Logger log_;
  udp::socket sender_;
  udp::socket receiver_;
  asio::steady_timer timer_;
  AnnouncementFilter filter_;
  Prng prng_;
  udp::endpoint group_;
  udp::endpoint from_;
  std::array<char, kMaxAnnouncementBytes + 1> buffer_{};  // +1: an oversized one shows
  std::string outgoing_;
  ReportFn report_;
  std::map<std::string, std::uint64_t> drops_;
  std::map<std::string, std::uint64_t> last_logged_ms_;
  int receive_errors_ = 0;  // in a row
  bool stopped_ = false;
};

Status State::open() {
  boost::system::error_code ec;
  const asio::ip::address_v4 group = asio::ip::make_address_v4(options_.group, ec);
  if (ec || !group.is_multicast()) {
    return {Errc::invalid_argument, "discovery.multicast.group: not an IPv4 multicast address"};
  }
  const asio::ip::address_v4 interface = asio::ip::make_address_v4(options_.interface, ec);
  if (ec) return {Errc::invalid_argument, "discovery.multicast.interface: not an IPv4 address"};
  group_ = udp::endpoint(group, options_.port);
  const auto failed = [&](const char* what) {
    return Status(Errc::io_error, "discovery.multicast: " + std::string(what) + " " +
                                      options_.group + ":" + std::to_string(options_.port) +
                                      " on " + options_.interface + ": " + ec.message());
  };
  sender_.open(udp::v4(), ec);
  if (!ec) sender_.set_option(asio::ip::multicast::hops(1), ec);
  if (!ec) sender_.set_option(asio::ip::multicast::enable_loopback(true), ec);
  if (!ec && !interface.is_unspecified()) {
    sender_.set_option(asio::ip::multicast::outbound_interface(interface), ec);
  }
  if (ec) return failed("cannot send to");
  receiver_.open(udp::v4(), ec);
  // Several nodes on one host (and tests) listen on the same group and port.
  if (!ec) receiver_.set_option(udp::socket::reuse_address(true), ec);
  // Bound to the group address, the socket gets only that group's datagrams on the port.
  if (!ec) receiver_.bind(group_, ec);
  if (!ec) receiver_.set_option(asio::ip::multicast::join_group(group, interface), ec);
  if (ec) return failed("cannot listen on");
  return {};
}

void State::announce() {
  if (stopped_) return;
  engine::discovery::Announcement a{options_.cluster, options_.self, options_.advertise,
                                    options_.wall_clock_ms(), prng_.next()};
  outgoing_ = encode_announcement(a, options_.secret);
  auto self = shared_from_this();
  sender_.async_send_to(asio::buffer(outgoing_), group_,
                        [self](const boost::system::error_code& e, std::size_t) {
                          if (e && !self->stopped_) {
                            self->drop("send", "sending the announcement: " + e.message());
                          }
                        });
  // Jitter of ±10% keeps nodes started together from announcing in step.
  const std::uint64_t tenth = options_.interval_ms / 10;
  const std::uint64_t delay_ms = options_.interval_ms - tenth + prng_.between(0, 2 * tenth);
  timer_.expires_after(std::chrono::milliseconds(delay_ms));
  timer_.async_wait([self](const boost::system::error_code& e) {
    if (!e) self->announce();
  });
}

void State::receive() {
  if (stopped_) return;
  auto self = shared_from_this();
  receiver_.async_receive_from(asio::buffer(buffer_), from_,
                               [self](const boost::system::error_code& e, std::size_t n) {
                                 if (self->stopped_ || e == asio::error::operation_aborted) {
                                   return;
                                 }
                                 if (e) {
                                   // A socket that keeps failing would spin: give up on it.
                                   self->drop("receive", e.message());
                                   if (++self->receive_errors_ > kMaxReceiveErrors) return;
                                 } else {
                                   self->receive_errors_ = 0;
                                   self->on_datagram(std::string_view(self->buffer_.data(), n));
                                 }
                                 self->receive();
                               });
}

void State::on_datagram(std::string_view bytes) {
  const std::string from = from_.address().to_string() + ":" + std::to_string(from_.port());
  Result<DecodedAnnouncement> d = decode_announcement(bytes, options_.secret);
  if (!d) return drop("malformed", "from " + from + ": " + d.status().message());
  const engine::discovery::Announcement& a = d->announcement;
  const Verdict v = filter_.check(a, d->mac_ok, options_.wall_clock_ms());
  if (v == Verdict::own) return;
  if (v != Verdict::accepted) {
    return drop(engine::discovery::verdict_name(v),
                "from " + from + " (claims node " + std::to_string(a.node) + " of cluster '" +
                    a.cluster.substr(0, kMaxClusterBytes) + "')");
  }
  Proposal p;
  p.id = a.node;
  p.address = a.address;
  p.expires_ms = steady_now_ms() + kAnnouncementLifetimeIntervals * options_.interval_ms;
  report_(MethodReport::announcement(kName, std::move(p)));
}

void State::drop(const std::string& reason, const std::string& detail) {
  drops_[reason]++;
  const std::uint64_t now = steady_now_ms();
  auto [it, fresh] = last_logged_ms_.try_emplace(reason, now);
  if (!fresh && now - it->second < kDropLogIntervalMs) return;
  it->second = now;
  log_.warn("multicast announcement dropped (", reason, "): ", detail, " [", drops_[reason],
            " so far; logged at most once a minute]");
}

class MulticastMethod final : public Method {
 public:
  MulticastMethod(asio::io_context& io, MulticastOptions o, Logger log)
      : state_(std::make_shared<State>(io, std::move(o), std::move(log))) {}
  ~MulticastMethod() override { state_->stop(); }
  std::string_view name() const override { return kName; }
  Status start(ReportFn report) override {
    if (Status s = state_->open(); !s) return s;
    state_->start(std::move(report));
    return {};
  }
  void stop() override { state_->stop(); }
  std::map<std::string, std::uint64_t> drops() const override { return state_->drops(); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Method> make_multicast_method(asio::io_context& io, MulticastOptions options,
                                              Logger log) {
  ANYA_ASSERT(options.self != engine::kNoNode);
  ANYA_ASSERT(options.interval_ms >= 10);
  ANYA_ASSERT(options.secret.size() >= kMinSecretBytes);
  return std::make_unique<MulticastMethod>(io, std::move(options), std::move(log));
}

}  // namespace anya::transport::discovery
