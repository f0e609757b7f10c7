#include "transport/discovery/dns_srv_method.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include "engine/base/prng.hpp"
#include "engine/discovery/names.hpp"
#include "engine/discovery/srv_order.hpp"

namespace anya::transport::discovery {

namespace asio = boost::asio;
using engine::discovery::MethodReport;
using engine::discovery::Proposal;

std::uint64_t steady_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

namespace {

constexpr const char* kName = "dns_srv";
constexpr unsigned kMaxBackoffDoublings = 10;

// The reason a failed query gives the metrics.
std::string reason_of(const Status& s) {
  if (s.code() == Errc::malformed) return "malformed";
  if (s.message().rfind("timeout", 0) == 0) return "timeout";
  return "io";
}

std::string reason_of_rcode(std::uint8_t rcode) {
  switch (static_cast<dns::Rcode>(rcode)) {
    case dns::Rcode::nxdomain: return "nxdomain";
    case dns::Rcode::server_failure: return "servfail";
    case dns::Rcode::refused: return "refused";
    default: return "rcode";
  }
}

// One resolution: the SRV answer, then the A lookups it still needs.
struct Round {
  std::vector<dns::SrvRecord> srv;          // usable targets, in answer order
  std::map<std::string, dns::ARecord> a;    // by target name
  std::vector<std::string> skipped;         // why some records were left out
  std::size_t outstanding = 0;              // A lookups in flight
  // The first A lookup that failed outright (a timeout, SERVFAIL): the round fails with it.
  std::string failed_reason, failed_error;

  void fail(std::string reason, std::string error) {
    if (!failed_reason.empty()) return;
    failed_reason = std::move(reason);
    failed_error = std::move(error);
  }
};

class State : public std::enable_shared_from_this<State> {
 public:
  State(asio::io_context& io, DnsSrvOptions o, Logger log)
      : io_(io), options_(std::move(o)), log_(std::move(log)), timer_(io) {}

  void start(ReportFn report) {
    report_ = std::move(report);
    resolve();
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void resolve() {
    auto self = shared_from_this();
    dns::query(io_, options_.server, options_.name, dns::kTypeSrv, options_.timeout_ms,
               [self](Result<dns::Message> m) { self->on_srv(std::move(m)); });
  }

  void on_srv(Result<dns::Message> m) {
    if (stopped_) return;
    const std::string asked = options_.name + " (SRV, nameserver " +
                              options_.server.to_string() + ")";
    if (!m) return fail(reason_of(m.status()), m.status().message() + ": " + asked);
    if (m->rcode != 0) {
      return fail(reason_of_rcode(m->rcode), std::string(dns::rcode_name(m->rcode)) +
                                                 " for " + asked);
    }
    auto round = std::make_shared<Round>();
    for (const dns::SrvRecord& r : m->srv) {
      if (r.owner != dns::normalize_name(options_.name) || r.target.empty()) continue;
      if (Result<engine::NodeId> id = engine::discovery::node_id_from_srv_target(r.target); !id) {
        round->skipped.push_back(id.status().message());
        continue;
      }
      round->srv.push_back(r);
    }
    if (round->srv.empty()) {
      return fail("no_records", "no usable SRV record for " + asked +
                                    (round->skipped.empty() ? "" : ": " + round->skipped[0]));
    }
    for (const dns::ARecord& a : m->a) round->a.emplace(a.owner, a);
    std::vector<std::string> missing;
    for (const dns::SrvRecord& r : round->srv) {
      if (round->a.count(r.target) == 0 &&
          std::find(missing.begin(), missing.end(), r.target) == missing.end()) {
        missing.push_back(r.target);
      }
    }
    if (missing.empty()) return finish(*round);
    round->outstanding = missing.size();
    auto self = shared_from_this();
    for (const std::string& target : missing) {
      dns::query(io_, options_.server, target, dns::kTypeA, options_.timeout_ms,
                 [self, round, target](Result<dns::Message> a) {
                   self->on_a(*round, target, std::move(a));
                 });
    }
  }

  void on_a(Round& round, const std::string& target, Result<dns::Message> m) {
    ANYA_ASSERT(round.outstanding > 0);
    round.outstanding--;
    const auto nxdomain = static_cast<std::uint8_t>(dns::Rcode::nxdomain);
    if (!m) {
      round.fail(reason_of(m.status()), m.status().message() + ": " + target + " (A)");
    } else if (m->rcode != 0 && m->rcode != nxdomain) {
      round.fail(reason_of_rcode(m->rcode),
                 std::string(dns::rcode_name(m->rcode)) + " for " + target + " (A)");
    } else {
      for (const dns::ARecord& a : m->a) {
        if (a.owner == target) round.a.emplace(a.owner, a);
      }
    }
    if (round.outstanding != 0 || stopped_) return;
    if (!round.failed_reason.empty()) return fail(round.failed_reason, round.failed_error);
    finish(round);
  }

  void finish(Round& round);
  void fail(const std::string& reason, const std::string& error) {
    failures_in_a_row_++;
    report_(MethodReport::failure(kName, reason, error));
    const unsigned doublings = std::min(failures_in_a_row_ - 1, kMaxBackoffDoublings);
    schedule(std::min(options_.min_refresh_ms << doublings, options_.max_refresh_ms));
  }
  void schedule(std::uint64_t delay_ms) {
    if (stopped_) return;
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(delay_ms));
    timer_.async_wait([self](const boost::system::error_code& e) {
      if (e || self->stopped_) return;
      self->resolve();
    });
  }

