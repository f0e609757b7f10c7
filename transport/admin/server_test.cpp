// Tests for the admin HTTPS server (server.hpp) and client (client.hpp) over 127.0.0.1 with real
// certificates: a request's round trip, the TLS refusals (no client certificate, a certificate
// from another CA), the body limit, and replies the node gives later. The server runs on its own
// io_context thread, as on a node; every exchange has a deadline so a hang fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "transport/admin/client.hpp"
#include "transport/admin/router.hpp"
#include "transport/admin/server.hpp"
#include "transport/tls/certs.hpp"
#include "transport/tls/context.hpp"

namespace anya::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::HasSubstr;
using tcp = asio::ip::tcp;

constexpr std::uint64_t kClientTimeoutMs = 5000;
constexpr auto kReplyDelay = std::chrono::milliseconds(150);

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/anya-admin-test-XXXXXX";
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A node that answers status at once and kv writes after kReplyDelay on its io_context (as a
// write waits for its commit). Called on the server's thread; the test thread reads `calls`.
class FakeNode : public NodeApi {
 public:
  explicit FakeNode(asio::io_context& io) : io_(io) {}

  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

  StatusView status() override {
    record("status");
    StatusView s;
    s.node_id = 7;
    s.cluster = "test-cluster";
    s.role = "leader";
    s.leader = 7;
    s.quorum = true;
    s.ready = true;
    s.members = {MemberView{7, "127.0.0.1:1", true, true, true, 0, 3}};
    return s;
  }
  bool alive() override { return true; }
  std::string metrics_text() override { return "anya_up 1\n"; }
  void kv_get(const std::string& key, std::optional<engine::ReadMode>,
              Reply<KvEntryView> reply) override {
    record("kv_get " + key);
    reply(KvEntryView{key, "value of " + key, 1, 2, 1});
  }
  std::vector<KvEntryView> kv_scan(const std::string&, std::size_t) override { return {}; }
  void kv_write(KvWrite write, Reply<KvWriteResult> reply) override {
    record("kv_write " + write.key + "=" + write.value);
    auto timer = std::make_shared<asio::steady_timer>(io_, kReplyDelay);
    timer->async_wait([timer, reply = std::move(reply)](boost::system::error_code) {
      reply(KvWriteResult{99});
    });
  }
  void record_write(engine::Command, std::optional<ClientRef>,
                    Reply<KvWriteResult> r) override {
    refuse(r);
  }
  void members_add(engine::NodeId, std::string, bool, Reply<Empty> r) override { refuse(r); }
  void members_remove(engine::NodeId, Reply<Empty> r) override { refuse(r); }
  void config_get(Reply<ConfigView> r) override { refuse(r); }
  void config_put(std::string, std::optional<std::uint64_t>, Reply<ConfigView> r) override {
    refuse(r);
  }
  void config_rollback(std::uint64_t, std::optional<std::uint64_t>,
                       Reply<ConfigView> r) override {
    refuse(r);
  }
  void config_history(Reply<std::vector<ConfigView>> r) override { refuse(r); }
  void leader_transfer(std::optional<engine::NodeId>, Reply<engine::NodeId> r) override {
    refuse(r);
  }
  void lease(Reply<LeaseView> r) override { refuse(r); }

 private:
  void record(std::string call) {
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_back(std::move(call));
  }
  template <typename T>
  void refuse(const Reply<T>& reply) {
    record("unexpected");
    reply(ApiError{Status(Errc::unsupported, "not used by these tests")});
  }

  asio::io_context& io_;
  mutable std::mutex mutex_;
  std::vector<std::string> calls_;
};

// Log lines, captured from the server's thread.
class CaptureSink : public LogSink {
 public:
  void write(std::string_view line) override {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.emplace_back(line);
  }
  std::string all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

tls::KeyPair must(Result<tls::KeyPair> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

// A CA, a certificate for node 7 (the server) and one for client "alice" in a temp dir; an
// AdminServer for them on 127.0.0.1:0 whose io_context runs on a background thread.
class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = must(tls::generate_ca("admin test CA", 2));
    write_pair("ca", ca_);
    write_pair("node", must(tls::issue(ca_, tls::Identity::node(7), {"localhost"},
                                       {"127.0.0.1"}, 2)));
    write_pair("alice", must(tls::issue(ca_, tls::Identity::client("alice"), {}, {}, 2)));
    auto server_tls = tls::make_context(files("node"), tls::Side::server);
    ASSERT_TRUE(server_tls.is_ok()) << server_tls.status().to_string();
    AdminServerOptions options;
    options.tls = *server_tls;
    options.handshake_timeout_ms = 2000;
    options.idle_timeout_ms = 2000;
    tune(options);
    server_ = std::make_unique<AdminServer>(io_, node_, options,
                                            Logger(log_, LogLevel::debug, "admin-test"));
    ASSERT_TRUE(server_->start().is_ok());
    ASSERT_NE(server_->port(), 0);
    endpoint_ = "https://127.0.0.1:" + std::to_string(server_->port());
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      std::promise<void> stopped;
      asio::post(io_, [&] {
        server_->stop();
        stopped.set_value();
      });
      EXPECT_EQ(stopped.get_future().wait_for(std::chrono::seconds(5)),
                std::future_status::ready);
      work_.reset();
      io_.stop();  // pending timers of deferred replies are abandoned
      thread_.join();
    }
    server_.reset();
  }

  // Changes to the options above, for a fixture that needs others.
  virtual void tune(AdminServerOptions&) {}

  // Runs `fn` on the server's thread (the server is not thread-safe) and returns its result.
  template <typename Fn>
  auto on_server(Fn fn) {
    std::promise<decltype(fn())> result;
    asio::post(io_, [&] { result.set_value(fn()); });
    auto future = result.get_future();
    ANYA_ASSERT(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return future.get();
  }
  std::uint64_t refusals(const std::string& reason) {
    return on_server([&] { return server_->refusals().at(reason); });
  }

  void write_pair(const std::string& name, const tls::KeyPair& pair) {
    const Status s = tls::write_pem_files(dir_.path() / (name + ".crt"),
                                          dir_.path() / (name + ".key"), pair);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  tls::TlsFiles files(const std::string& name) const {
    return {dir_.path() / "ca.crt", dir_.path() / (name + ".crt"),
            dir_.path() / (name + ".key")};
  }
  AdminClientOptions client(const std::string& name) const {
    tls::TlsFiles f = files(name);
    return AdminClientOptions{f.ca_cert, f.cert, f.key, kClientTimeoutMs};
  }

  TempDir dir_;
  tls::KeyPair ca_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  FakeNode node_{io_};
  std::shared_ptr<CaptureSink> log_ = std::make_shared<CaptureSink>();
  std::unique_ptr<AdminServer> server_;
  std::string endpoint_;
  std::thread thread_;
};

json::value parse_json(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

// One HTTP exchange over TLS with a client context the test builds itself (what admin_request
// cannot do: no certificate at all). The reply's status, or the error that ended the exchange.
struct RawOutcome {
  int status = 0;
  std::string error;
};

RawOutcome raw_request(asio::ssl::context& ctx, std::uint16_t port, const std::string& target) {
  asio::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  RawOutcome out;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  beast::get_lowest_layer(stream).async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code e) {
        if (e) return void(out.error = "connect: " + e.message());
        stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e2) {
          if (e2) return void(out.error = "handshake: " + e2.message());
          auto req = std::make_shared<http::request<http::string_body>>(http::verb::get,
                                                                        target, 11);
          req->set(http::field::host, "127.0.0.1");
          http::async_write(stream, *req, [&, req](beast::error_code e3, std::size_t) {
            if (e3) return void(out.error = "write: " + e3.message());
            auto res = std::make_shared<http::response<http::string_body>>();
            auto buffer = std::make_shared<beast::flat_buffer>();
            http::async_read(stream, *buffer, *res,
                             [&, res, buffer](beast::error_code e4, std::size_t) {
                               if (e4) return void(out.error = "read: " + e4.message());
                               out.status = static_cast<int>(res->result_int());
                             });
          });
        });
      });
  io.run_for(std::chrono::seconds(10));
  return out;
}

