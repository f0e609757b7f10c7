// Every probe type against real local processes and servers on 127.0.0.1: programs run by the
// exec runner, a small Beast HTTP and HTTPS server (with a CA made here), listening and closed
// TCP ports, and the monitor that drives the engine's evaluator from them. Bounds are generous:
// a busy machine makes these slower, never wrong.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "transport/health/exec_runner.hpp"
#include "transport/health/health_monitor.hpp"
#include "transport/health/network_probes.hpp"
#include "transport/tls/certs.hpp"

namespace anya::transport {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// ---- a small HTTP(S) server on its own thread -----------------------------------------------

class TestServer;

template <class Stream>
struct Session : std::enable_shared_from_this<Session<Stream>> {
  Session(Stream s, TestServer& server);
  void start();
  void read();
  void write();

  Stream stream;
  TestServer& server;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response<http::string_body> response;
};

class TestServer {
 public:
  explicit TestServer(std::shared_ptr<ssl::context> tls = nullptr)
      : tls_(std::move(tls)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  std::atomic<unsigned> status{200};
  std::atomic<int> delay_ms{0};
  std::atomic<int> requests{0};
  std::shared_ptr<ssl::context> tls_;
  asio::io_context io_;

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;
      if (tls_) {
        std::make_shared<Session<ssl::stream<tcp::socket>>>(
            ssl::stream<tcp::socket>(std::move(socket), *tls_), *this)
            ->start();
      } else {
        std::make_shared<Session<tcp::socket>>(std::move(socket), *this)->start();
      }
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::thread thread_;
};

template <class Stream>
Session<Stream>::Session(Stream s, TestServer& srv)
    : stream(std::move(s)), server(srv), timer(srv.io_) {}

template <class Stream>
void Session<Stream>::start() {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    read();
  } else {
    stream.async_handshake(ssl::stream_base::server,
                           [self = this->shared_from_this()](const boost::system::error_code& ec) {
                             if (!ec) self->read();
                           });
  }
}

template <class Stream>
void Session<Stream>::read() {
  http::async_read(stream, buffer, request,
                   [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                     std::size_t) {
                     if (ec) return;
                     self->server.requests++;
                     self->timer.expires_after(std::chrono::milliseconds(self->server.delay_ms));
                     self->timer.async_wait(
                         [self](const boost::system::error_code&) { self->write(); });
                   });
}

template <class Stream>
void Session<Stream>::write() {
  response.result(server.status.load());
  if (server.status != 204) response.body() = "ok\n";  // a 204 has no body
  response.keep_alive(false);
  response.prepare_payload();
  http::async_write(stream, response,
                    [self = this->shared_from_this()](const boost::system::error_code&,
                                                      std::size_t) {
                      boost::system::error_code ignored;
                      beast::get_lowest_layer(self->stream).shutdown(tcp::socket::shutdown_both,
                                                                     ignored);
                    });
}

// A port nothing listens on: bound, then closed.
std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t port = a.local_endpoint().port();
  a.close();
  return port;
}

// A CA (written to DIR/NAME-ca.crt) and a server context for a certificate it signed.
struct TestCerts {
  std::filesystem::path ca_file;
  std::shared_ptr<ssl::context> server;
};

TestCerts make_certs(const std::string& name, const std::vector<std::string>& ips) {
  Result<tls::KeyPair> ca = tls::generate_ca(name + " CA", 1);
  EXPECT_TRUE(ca.is_ok()) << ca.status().message();
  Result<tls::KeyPair> leaf = tls::issue(*ca, tls::Identity::node(1), {"localhost"}, ips, 1);
  EXPECT_TRUE(leaf.is_ok()) << leaf.status().message();
  TestCerts out;
  out.ca_file = std::filesystem::path(::testing::TempDir()) / (name + "-ca.crt");
  std::ofstream(out.ca_file) << ca->cert_pem;
  out.server = std::make_shared<ssl::context>(ssl::context::tls_server);
  out.server->use_certificate_chain(asio::buffer(leaf->cert_pem));
  out.server->use_private_key(asio::buffer(leaf->key_pem), ssl::context::pem);
  return out;
}

