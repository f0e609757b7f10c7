#include "transport/discovery/dns_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

namespace anya::transport::dns {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;

namespace {

// Bounded work per query: datagrams that are not our answer are skipped, but only so many.
constexpr int kMaxIgnoredDatagrams = 64;

class Query : public std::enable_shared_from_this<Query> {
 public:
  Query(asio::io_context& io, std::string name, std::uint16_t type,
        std::function<void(Result<Message>)> done)
      : udp_(io), tcp_(io), timer_(io), name_(normalize_name(name)), type_(type),
        done_(std::move(done)) {}

  void start(const Nameserver& server, std::uint64_t timeout_ms) {
    server_text_ = server.to_string();
    boost::system::error_code ec;
    const asio::ip::address_v4 address = asio::ip::make_address_v4(server.address, ec);
    if (ec) return finish(Status(Errc::invalid_argument, "nameserver " + server_text_ +
                                                             ": not an IPv4 address"));
    udp_server_ = udp::endpoint(address, server.port);
    id_ = static_cast<std::uint16_t>(std::random_device{}());
    Result<std::string> bytes = encode_query(id_, name_, type_);
    if (!bytes) return finish(bytes.status());
    query_ = std::move(*bytes);
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    timer_.async_wait([self, timeout_ms](const boost::system::error_code& e) {
      if (e) return;
      self->finish(Status(Errc::io_error, "timeout after " + std::to_string(timeout_ms) +
                                              "ms asking " + self->server_text_));
    });
    udp_.open(udp::v4(), ec);
    if (ec) return finish(Status(Errc::io_error, "UDP socket: " + ec.message()));
    udp_.async_send_to(asio::buffer(query_), udp_server_,
                       [self](const boost::system::error_code& e, std::size_t) {
                         if (e) return self->finish(self->io_error("send", e));
                         self->receive();
                       });
  }

 private:
  Status io_error(const char* what, const boost::system::error_code& e) const {
    return {Errc::io_error, std::string(what) + " to " + server_text_ + ": " + e.message()};
  }

  void receive() {
    auto self = shared_from_this();
    udp_.async_receive_from(asio::buffer(buffer_), sender_,
                            [self](const boost::system::error_code& e, std::size_t n) {
                              if (self->finished_) return;
                              if (e) return self->finish(self->io_error("receive", e));
                              self->on_datagram(std::string_view(self->buffer_.data(), n));
                            });
  }

  // Ours, or to be ignored: an answer must repeat our id and question, from the server.
  bool ours(const Message& m) const {
    return m.id == id_ && m.response && m.question_name == name_ && m.question_type == type_;
  }

  void on_datagram(std::string_view bytes) {
    const bool from_server = sender_ == udp_server_;
    const bool our_id = bytes.size() >= 2 &&
                        (static_cast<std::uint8_t>(bytes[0]) << 8 |
                         static_cast<std::uint8_t>(bytes[1])) == id_;
    Result<Message> m = parse_message(bytes);
    if (from_server && our_id && !m) return finish(m.status());
    if (!from_server || !m || !ours(*m)) {
      if (++ignored_ > kMaxIgnoredDatagrams) {
        return finish(Status(Errc::io_error, "too many stray datagrams from " + server_text_));
      }
      return receive();
    }
    if (m->truncated) return start_tcp();
    finish(std::move(m));
  }

  void start_tcp() {
    udp_.close();
    auto self = shared_from_this();
    length_prefixed_ = std::string{static_cast<char>(query_.size() >> 8),
                                   static_cast<char>(query_.size() & 0xff)} + query_;
    tcp_.async_connect(tcp::endpoint(udp_server_.address(), udp_server_.port()),
                       [self](const boost::system::error_code& e) {
                         if (self->finished_) return;
                         if (e) return self->finish(self->io_error("TCP connect", e));
                         asio::async_write(self->tcp_, asio::buffer(self->length_prefixed_),
                                           [self](const boost::system::error_code& e2,
                                                  std::size_t) {
                                             if (self->finished_) return;
                                             if (e2) return self->finish(
                                                 self->io_error("TCP write", e2));
                                             self->read_tcp_length();
                                           });
                       });
  }

  void read_tcp_length() {
    auto self = shared_from_this();
    asio::async_read(tcp_, asio::buffer(buffer_.data(), 2),
                     [self](const boost::system::error_code& e, std::size_t) {
                       if (self->finished_) return;
                       if (e) return self->finish(self->io_error("TCP read", e));
                       const std::size_t length = static_cast<std::uint8_t>(self->buffer_[0]) << 8 |
                                                  static_cast<std::uint8_t>(self->buffer_[1]);
                       self->tcp_answer_.resize(length);
                       asio::async_read(self->tcp_, asio::buffer(self->tcp_answer_),
                                        [self](const boost::system::error_code& e2, std::size_t) {
                                          if (self->finished_) return;
                                          if (e2) return self->finish(
                                              self->io_error("TCP read", e2));
                                          self->on_tcp_answer();
                                        });
                     });
  }

  void on_tcp_answer() {
    Result<Message> m = parse_message(tcp_answer_);
    if (m && !ours(*m)) {
      return finish(Status(Errc::malformed, "DNS message over TCP: not the answer to our "
                                            "question (id or question differs)"));
    }
    finish(std::move(m));
  }

  void finish(Result<Message> result) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    udp_.close(ignored);
    tcp_.close(ignored);
    // Posted: `done` never runs inside query() itself, so callers need not expect re-entry.
    asio::post(timer_.get_executor(),
               [done = std::move(done_), result = std::move(result)]() mutable {
                 done(std::move(result));
               });
  }

  udp::socket udp_;
  tcp::socket tcp_;
  asio::steady_timer timer_;
  std::string name_;
  std::uint16_t type_;
  std::function<void(Result<Message>)> done_;
  std::string server_text_;
  udp::endpoint udp_server_;
  udp::endpoint sender_;
  std::uint16_t id_ = 0;
  std::string query_;
  std::string length_prefixed_;
  std::array<char, kUdpPayloadBytes> buffer_{};
  std::string tcp_answer_;
  int ignored_ = 0;
  bool finished_ = false;
};

}  // namespace

Result<Nameserver> system_nameserver(const std::string& resolv_conf) {
  std::ifstream in(resolv_conf);
  std::string line;
  for (int lines = 0; lines < 1000 && std::getline(in, line); lines++) {
    std::istringstream words(line);
    std::string keyword, address;
    words >> keyword >> address;
    boost::system::error_code ec;
    if (keyword == "nameserver" && (void(asio::ip::make_address_v4(address, ec)), !ec)) {
      return Nameserver{address, 53};
    }
  }
  return Status(Errc::not_found, resolv_conf + ": no IPv4 nameserver line");
}

void query(asio::io_context& io, const Nameserver& server, const std::string& name,
           std::uint16_t type, std::uint64_t timeout_ms,
           std::function<void(Result<Message>)> done) {
  ANYA_ASSERT(done != nullptr);
  ANYA_ASSERT(timeout_ms > 0);
  auto q = std::make_shared<Query>(io, name, type, std::move(done));
  q->start(server, timeout_ms);
}

}  // namespace anya::transport::dns