// ---------------------------------------------------------------- round trips

TEST_F(AdminServerTest, StatusRoundTrip) {
  auto reply = admin_request(client("alice"), endpoint_, "GET", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->content_type, "application/json");
  const json::value v = parse_json(reply->body);
  EXPECT_EQ(v.at("node_id"), 7);
  EXPECT_EQ(v.at("cluster_id"), "test-cluster");
  EXPECT_EQ(v.at("members").as_array().size(), 1u);
  EXPECT_THAT(node_.calls(), ::testing::ElementsAre("status"));
}

TEST_F(AdminServerTest, KeysAndErrorsCrossTheWireIntact) {
  auto reply = admin_request(client("alice"), endpoint_, "GET", "/v1/kv/a%2Fb");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(parse_json(reply->body).at("value"), "value of a/b");

  reply = admin_request(client("alice"), endpoint_, "GET", "/v1/nothing");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 404);
  EXPECT_EQ(parse_json(reply->body).at("error"), "not_found");

  reply = admin_request(client("alice"), endpoint_, "DELETE", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 405);
  EXPECT_EQ(reply->allow, "GET");
  EXPECT_EQ(parse_json(reply->body).at("error"), "method_not_allowed");

  // HEAD: GET's status and headers, no body (which would break the next response's framing).
  reply = admin_request(client("alice"), endpoint_, "HEAD", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->content_type, "application/json");
  EXPECT_EQ(reply->body, "");
  reply = admin_request(client("alice"), endpoint_, "HEAD", "/v1/leader/transfer");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 405);
  EXPECT_EQ(reply->allow, "POST");
  EXPECT_EQ(reply->body, "");

  reply = admin_request(client("alice"), endpoint_, "GET", "/metrics");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_THAT(reply->content_type, ::testing::StartsWith("text/plain"));
  EXPECT_EQ(reply->body, "anya_up 1\n");
  EXPECT_THAT(node_.calls(), ::testing::ElementsAre("kv_get a/b", "status"));
}

