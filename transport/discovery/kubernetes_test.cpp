// Kubernetes discovery against a local TLS fixture standing in for the API server (Beast on
// 127.0.0.1, a certificate from a test CA with IP SAN 127.0.0.1), serving the real JSON shapes
// of discovery.k8s.io/v1: an EndpointSliceList, watch events (ADDED, MODIFIED, DELETED,
// BOOKMARK, ERROR 410), Status bodies for 401, 403, 404, 410 and 500, a body that is not JSON,
// and a request it never answers. The fixture serves one connection at a time on its own
// thread and stops when the test ends; every wait is bounded.
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "engine/discovery/discovered_peers.hpp"
#include "transport/discovery/kubernetes_method.hpp"
#include "transport/tls/certs.hpp"

namespace anya::transport::discovery {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using engine::discovery::MethodReport;
using Clock = std::chrono::steady_clock;
using SslStream = asio::ssl::stream<tcp::socket>;

// One connection of the fixture, as a handler sees it.
class Conn {
 public:
  Conn(SslStream& s, const std::atomic<bool>& stop) : s_(s), stop_(stop) {}
  void respond(int status, const std::string& body) {
    write("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n"
          "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
          body);
  }
  void begin_stream() {
    write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
          "\r\n");
  }
  void line(const std::string& json) {
    const std::string data = json + "\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    write(size + data + "\r\n");
  }
  void end_stream() { write("0\r\n\r\n"); }
  // Says nothing until the test ends or `limit` passes (the client gives up first).
  void hang(std::chrono::milliseconds limit) {
    const auto until = Clock::now() + limit;
    while (!stop_ && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  void pause(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

 private:
  void write(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(s_, asio::buffer(bytes), ec);
  }
  SslStream& s_;
  const std::atomic<bool>& stop_;
};

struct Seen {
  std::string target;
  std::string authorization;
};

class ApiFixture {
 public:
  // Called for each request with its number (0, 1, ...).
  using Handler = std::function<void(int n, const Seen& request, Conn& conn)>;

  explicit ApiFixture(Handler handler)
      : handler_(std::move(handler)),
        dir_(fs::temp_directory_path() / ("anya-k8s-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter_++))) {
    fs::create_directories(dir_);
    Result<tls::KeyPair> ca = tls::generate_ca("test kubernetes CA", 1);
    EXPECT_TRUE(ca.is_ok());
    Result<tls::KeyPair> leaf = tls::issue(*ca, tls::Identity::node(99), {"localhost"},
                                           {"127.0.0.1"}, 1);
    EXPECT_TRUE(leaf.is_ok());
    std::ofstream(dir_ / "ca.crt") << ca->cert_pem;
    set_token("token-one");
    ssl_.use_certificate_chain(asio::buffer(leaf->cert_pem));
    ssl_.use_private_key(asio::buffer(leaf->key_pem), asio::ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    acceptor_.non_blocking(true);
    thread_ = std::thread([this] { serve(); });
  }
  ~ApiFixture() {
    stop_ = true;
    thread_.join();
    fs::remove_all(dir_);
  }

  void set_token(const std::string& token) { std::ofstream(dir_ / "token") << token << "\n"; }
  KubernetesOptions options(bool watch, std::uint64_t interval_ms, std::uint64_t timeout_ms) {
    KubernetesOptions o;
    o.server = {"127.0.0.1", std::to_string(acceptor_.local_endpoint().port()), dir_ / "ca.crt",
                dir_ / "token"};
    o.namespace_name = "bitcoin";
    o.service = "anya-ha";
    o.port_name = "peer";
    o.watch = watch;
    o.interval_ms = interval_ms;
    o.timeout_ms = timeout_ms;
    return o;
  }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  void serve() {
    for (int n = 0; !stop_;) {
      boost::system::error_code ec;
      tcp::socket socket = acceptor_.accept(ec);
      if (ec) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      socket.non_blocking(false);
      SslStream stream(std::move(socket), ssl_);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (ec) continue;
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) continue;
      Seen s{std::string(req.target()), std::string(req[http::field::authorization])};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.push_back(s);
      }
      Conn conn(stream, stop_);
      handler_(n++, s, conn);
      stream.next_layer().close(ec);
    }
  }

  static inline int counter_ = 0;
  Handler handler_;
  fs::path dir_;
  asio::io_context io_;
  asio::ssl::context ssl_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

// The API's shapes (kubectl get endpointslices -o json, trimmed to what matters).
std::string endpoint(const std::string& pod, const std::string& ip, bool ready,
                     bool hostname = true) {
  return R"({"addresses":[")" + ip + R"("],"conditions":{"ready":)" +
         (ready ? "true" : "false") + R"(,"serving":true,"terminating":false},)" +
         (hostname ? R"("hostname":")" + pod + R"(",)" : "") +
         R"("targetRef":{"kind":"Pod","namespace":"bitcoin","name":")" + pod +
         R"(","uid":"0b4e2f2c"},"nodeName":"worker-1","zone":"a"})";
}
std::string slice(const std::string& name, const std::string& rv,
                  const std::vector<std::string>& endpoints) {
  std::string list;
  for (const std::string& e : endpoints) list += (list.empty() ? "" : ",") + e;
  return R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":")" +
         name + R"(","namespace":"bitcoin","resourceVersion":")" + rv +
         R"(","labels":{"kubernetes.io/service-name":"anya-ha"}},"addressType":"IPv4",)"
         R"("endpoints":[)" + list + R"(],"ports":[{"name":"peer","protocol":"TCP","port":7100},)"
         R"({"name":"admin","protocol":"TCP","port":7200}]})";
}
std::string slice_list(const std::string& rv, const std::vector<std::string>& slices) {
  std::string items;
  for (const std::string& s : slices) items += (items.empty() ? "" : ",") + s;
  return R"({"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1",)"
         R"("metadata":{"resourceVersion":")" + rv + R"("},"items":[)" + items + "]}";
}
std::string status_body(int code, const std::string& reason, const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" +
         message + R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}