// Runs one probe to its report on an io_context of its own.
ProbeResult run_probe(
    const std::function<std::shared_ptr<ProbeRun>(asio::io_context&, ProbeDone)>& start) {
  asio::io_context io;
  std::optional<ProbeResult> got;
  auto run = start(io, [&got](ProbeResult r) { got = std::move(r); });
  io.run_for(60s);
  EXPECT_TRUE(got.has_value()) << "the probe never reported";
  return got.value_or(ProbeResult{false, 0, "(no report)"});
}

ProbeResult http_probe(const std::string& url, std::uint32_t expect = 200,
                       const std::filesystem::path& ca_file = {},
                       std::uint64_t timeout_ms = 10'000) {
  Result<ProbeUrl> parsed = parse_probe_url(url);
  EXPECT_TRUE(parsed.is_ok()) << parsed.status().message();
  HttpProbeTarget target{*parsed, expect, nullptr};
  if (parsed->https) {
    Result<std::shared_ptr<ssl::context>> ctx = make_probe_tls_context(ca_file);
    EXPECT_TRUE(ctx.is_ok()) << ctx.status().message();
    target.tls = *ctx;
  }
  return run_probe([&](asio::io_context& io, ProbeDone done) {
    return start_http_probe(io, target, timeout_ms, std::move(done));
  });
}

std::string local(std::uint16_t port, const char* scheme = "http") {
  return std::string(scheme) + "://127.0.0.1:" + std::to_string(port) + "/health";
}

// ---- exec --------------------------------------------------------------------------------------

ExecOptions exec(std::vector<std::string> argv, std::uint64_t timeout_ms = 10'000) {
  ExecOptions o;
  o.argv = std::move(argv);
  o.timeout_ms = timeout_ms;
  return o;
}

TEST(ExecRunner, TrueSucceedsAndFalseFails) {
  Result<ExecOutcome> t = run_exec(exec({"true"}));
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_TRUE(t->succeeded());
  Result<ExecOutcome> f = run_exec(exec({"false"}));
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(f->succeeded());
  EXPECT_EQ(f->describe(exec({"false"})), "exited with status 1");
}

TEST(ExecRunner, AFailureQuotesTheFirstLineOfStderr) {
  const ExecOptions o = exec({"sh", "-c", "echo out; echo 'db locked' >&2; echo more >&2; exit 3"});
  Result<ExecOutcome> r = run_exec(o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->describe(o), "exited with status 3: db locked");
}

TEST(ExecRunner, AProgramThatCannotStartIsAnErrorNeverAnOutcome) {
  for (const std::string program : {"/nonexistent/anya-ha-check", "anya-ha-no-such-command"}) {
    Result<ExecOutcome> r = run_exec(exec({program}));
    ASSERT_FALSE(r.is_ok()) << program;
    EXPECT_EQ(r.status().message(), "cannot start " + program + ": No such file or directory");
  }
  const std::filesystem::path not_executable =
      std::filesystem::path(::testing::TempDir()) / "anya-not-executable";
  std::ofstream(not_executable) << "#!/bin/sh\nexit 0\n";
  std::filesystem::permissions(not_executable, std::filesystem::perms::owner_read);
  Result<ExecOutcome> r = run_exec(exec({not_executable.string()}));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(),
            "cannot start " + not_executable.string() + ": Permission denied");
}

TEST(ExecRunner, ATimeoutKillsTheWholeProcessGroup) {
  const SteadyClock::time_point start = SteadyClock::now();
  // The shell's child sleeps too: killing only the shell would leave it holding the pipe.
  const ExecOptions o = exec({"sh", "-c", "sleep 10 & sleep 10"}, 200);
  Result<ExecOutcome> r = run_exec(o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->end, ExecOutcome::End::timed_out);
  EXPECT_EQ(r->describe(o), "timed out after 200 ms; killed");
  EXPECT_LT(SteadyClock::now() - start, 8s) << "killed, not waited for";
}