TEST_F(AdminServerTest, ANodeCertificateIsAlsoAnAdminClient) {
  auto reply = admin_request(client("node"), endpoint_, "GET", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
}

// ---------------------------------------------------------------- deferred replies

TEST_F(AdminServerTest, AReplyTheNodeGivesLaterStillArrives) {
  const auto start = std::chrono::steady_clock::now();
  auto reply = admin_request(client("alice"), endpoint_, "PUT", "/v1/kv/k", R"({"value": "v"})");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(parse_json(reply->body).at("revision"), 99);
  EXPECT_GE(elapsed, kReplyDelay) << "answered before the node did";
  EXPECT_THAT(node_.calls(), ::testing::ElementsAre("kv_write k=v"));
}

TEST_F(AdminServerTest, ConcurrentDeferredRepliesEachReachTheirClient) {
  std::vector<std::future<Result<HttpReply>>> replies;
  for (int i = 0; i < 4; i++) {
    replies.push_back(std::async(std::launch::async, [this, i] {
      return admin_request(client("alice"), endpoint_, "PUT", "/v1/kv/k" + std::to_string(i),
                           R"({"value": "v"})");
    }));
  }
  for (auto& f : replies) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    auto reply = f.get();
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    EXPECT_EQ(reply->status, 200);
  }
  EXPECT_EQ(node_.calls().size(), 4u);
}