std::string event(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":)" + object + "}";
}

struct Harness {
  asio::io_context io;
  std::vector<MethodReport> reports;
  engine::discovery::DiscoveredPeers view{{"kubernetes"}};
  std::unique_ptr<Method> method;

  explicit Harness(KubernetesOptions o) {
    method = make_kubernetes_method(io, std::move(o), Logger());
    EXPECT_TRUE(method->start([this](MethodReport r) {
      (void)view.apply(r, steady_now_ms());
      reports.push_back(std::move(r));
    }));
  }
  ~Harness() {
    method->stop();
    io.run_for(std::chrono::milliseconds(20));
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      io.run_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  bool reports_at_least(std::size_t n) {
    return run_until([&] { return reports.size() >= n; }, std::chrono::seconds(20));
  }
};

TEST(KubernetesDiscovery, PollProposesReadyEndpointsWithTheRotatingToken) {
  ApiFixture api([](int, const Seen&, Conn& c) {
    c.respond(200, slice_list("500", {slice("anya-ha-x1", "499", {
                                           endpoint("anya-0", "10.1.0.10", true),
                                           endpoint("anya-1", "10.1.0.11", true, false),
                                           endpoint("anya-2", "10.1.0.12", false)})}));
  });
  Harness h(api.options(false, 200, 2000));
  ASSERT_TRUE(h.reports_at_least(1));
  const MethodReport& r = h.reports[0];
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.peers.size(), 2u) << "anya-2 is not ready";
  EXPECT_EQ(r.peers[0].id, 1u) << "anya-0: ordinal 0 + offset 1";
  EXPECT_EQ(r.peers[0].address, "10.1.0.10:7100") << "the port named peer";
  EXPECT_EQ(r.peers[1].id, 2u) << "no hostname: targetRef.name";
  const Seen first = api.seen().at(0);
  EXPECT_EQ(first.target, "/apis/discovery.k8s.io/v1/namespaces/bitcoin/endpointslices"
                          "?labelSelector=kubernetes.io%2Fservice-name%3Danya-ha");
  EXPECT_EQ(first.authorization, "Bearer token-one");
  api.set_token("token-two");  // kubelet rotated it
  ASSERT_TRUE(h.run_until([&] { return api.seen().back().authorization == "Bearer token-two"; },
                          std::chrono::seconds(10)));
}

TEST(KubernetesDiscovery, EachApiErrorIsReportedAndKeepsWhatWasKnown) {
  ApiFixture api([](int n, const Seen&, Conn& c) {
    switch (n) {
      case 0:
        return c.respond(200, slice_list("1", {slice("s", "1", {
                                                   endpoint("anya-4", "10.1.0.14", true)})}));
      case 1: return c.respond(401, status_body(401, "Unauthorized", "Unauthorized"));
      case 2:
        return c.respond(403, status_body(403, "Forbidden",
                                          "endpointslices.discovery.k8s.io is forbidden: User "
                                          "\\\"system:serviceaccount:bitcoin:default\\\" cannot "
                                          "list resource"));
      case 3: return c.respond(404, status_body(404, "NotFound", "the server could not find "
                                                                 "the requested resource"));
      case 4: return c.respond(500, status_body(500, "InternalError", "etcdserver: timeout"));
      case 5: return c.respond(200, "{\"kind\":\"EndpointSliceList\",\"items\":[");
      case 6: return c.respond(410, status_body(410, "Expired", "too old"));
      default:
        return c.respond(200, slice_list("2", {slice("s", "2", {
                                                   endpoint("anya-4", "10.1.0.44", true)})}));
    }
  });
  Harness h(api.options(false, 100, 2000));
  ASSERT_TRUE(h.reports_at_least(8));
  const std::vector<std::string> expected = {"", "unauthorized", "forbidden", "not_found",
                                             "server_error", "bad_json", "gone", ""};
  for (std::size_t i = 0; i < expected.size(); i++) {
    EXPECT_EQ(h.reports[i].ok, expected[i].empty()) << i;
    EXPECT_EQ(h.reports[i].reason, expected[i]) << i << ": " << h.reports[i].error;
  }
  EXPECT_NE(h.reports[1].error.find("HTTP 401 from https://127.0.0.1:"), std::string::npos);
  EXPECT_NE(h.reports[1].error.find("token in"), std::string::npos) << h.reports[1].error;
  EXPECT_NE(h.reports[2].error.find("cannot list resource"), std::string::npos);
  EXPECT_NE(h.reports[2].error.find("needs list and watch"), std::string::npos);
  EXPECT_NE(h.reports[5].error.find("not JSON"), std::string::npos) << h.reports[5].error;
  // Throughout the failures, node 5 stayed where it was last seen; then it moved.
  EXPECT_EQ(h.view.status("kubernetes")->failures, 6u);
  EXPECT_EQ(h.view.peers().at(5).address, "10.1.0.44:7100");
}