TEST(ExecRunner, KilledBySignal) {
  Result<ExecOutcome> r = run_exec(exec({"sh", "-c", "kill -9 $$"}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->end, ExecOutcome::End::signaled);
  EXPECT_EQ(r->describe(exec({"sh"})), "killed by signal 9");
}

TEST(ExecRunner, TooMuchOutputKillsOrIsDrainedAsAsked) {
  ExecOptions o = exec({"sh", "-c", "head -c 1000000 /dev/zero"});
  o.max_stdout_bytes = 4096;
  Result<ExecOutcome> killed = run_exec(o);
  ASSERT_TRUE(killed.is_ok());
  EXPECT_EQ(killed->end, ExecOutcome::End::too_much_output);
  o.kill_on_too_much_output = false;
  Result<ExecOutcome> drained = run_exec(o);
  ASSERT_TRUE(drained.is_ok());
  EXPECT_TRUE(drained->succeeded()) << drained->describe(o);
  EXPECT_EQ(drained->stdout_text.size(), 4096u);
}

// ---- HTTP(S) and TCP ---------------------------------------------------------------------------

TEST(HttpProbe, PassesOnTheExpectedStatusOnly) {
  TestServer server;
  const ProbeResult ok = http_probe(local(server.port()));
  EXPECT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(server.requests.load(), 1);
  server.status = 503;
  const ProbeResult bad = http_probe(local(server.port()));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "HTTP 503 (expected 200)");
  server.status = 204;
  EXPECT_TRUE(http_probe(local(server.port()), 204).ok);
}

TEST(HttpProbe, AClosedPortFailsNamingTheStep) {
  const std::uint16_t port = closed_port();
  const ProbeResult r = http_probe(local(port));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "Connection refused while connecting to 127.0.0.1:" + std::to_string(port));
}

TEST(HttpProbe, ASlowServerTimesOut) {
  TestServer server;
  server.delay_ms = 5000;
  const SteadyClock::time_point start = SteadyClock::now();
  const ProbeResult r = http_probe(local(server.port()), 200, {}, 300);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "timed out after 300 ms while reading the response from 127.0.0.1:" +
                         std::to_string(server.port()));
  EXPECT_LT(SteadyClock::now() - start, 4s);
  EXPECT_GE(r.latency_ms, 300u);
}

TEST(HttpsProbe, VerifiesTheServerAgainstTheConfiguredCa) {
  const TestCerts certs = make_certs("good", {"127.0.0.1"});
  TestServer server(certs.server);
  const ProbeResult ok = http_probe(local(server.port(), "https"), 200, certs.ca_file);
  EXPECT_TRUE(ok.ok) << ok.error;

  const TestCerts other = make_certs("other", {"127.0.0.1"});
  const ProbeResult wrong_ca = http_probe(local(server.port(), "https"), 200, other.ca_file);
  EXPECT_FALSE(wrong_ca.ok);
  EXPECT_NE(wrong_ca.error.find("TLS handshake with 127.0.0.1"), std::string::npos)
      << wrong_ca.error;
  EXPECT_NE(wrong_ca.error.find("certificate"), std::string::npos) << wrong_ca.error;
}

TEST(HttpsProbe, RefusesACertificateForAnotherAddress) {
  const TestCerts certs = make_certs("elsewhere", {"127.0.0.2"});
  TestServer server(certs.server);
  const ProbeResult r = http_probe(local(server.port(), "https"), 200, certs.ca_file);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("TLS handshake"), std::string::npos) << r.error;
  EXPECT_EQ(server.requests.load(), 0) << "no request reaches an unverified server";
}