TEST_F(AdminServerTest, AClientThatLeavesBeforeTheReplyDoesNotHurtTheServer) {
  {
    // Send a write and close at once; the node answers after the socket is gone.
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file((dir_.path() / "ca.crt").string());
    ctx.use_certificate_chain_file((dir_.path() / "alice.crt").string());
    ctx.use_private_key_file((dir_.path() / "alice.key").string(), asio::ssl::context::pem);
    asio::io_context io;
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    stream.handshake(asio::ssl::stream_base::client);
    http::request<http::string_body> req{http::verb::put, "/v1/kv/gone", 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = R"({"value": "v"})";
    req.prepare_payload();
    http::write(stream, req);
  }  // closed without reading
  std::this_thread::sleep_for(kReplyDelay * 2);
  auto reply = admin_request(client("alice"), endpoint_, "GET", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_THAT(node_.calls(), ::testing::ElementsAre("kv_write gone=v", "status"));
}

// ---------------------------------------------------------------- refusals

TEST_F(AdminServerTest, AClientWithoutACertificateIsRefused) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file((dir_.path() / "ca.crt").string());
  ctx.set_verify_mode(asio::ssl::verify_peer);
  const RawOutcome out = raw_request(ctx, server_->port(), "/v1/status");
  EXPECT_EQ(out.status, 0) << "a client without a certificate got an HTTP answer";
  EXPECT_FALSE(out.error.empty());
  EXPECT_THAT(node_.calls(), ::testing::IsEmpty());
  // The server's log says why (the line is written on the server's thread; give it a moment).
  for (int i = 0; i < 50 && log_->all().find("refused admin connection") == std::string::npos;
       i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(log_->all(), HasSubstr("refused admin connection"));
}

TEST_F(AdminServerTest, AClientCertificateFromAnotherCaIsRefused) {
  // The client trusts both CAs (so it accepts the server) but its own certificate comes from
  // the other one, which the server does not trust.
  const tls::KeyPair other_ca = must(tls::generate_ca("other CA", 2));
  write_pair("other-ca", other_ca);
  write_pair("mallory", must(tls::issue(other_ca, tls::Identity::client("mallory"), {}, {}, 2)));
  {
    std::ofstream bundle(dir_.path() / "both-cas.crt");
    bundle << ca_.cert_pem << other_ca.cert_pem;
  }
  AdminClientOptions options{dir_.path() / "both-cas.crt", dir_.path() / "mallory.crt",
                             dir_.path() / "mallory.key", kClientTimeoutMs};
  auto reply = admin_request(options, endpoint_, "GET", "/v1/status");
  ASSERT_FALSE(reply.is_ok()) << "got HTTP " << reply->status;
  EXPECT_EQ(reply.status().code(), Errc::io_error) << reply.status().to_string();
  EXPECT_THAT(node_.calls(), ::testing::IsEmpty());

  // The same request with the right certificate goes through: the refusal was the certificate.
  reply = admin_request(client("alice"), endpoint_, "GET", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
}

TEST_F(AdminServerTest, ABodyOverOneMebibyteGets413) {
  const std::string body(AdminLimits::max_body_bytes + 1, ' ');
  auto reply = admin_request(client("alice"), endpoint_, "PUT", "/v1/config", body);
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 413);
  const json::value v = parse_json(reply->body);
  EXPECT_EQ(v.at("error"), "invalid_argument");
  EXPECT_THAT(std::string(v.at("message").as_string()), HasSubstr("1 MiB"));
  EXPECT_THAT(node_.calls(), ::testing::IsEmpty());
}

TEST_F(AdminServerTest, ABodyAtOneMebibyteIsRead) {
  std::string body = R"({"value": "v"})";
  body.resize(AdminLimits::max_body_bytes, ' ');
  auto reply = admin_request(client("alice"), endpoint_, "PUT", "/v1/kv/big", body);
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_THAT(node_.calls(), ::testing::ElementsAre("kv_write big=v"));
}

// ---------------------------------------------------------------- connection floods

// Plain TCP connections (no TLS at all) to 127.0.0.1:`port`, then silence; held until destroyed.
// The kernel completes each connect; the server accepts them on its own thread.
class IdleFlood {
 public:
  IdleFlood(std::uint16_t port, int count) {
    const tcp::endpoint target(asio::ip::make_address("127.0.0.1"), port);
    for (int i = 0; i < count; i++) {
      tcp::socket socket(io_);
      beast::error_code ec;
      socket.connect(target, ec);
      if (!ec) sockets_.push_back(std::move(socket));
    }
  }
  int opened() const { return static_cast<int>(sockets_.size()); }
  // How many the server has closed (a read finds the end of the stream), without waiting.
  int closed_by_server() {
    int closed = 0;
    for (tcp::socket& socket : sockets_) {
      std::array<char, 16> byte{};
      beast::error_code ec;
      socket.non_blocking(true, ec);
      socket.read_some(asio::buffer(byte), ec);
      closed += ec == asio::error::eof || ec == asio::error::connection_reset;
    }
    return closed;
  }

 private:
  asio::io_context io_;
  std::vector<tcp::socket> sockets_;
};

// Polls `done` until it holds or `limit` passes: a slow machine waits longer, never fails.
bool eventually(const std::function<bool()>& done,
                std::chrono::seconds limit = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int lines_containing(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  int count = 0;
  for (std::string line; std::getline(in, line);) count += line.find(needle) != std::string::npos;
  return count;
}

// Deadlines long enough that the server still holds the flood while the test runs.
class AdminFloodTest : public AdminServerTest {
 protected:
  static constexpr int kFlood = 300;
  static constexpr int kPerSource = 16;
  void tune(AdminServerOptions& o) override {
    o.handshake_timeout_ms = 30'000;
    o.idle_timeout_ms = 30'000;
    o.max_unauthenticated_per_source = kPerSource;
  }
  std::size_t open_connections() {
    return on_server([&] { return server_->open_connections(); });
  }
  // A TLS connection as "alice", kept open across requests.
  struct Kept {
    asio::io_context io;
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  };
  void open(Kept& k) {
    k.ctx.load_verify_file((dir_.path() / "ca.crt").string());
    k.ctx.use_certificate_chain_file((dir_.path() / "alice.crt").string());
    k.ctx.use_private_key_file((dir_.path() / "alice.key").string(), asio::ssl::context::pem);
    k.stream.emplace(k.io, k.ctx);
    beast::get_lowest_layer(*k.stream).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    k.stream->handshake(asio::ssl::stream_base::client);
  }
  static unsigned get_status(Kept& k) {
    http::request<http::empty_body> req{http::verb::get, "/v1/status", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(*k.stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(*k.stream, buffer, res);
    return res.result_int();
  }
};

// The attack that once locked every client out: idle connections that held every slot.
TEST_F(AdminFloodTest, AClientIsAnsweredWhileThreeHundredIdleConnectionsAreHeld) {
  IdleFlood flood(server_->port(), kFlood);
  ASSERT_EQ(flood.opened(), kFlood);
  // All from 127.0.0.1: each past the per-source cap evicted the oldest.
  ASSERT_TRUE(eventually([&] {
    return refusals("evicted_unauthenticated") == kFlood - kPerSource;
  })) << refusals("evicted_unauthenticated");
  EXPECT_EQ(open_connections(), static_cast<std::size_t>(kPerSource));

  auto reply = admin_request(client("alice"), endpoint_, "GET", "/v1/status");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(refusals("evicted_unauthenticated"), kFlood - kPerSource + 1u)
      << "the client's connection should have taken an idle one's slot";
  EXPECT_EQ(refusals("refused_full"), 0u);
  EXPECT_EQ(flood.closed_by_server(), kFlood - kPerSource + 1);  // every one evicted
}

TEST_F(AdminFloodTest, EvictionsAreCountedAndLoggedOnceNotPerConnection) {
  IdleFlood flood(server_->port(), kPerSource + 40);
  ASSERT_TRUE(eventually([&] { return refusals("evicted_unauthenticated") == 40u; }))
      << refusals("evicted_unauthenticated");
  const std::string log = log_->all();
  EXPECT_EQ(lines_containing(log, "that had not finished its handshake"), 1) << log;
  EXPECT_THAT(log, HasSubstr("closed an admin connection from 127.0.0.1"));
  EXPECT_EQ(refusals("handshake_timeout"), 0u);
  EXPECT_EQ(open_connections(), static_cast<std::size_t>(kPerSource));
}

TEST_F(AdminFloodTest, AConnectionPastItsHandshakeIsNeverEvicted) {
  Kept kept;
  open(kept);
  ASSERT_EQ(get_status(kept), 200u);  // answered, so past its handshake on the server too
  IdleFlood flood(server_->port(), kFlood);
  ASSERT_TRUE(eventually([&] {
    return refusals("evicted_unauthenticated") == kFlood - kPerSource;
  })) << refusals("evicted_unauthenticated");
  EXPECT_EQ(get_status(kept), 200u);
  EXPECT_EQ(open_connections(), kPerSource + 1u);
}

TEST_F(AdminServerTest, SilentConnectionsAreClosedAtTheHandshakeDeadlineAndCounted) {
  IdleFlood flood(server_->port(), 3);  // the fixture gives them 2 s
  ASSERT_TRUE(eventually([&] { return refusals("handshake_timeout") == 3u; }))
      << refusals("handshake_timeout");
  EXPECT_EQ(on_server([&] { return server_->open_connections(); }), 0u);
  EXPECT_EQ(flood.closed_by_server(), 3);
  EXPECT_EQ(lines_containing(log_->all(), "that sent nothing within"), 1) << log_->all();
  EXPECT_EQ(refusals("evicted_unauthenticated"), 0u);
}

}  // namespace
}  // namespace anya::transport