TEST(KubernetesDiscovery, AServerThatNeverAnswersIsATimeout) {
  ApiFixture api([](int, const Seen&, Conn& c) { c.hang(std::chrono::seconds(30)); });
  Harness h(api.options(false, 100, 300));
  const auto started = Clock::now();
  ASSERT_TRUE(h.reports_at_least(1));
  EXPECT_FALSE(h.reports[0].ok);
  EXPECT_EQ(h.reports[0].reason, "timeout");
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
}

TEST(KubernetesDiscovery, WatchFollowsEventsAndRelistsWhenTheVersionIsGone) {
  ApiFixture api([](int n, const Seen& req, Conn& c) {
    const bool watch = req.target.find("watch=true") != std::string::npos;
    if (!watch) {
      const std::string rv = n == 0 ? "100" : "300";
      const std::string ip = n == 0 ? "10.1.0.10" : "10.1.0.30";
      return c.respond(200, slice_list(rv, {slice("s1", rv, {endpoint("anya-0", ip, true)})}));
    }
    if (req.target.find("resourceVersion=100") != std::string::npos) {
      c.begin_stream();
      c.line(event("ADDED", slice("s2", "101", {endpoint("anya-1", "10.1.0.11", true)})));
      c.pause(30);
      c.line(event("MODIFIED", slice("s1", "102", {endpoint("anya-0", "10.1.0.20", true)})));
      c.pause(30);
      c.line(event("BOOKMARK", R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",)"
                               R"("metadata":{"resourceVersion":"150"}})"));
      c.pause(30);
      c.line(event("DELETED", slice("s2", "151", {})));
      c.pause(30);
      c.line(event("ERROR", status_body(410, "Expired", "too old resource version: 100 (151)")));
      return c.pause(200);
    }
    // The relisted version: an HTTP 410 this time, then (after a relist) a quiet watch.
    if (n < 5) return c.respond(410, status_body(410, "Expired", "too old resource version"));
    c.begin_stream();
    c.hang(std::chrono::seconds(30));
  });
  Harness h(api.options(true, 10'000, 2000));
  // list, ADDED, MODIFIED, DELETED, relist after ERROR 410, relist after HTTP 410.
  ASSERT_TRUE(h.reports_at_least(6));
  for (const MethodReport& r : h.reports) EXPECT_TRUE(r.ok) << r.reason << ": " << r.error;
  EXPECT_EQ(h.reports[1].peers.size(), 2u) << "ADDED anya-1";
  EXPECT_EQ(h.reports[2].peers.size(), 2u);
  EXPECT_EQ(h.view.last_known(1), "10.1.0.30:7100") << "followed through MODIFIED and relist";
  EXPECT_EQ(h.reports[3].peers.size(), 1u) << "DELETED s2";
  const std::vector<Seen> seen = api.seen();
  ASSERT_GE(seen.size(), 5u);
  EXPECT_NE(seen[1].target.find("&watch=true&allowWatchBookmarks=true&resourceVersion=100"),
            std::string::npos) << seen[1].target;
  EXPECT_EQ(seen[2].target.find("watch=true"), std::string::npos) << "relisted after ERROR 410";
  EXPECT_NE(seen[3].target.find("resourceVersion=300"), std::string::npos);
  EXPECT_EQ(seen[4].target.find("watch=true"), std::string::npos) << "relisted after HTTP 410";
}

TEST(KubernetesDiscovery, OptionsComeFromThePodsEnvironment) {
  KubernetesDiscoveryConfig c;
  c.service = "anya-ha";
  c.namespace_name = "bitcoin";
  auto env = [](const char* name) -> const char* {
    if (std::string_view(name) == "KUBERNETES_SERVICE_HOST") return "10.96.0.1";
    if (std::string_view(name) == "KUBERNETES_SERVICE_PORT") return "443";
    return nullptr;
  };
  Result<KubernetesOptions> o = kubernetes_options(c, env);
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->server.url(), "https://10.96.0.1:443");
  Result<KubernetesOptions> none = kubernetes_options(c, [](const char*) -> const char* {
    return nullptr;
  });
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("discovery.kubernetes.api_server: not set"),
            std::string::npos);
  c.namespace_name.clear();
  c.token_file = "/nonexistent/token";
  EXPECT_NE(kubernetes_options(c, env).status().message().find("discovery.kubernetes.namespace"),
            std::string::npos);
}

}  // namespace
}  // namespace anya::transport::discovery