TEST(HttpsProbe, APlainHttpServerFailsTheHandshake) {
  TestServer server;
  const TestCerts certs = make_certs("plain", {"127.0.0.1"});
  const ProbeResult r = http_probe(local(server.port(), "https"), 200, certs.ca_file, 5000);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("TLS handshake"), std::string::npos) << r.error;
}

TEST(HttpsProbe, AMissingCaFileIsNamed) {
  Result<std::shared_ptr<ssl::context>> ctx = make_probe_tls_context("/nonexistent/ca.crt");
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_EQ(ctx.status().message().rfind("/nonexistent/ca.crt: ", 0), 0u);
  EXPECT_TRUE(make_probe_tls_context({}).is_ok()) << "the system's CAs";
}

TEST(TcpProbe, ListeningPortPassesClosedPortFails) {
  TestServer server;
  const ProbeResult ok = run_probe([&](asio::io_context& io, ProbeDone done) {
    return start_tcp_probe(io, {"127.0.0.1", server.port()}, 10'000, std::move(done));
  });
  EXPECT_TRUE(ok.ok) << ok.error;
  const std::uint16_t port = closed_port();
  const ProbeResult bad = run_probe([&](asio::io_context& io, ProbeDone done) {
    return start_tcp_probe(io, {"127.0.0.1", port}, 10'000, std::move(done));
  });
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "Connection refused while connecting to 127.0.0.1:" +
                           std::to_string(port));
}

TEST(TcpProbe, CancelledRunNeverReports) {
  asio::io_context io;
  bool reported = false;
  TestServer server;
  auto run = start_tcp_probe(io, {"127.0.0.1", server.port()}, 10'000,
                             [&reported](ProbeResult) { reported = true; });
  run->cancel();
  io.run_for(2s);
  EXPECT_FALSE(reported);
}

// ---- the monitor -------------------------------------------------------------------------------

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        SteadyClock::now().time_since_epoch())
                                        .count());
}

HealthProbeConfig probe_config(std::string name, engine::health::ProbeKind kind) {
  HealthProbeConfig p;
  p.spec.name = std::move(name);
  p.spec.kind = kind;
  p.spec.interval_ms = 100;
  p.spec.timeout_ms = 80;
  p.spec.fall = 2;
  p.spec.rise = 1;
  return p;
}

// A monitor on an io_context the test drives, keeping every verdict it was told.
struct MonitorFixture {
  explicit MonitorFixture(HealthConfig config, HealthCheckLookup checks = nullptr) {
    HealthMonitorOptions o;
    o.config = std::move(config);
    o.data_dir = ::testing::TempDir();
    o.now_ms = steady_ms;
    o.checks = std::move(checks);
    EXPECT_TRUE(validate_health(o.config).is_ok()) << validate_health(o.config).message();
    monitor = std::make_unique<HealthMonitor>(
        io, std::move(o),
        [this](const engine::health::HealthUpdate& u, const engine::health::HealthVerdict& v) {
          for (const std::string& t : u.transitions) transitions.push_back(t);
          if (u.verdict_changed) verdicts.push_back(v.healthy);
        });
  }
  // Runs the io_context until `done` holds (or a generous bound passes).
  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
    const SteadyClock::time_point deadline = SteadyClock::now() + limit;
    while (!done() && SteadyClock::now() < deadline) {
      io.run_for(10ms);
      if (io.stopped()) io.restart();
    }
    return done();
  }
  bool healthy() const { return monitor->evaluator().verdict().healthy; }
  std::string explanation() const { return monitor->evaluator().verdict().explanation; }

  asio::io_context io;
  std::unique_ptr<HealthMonitor> monitor;
  std::vector<std::string> transitions;
  std::vector<bool> verdicts;
};

