// A load generator for the admin API: C concurrent HTTPS keep-alive connections (TLS 1.3 with a
// client certificate), each writing 256-byte values with PUT /v1/kv/KEY one after another for a
// fixed time, against one endpoint (the leader), or with --read MODE reading keys with
// GET /v1/kv/KEY?consistency=MODE. Prints throughput and latency percentiles.
//
//   admin_load --endpoint https://127.0.0.1:7201 --cacert ca.crt --cert client.crt
//              --key client.key --clients 16 --seconds 10 [--value-bytes 256]
//              [--read linearizable|lease|serializable]
//
// One thread, one io_context: the generator costs little CPU next to the cluster it measures.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "transport/tls/context.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1", port, cacert, cert, key;
  int clients = 1;
  int seconds = 10;
  int value_bytes = 256;
  std::string read_mode;  // empty: write
};

struct Totals {
  std::vector<double> latencies_ms;
  std::uint64_t errors = 0;
  Clock::time_point end;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, asio::ssl::context& ctx, const Options& o, int id, Totals& totals)
      : stream_(io, ctx), o_(o), id_(id), totals_(totals),
        value_(static_cast<std::size_t>(o.value_bytes), 'v') {}

  void start(const tcp::resolver::results_type& endpoints) {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream_).async_connect(
        endpoints, [self](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return self->fail("connect", ec);
          self->stream_.async_handshake(asio::ssl::stream_base::client,
                                        [self](beast::error_code e) {
                                          if (e) return self->fail("handshake", e);
                                          self->next();
                                        });
        });
  }

 private:
  void next() {
    if (Clock::now() >= totals_.end) return;
    req_ = {};
    const std::string key = "/v1/kv/load-" + std::to_string(id_) + "-" +
                            std::to_string(seq_++ % 1000);
    req_.version(11);
    req_.set(http::field::host, o_.host);
    if (o_.read_mode.empty()) {
      req_.method(http::verb::put);
      req_.target(key);
      req_.set(http::field::content_type, "application/json");
      req_.body() = "{\"value\":\"" + value_ + "\"}";
    } else {
      // A key that was never written answers 404, as fast as a hit: both count as answered.
      req_.method(http::verb::get);
      req_.target(key + "?consistency=" + o_.read_mode);
    }
    req_.keep_alive(true);
    req_.prepare_payload();
    started_ = Clock::now();
    auto self = shared_from_this();
    http::async_write(stream_, req_, [self](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("write", ec);
      self->res_ = {};
      http::async_read(self->stream_, self->buffer_, self->res_,
                       [self](beast::error_code e, std::size_t) {
                         if (e) return self->fail("read", e);
                         const unsigned code = self->res_.result_int();
                         if (code == 200 || (code == 404 && !self->o_.read_mode.empty())) {
                           self->totals_.latencies_ms.push_back(
                               std::chrono::duration<double, std::milli>(Clock::now() -
                                                                         self->started_)
                                   .count());
                         } else {
                           self->totals_.errors++;
                         }
                         self->next();
                       });
    });
  }
  void fail(const char* what, beast::error_code ec) {
    totals_.errors++;
    std::fprintf(stderr, "client %d: %s: %s\n", id_, what, ec.message().c_str());
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  const Options& o_;
  int id_;
  Totals& totals_;
  std::string value_;
  std::uint64_t seq_ = 0;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Clock::time_point started_;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--endpoint") {
      const std::string hp = value.substr(value.find("://") + 3);
      o.host = hp.substr(0, hp.rfind(':'));
      o.port = hp.substr(hp.rfind(':') + 1);
    } else if (flag == "--cacert") o.cacert = value;
    else if (flag == "--cert") o.cert = value;
    else if (flag == "--key") o.key = value;
    else if (flag == "--clients") o.clients = std::atoi(value.c_str());
    else if (flag == "--seconds") o.seconds = std::atoi(value.c_str());
    else if (flag == "--value-bytes") o.value_bytes = std::atoi(value.c_str());
    else if (flag == "--read") o.read_mode = value;
    else {
      std::fprintf(stderr, "admin_load: unknown flag %s\n", flag.c_str());
      return false;
    }
  }
  if (o.port.empty() || o.cacert.empty() || o.clients < 1 || o.clients > 1024 || o.seconds < 1 ||
      o.seconds > 3600 || o.value_bytes < 1 || o.value_bytes > 65536 ||
      !(o.read_mode.empty() || o.read_mode == "linearizable" || o.read_mode == "lease" ||
        o.read_mode == "serializable")) {
    std::fprintf(stderr, "admin_load: need --endpoint --cacert --cert --key; --clients 1..1024, "
                         "--seconds 1..3600, --value-bytes 1..65536, --read linearizable, "
                         "lease or serializable\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  auto ctx = anya::transport::tls::make_context({o.cacert, o.cert, o.key},
                                                anya::transport::tls::Side::client);
  if (!ctx) {
    std::fprintf(stderr, "admin_load: %s\n", ctx.status().message().c_str());
    return 2;
  }
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(o.host, o.port);
  Totals totals;
  totals.end = Clock::now() + std::chrono::seconds(o.seconds);
  const auto begin = Clock::now();
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < o.clients; i++) {
    clients.push_back(std::make_shared<Client>(io, **ctx, o, i, totals));
    clients.back()->start(endpoints);
  }
  io.run();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - begin).count();
  const std::size_t n = totals.latencies_ms.size();
  const char* what = o.read_mode.empty() ? "writes" : "reads";
  std::printf("clients=%d %s=%zu errors=%llu seconds=%.1f %s_per_s=%.0f p50_ms=%.2f "
              "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
              o.clients, what, n, static_cast<unsigned long long>(totals.errors), elapsed_s, what,
              static_cast<double>(n) / elapsed_s, percentile(totals.latencies_ms, 0.5),
              percentile(totals.latencies_ms, 0.9), percentile(totals.latencies_ms, 0.99),
              percentile(totals.latencies_ms, 1.0));
  return totals.errors == 0 ? 0 : 1;
}