  asio::io_context& io_;
  DnsSrvOptions options_;
  Logger log_;
  asio::steady_timer timer_;
  ReportFn report_;
  unsigned failures_in_a_row_ = 0;
  std::string last_skipped_;  // logged once per new set of skipped records
  bool stopped_ = false;
};

void State::finish(Round& round) {
  std::vector<engine::discovery::SrvRank> ranks;
  std::uint32_t ttl_s = UINT32_MAX;
  std::vector<std::size_t> usable;  // indexes into round.srv that have an address
  for (std::size_t i = 0; i < round.srv.size(); i++) {
    const auto a = round.a.find(round.srv[i].target);
    if (a == round.a.end()) {
      round.skipped.push_back(round.srv[i].target + " has no A record");
      continue;
    }
    usable.push_back(i);
    ranks.push_back({round.srv[i].priority, round.srv[i].weight});
    ttl_s = std::min({ttl_s, round.srv[i].ttl_s, a->second.ttl_s});
  }
  std::string skipped;
  for (const std::string& s : round.skipped) skipped += (skipped.empty() ? "" : "; ") + s;
  if (skipped != last_skipped_ && !skipped.empty()) {
    log_.warn("some SRV records of ", options_.name, " were left out: ", skipped);
  }
  last_skipped_ = skipped;
  if (usable.empty()) return fail("no_records", "no SRV target of " + options_.name +
                                                    " has an address: " + skipped);
  Prng prng(std::random_device{}() | std::uint64_t{std::random_device{}()} << 32);
  std::vector<Proposal> peers;
  for (std::size_t k : engine::discovery::rfc2782_order(ranks, prng)) {
    const dns::SrvRecord& r = round.srv[usable[k]];
    Proposal p;
    p.id = *engine::discovery::node_id_from_srv_target(r.target);
    p.address = round.a.at(r.target).address_text() + ":" + std::to_string(r.port);
    p.priority = r.priority;
    p.weight = r.weight;
    peers.push_back(std::move(p));
  }
  failures_in_a_row_ = 0;
  report_(MethodReport::success(kName, std::move(peers)));
  schedule(std::clamp<std::uint64_t>(std::uint64_t{ttl_s} * 1000, options_.min_refresh_ms,
                                     options_.max_refresh_ms));
}

class DnsSrvMethod final : public Method {
 public:
  DnsSrvMethod(asio::io_context& io, DnsSrvOptions o, Logger log)
      : state_(std::make_shared<State>(io, std::move(o), std::move(log))) {}
  ~DnsSrvMethod() override { state_->stop(); }
  std::string_view name() const override { return kName; }
  Status start(ReportFn report) override {
    state_->start(std::move(report));
    return {};
  }
  void stop() override { state_->stop(); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Method> make_dns_srv_method(asio::io_context& io, DnsSrvOptions options,
                                            Logger log) {
  ANYA_ASSERT(options.min_refresh_ms > 0);
  ANYA_ASSERT(options.min_refresh_ms <= options.max_refresh_ms);
  return std::make_unique<DnsSrvMethod>(io, std::move(options), std::move(log));
}

}  // namespace anya::transport::discovery