TEST(HealthMonitor, AnHttpProbeDrivesTheVerdictBothWays) {
  TestServer server;
  HealthConfig config;
  HealthProbeConfig web = probe_config("web", engine::health::ProbeKind::http);
  // Loopback answers in microseconds; a busy machine needs two slow replies in a row to
  // fail it spuriously (fall = 2), and that would only delay the waits below.
  web.spec.interval_ms = 300;
  web.spec.timeout_ms = 250;
  web.url = *parse_probe_url(local(server.port()));
  config.probes = {web};
  MonitorFixture f(config);
  EXPECT_FALSE(f.healthy()) << "unknown counts as failing";
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] { return f.healthy(); })) << f.explanation();

  server.status = 503;
  ASSERT_TRUE(f.run_until([&] { return !f.healthy(); })) << f.explanation();
  EXPECT_NE(f.explanation().find("unhealthy: probe web failing (2 consecutive failures: HTTP "
                                 "503 (expected 200)); 0 of 1 probes passing, rule all needs "
                                 "all 1"),
            std::string::npos)
      << f.explanation();
  server.status = 200;
  ASSERT_TRUE(f.run_until([&] { return f.healthy(); })) << f.explanation();
  ASSERT_GE(f.verdicts.size(), 3u);
  EXPECT_TRUE(f.verdicts.front());
  EXPECT_TRUE(f.verdicts.back());
  const engine::health::WindowStats w = f.monitor->evaluator().probe(0).window(steady_ms());
  EXPECT_GE(w.samples, 4u);
  EXPECT_GT(w.error_ratio, 0.0);
}

TEST(HealthMonitor, ExecProbesThatCannotRunFail) {
  HealthConfig config;
  HealthProbeConfig yes = probe_config("true", engine::health::ProbeKind::exec);
  yes.command = {"true"};
  yes.spec.interval_ms = 5100;
  yes.spec.timeout_ms = 5000;
  HealthProbeConfig missing = probe_config("missing", engine::health::ProbeKind::exec);
  missing.command = {"/nonexistent/anya-ha-check", "--quick"};
  config.probes = {yes, missing};
  config.aggregate = *engine::health::parse_aggregation("any", "aggregate");
  MonitorFixture f(config);
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] {
    return f.monitor->evaluator().probe(0).state() == engine::health::ProbeState::passing &&
           f.monitor->evaluator().probe(1).state() == engine::health::ProbeState::failing;
  }));
  EXPECT_TRUE(f.healthy()) << "any: the one that runs is enough";
  EXPECT_EQ(f.monitor->evaluator().probe(1).last_error(),
            "cannot start /nonexistent/anya-ha-check: No such file or directory");
  EXPECT_EQ(f.monitor->evaluator().verdict().summary.failing_probes, 0b10u);
}

TEST(HealthMonitor, AnExecProbeThatHangsIsKilledAndFails) {
  HealthConfig config;
  HealthProbeConfig slow = probe_config("slow", engine::health::ProbeKind::exec);
  slow.command = {"sleep", "10"};
  slow.spec.interval_ms = 400;
  slow.spec.timeout_ms = 150;
  slow.spec.fall = 1;
  config.probes = {slow};
  MonitorFixture f(config);
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] { return f.monitor->evaluator().probe(0).results() >= 1; }));
  EXPECT_FALSE(f.healthy());
  EXPECT_EQ(f.monitor->evaluator().probe(0).last_error(), "timed out after 150 ms; killed");
}

TEST(HealthMonitor, AHangingCallbackIsFailedByTheWatchdogAndNeverRunTwice) {
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<int> calls{0};
  HealthCheck check = [&]() -> Status {
    calls++;
    std::unique_lock lock(mutex);
    released_cv.wait(lock, [&] { return released; });
    return {};
  };
  HealthConfig config;
  HealthProbeConfig cb = probe_config("in-process", engine::health::ProbeKind::callback);
  cb.spec.interval_ms = 200;
  cb.spec.timeout_ms = 100;
  config.probes = {cb};
  MonitorFixture f(config, [&](const std::string& name) {
    return name == "in-process" ? check : HealthCheck{};
  });
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] { return f.monitor->evaluator().probe(0).results() >= 3; }));
  EXPECT_FALSE(f.healthy());
  EXPECT_EQ(calls.load(), 1) << "one run in flight per probe";
  const std::string& error = f.monitor->evaluator().probe(0).last_error();
  EXPECT_TRUE(error == "did not return within 100 ms" ||
              error.rfind("still running after ", 0) == 0)
      << error;
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  released_cv.notify_all();
  ASSERT_TRUE(f.run_until([&] { return f.healthy(); })) << f.explanation();
  EXPECT_GE(calls.load(), 2);
}

TEST(HealthMonitor, ACallbackThatFailsOrThrowsOrIsMissingFails) {
  HealthConfig config;
  for (const char* name : {"says-no", "throws", "unregistered"}) {
    HealthProbeConfig p = probe_config(name, engine::health::ProbeKind::callback);
    p.spec.interval_ms = 5100;
    p.spec.timeout_ms = 5000;
    config.probes.push_back(p);
  }
  config.aggregate = *engine::health::parse_aggregation("any", "aggregate");
  MonitorFixture f(config, [](const std::string& name) -> HealthCheck {
    if (name == "says-no") return [] { return Status(Errc::io_error, "signer locked"); };
    if (name == "throws") return []() -> Status { throw std::runtime_error("boom"); };
    return nullptr;
  });
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] {
    for (std::size_t i = 0; i < 3; i++) {
      if (f.monitor->evaluator().probe(i).results() == 0) return false;
    }
    return true;
  }));
  EXPECT_FALSE(f.healthy());
  EXPECT_EQ(f.monitor->evaluator().probe(0).last_error(), "signer locked");
  EXPECT_EQ(f.monitor->evaluator().probe(1).last_error(), "the check threw: boom");
  EXPECT_EQ(f.monitor->evaluator().probe(2).last_error(),
            "no check is registered for this callback probe");
}

TEST(HealthMonitor, ATcpProbeAndAResourceLimitTogether) {
  TestServer server;
  HealthConfig config;
  HealthProbeConfig db = probe_config("db", engine::health::ProbeKind::tcp);
  db.address = {"127.0.0.1", server.port()};
  db.spec.interval_ms = 5100;
  db.spec.timeout_ms = 5000;
  config.probes = {db};
  config.limits.min_disk_free_bytes = std::uint64_t{1} << 62;  // more than any disk has
  config.resource_fall = 1;
  config.resource_interval_ms = 100;
  MonitorFixture f(config);
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] {
    return f.monitor->evaluator().probe(0).state() == engine::health::ProbeState::passing &&
           !f.monitor->evaluator().exceeded().empty();
  }));
  EXPECT_FALSE(f.healthy()) << "an exceeded resource outweighs passing probes";
  EXPECT_NE(f.explanation().find(" below min_disk_free 4194304.0TiB"), std::string::npos)
      << f.explanation();
  EXPECT_NE(f.monitor->evaluator().verdict().summary.exceeded, 0);
  ASSERT_TRUE(f.monitor->evaluator().last_sample().has_value());
  EXPECT_TRUE(f.monitor->evaluator().last_sample()->open_fds.has_value());
}

TEST(HealthMonitor, StopEndsProbingAndDropsLateResults) {
  TestServer server;
  server.delay_ms = 300;
  HealthConfig config;
  HealthProbeConfig web = probe_config("web", engine::health::ProbeKind::http);
  web.url = *parse_probe_url(local(server.port()));
  web.spec.interval_ms = 2000;
  web.spec.timeout_ms = 1000;
  config.probes = {web};
  MonitorFixture f(config);
  ASSERT_TRUE(f.monitor->start().is_ok());
  ASSERT_TRUE(f.run_until([&] { return server.requests.load() >= 1; }));
  f.monitor->stop();
  f.run_until([] { return false; }, 1s);
  EXPECT_EQ(f.monitor->evaluator().probe(0).results(), 0u) << "the run in flight was cancelled";
  EXPECT_TRUE(f.transitions.empty());
}

}  // namespace
}  // namespace anya::transport
