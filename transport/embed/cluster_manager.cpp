#include "transport/embed/cluster_manager.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "transport/admin/client.hpp"
#include "transport/agent/agent.hpp"

namespace anya {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// How often join_cluster() looks at the node's status, and waits between rounds of join
// requests. Short against an election timeout, long against a status call (microseconds).
constexpr milliseconds kPollInterval{20};
constexpr milliseconds kJoinRetryInterval{200};
constexpr milliseconds kJoinRequestTimeout{2000};
// A call that finds the node stopped notices within this slice of its wait.
constexpr milliseconds kWaitSlice{50};

ClusterStatus to_cluster_status(const transport::StatusView& v) {
  ClusterStatus s;
  s.node_id = v.node_id;
  s.cluster = v.cluster;
  s.role = v.role;
  s.term = v.term;
  if (v.leader != engine::kNoNode) s.current_leader = v.leader;
  s.quorum = v.quorum;
  s.ready = v.ready;
  s.commit_index = v.commit_index;
  s.fencing_token = v.fencing_token;
  if (v.chain.view) s.chain_height = v.chain.view->height;
  s.chain_quorum_height = v.chain.quorum_height;
  s.chain_behind = v.chain.behind;
  s.healthy = v.health.healthy;
  s.health = v.health.monitored ? v.health.explanation : "healthy: no health monitoring";
  for (const transport::MemberView& m : v.members) {
    NodeInfo n;
    n.id = m.id;
    n.address = m.address;
    n.voter = m.voter;
    n.healthy = m.healthy;
    n.reachable = m.reachable;
    if (m.last_seen_ms) n.last_seen = milliseconds(*m.last_seen_ms);
    s.nodes.push_back(std::move(n));
  }
  return s;
}

const NodeInfo* find_node(const ClusterStatus& s, std::uint64_t id) {
  for (const NodeInfo& n : s.nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

// Empty when this node has joined: a voter that knows a leader which is a member too.
std::string missing_for_join(const ClusterStatus& s) {
  const NodeInfo* self = find_node(s, s.node_id);
  if (self == nullptr) return "this node is not a member yet";
  if (!self->voter) return "this node is still a learner catching up";
  if (!s.current_leader) return "no leader known yet";
  if (find_node(s, *s.current_leader) == nullptr) {
    return "the leader (node " + std::to_string(*s.current_leader) +
           ") is not in this node's membership yet";
  }
  return {};
}

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

// The embedder's chain callback as a probe: nullopt, an exception or an impossible height is a
// failed probe with a reason, as a failing command is.
transport::ChainProbeFn callback_chain_probe(std::function<std::optional<ChainView>()> callback) {
  return [callback = std::move(callback)]() -> Result<ChainView> {
    std::optional<ChainView> view;
    try {
      view = callback();
    } catch (const std::exception& e) {
      return Status(Errc::io_error, std::string("the chain_probe callback threw: ") + e.what());
    } catch (...) {
      return Status(Errc::io_error, "the chain_probe callback threw");
    }
    if (!view) return Status(Errc::io_error, "the chain_probe callback returned no view");
    if (view->height > engine::Limits::max_chain_height) {
      return Status(Errc::malformed, "the chain_probe callback returned height " +
                                         std::to_string(view->height) + ", above the limit " +
                                         std::to_string(engine::Limits::max_chain_height));
    }
    return *view;
  };
}

engine::health::ProbeSpec check_spec(const HealthCheckOptions& c) {
  const auto ms = [](milliseconds d) { return static_cast<std::uint64_t>(std::max<long long>(
                                           d.count(), 0)); };
  engine::health::ProbeSpec spec;
  spec.name = c.name;
  spec.kind = engine::health::ProbeKind::callback;
  spec.interval_ms = ms(c.interval);
  spec.timeout_ms = ms(c.timeout);
  spec.fall = c.fall;
  spec.rise = c.rise;
  spec.weight = c.weight;
  return spec;
}

// ClusterConfig::health and the program's checks (callback probes after the configured ones)
// into the node's configuration, checked as a whole; the functions by probe name.
Status apply_health(const ClusterConfig& config, const std::vector<HealthCheckOptions>& checks,
                    transport::NodeConfig& nc,
                    std::map<std::string, transport::HealthCheck>& functions) {
  nc.health = config.health;
  for (const HealthCheckOptions& c : checks) {
    transport::HealthProbeConfig probe;
    probe.spec = check_spec(c);
    nc.health.probes.push_back(std::move(probe));
    functions[c.name] = c.check;
  }
  return transport::validate(nc);
}

}  // namespace

struct ClusterManager::Impl {
  explicit Impl(ClusterConfig c) : config(std::move(c)) {}

  enum class State { created, running, stopped };

  const ClusterConfig config;
  transport::Logger log;

  mutable std::mutex mutex;  // guards state, agent and fatal
  State state = State::created;
  // Invariant: non-null exactly while state == running, and until shutdown() joined node_thread.
  std::unique_ptr<transport::Agent> agent;
  std::optional<Status> fatal;  // the node stopped itself (storage failed)
  std::vector<HealthCheckOptions> health_checks;  // added before initialize(), then fixed
  std::thread node_thread;
  std::uint16_t peer_port = 0;
  std::uint16_t admin_port = 0;

  std::mutex event_mutex;  // guards everything below it
  std::condition_variable event_cv;
  std::deque<LeadershipEvent> events;  // Invariant: size() <= kMaxQueuedEvents
  std::uint64_t missed = 0;
  bool events_closed = false;
  std::vector<LeadershipHandler> handlers;
  std::thread event_thread;
  bool was_leader = false;  // node thread only

  // Runs `fn(node, reply)` on the node thread and waits (bounded) for its one reply.
  template <typename T, typename Fn>
  Result<T> call(const char* what, milliseconds timeout, Fn fn) const;

  void on_leader_change(engine::NodeId leader, engine::Term term);
  void on_fatal(const Status& why);
  void run_events();
  Status request_join(Clock::time_point deadline, const ClusterManager& self);
};

template <typename T, typename Fn>
Result<T> ClusterManager::Impl::call(const char* what, milliseconds timeout, Fn fn) const {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> answer = promise->get_future();
  {
    std::lock_guard lock(mutex);
    if (state != State::running) {
      return Status(Errc::invalid_argument, std::string(what) + ": the node is not running (" +
                                                (state == State::created ? "call initialize()"
                                                                         : "shut down") + ")");
    }
    if (fatal) return Status(Errc::io_error, std::string(what) + ": " + fatal->message());
    agent->post([fn = std::move(fn), promise](transport::Node& node) mutable {
      fn(node, [promise](Result<T> r) { promise->set_value(std::move(r)); });
    });
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  while (answer.wait_for(kWaitSlice) != std::future_status::ready) {
    std::lock_guard lock(mutex);
    if (fatal) return Status(Errc::io_error, std::string(what) + ": " + fatal->message());
    if (Clock::now() >= deadline) {
      return Status(Errc::busy, std::string(what) + ": no answer from the node within " +
                                    ms_text(timeout));
    }
  }
  try {
    return answer.get();
  } catch (const std::future_error&) {
    // The node stopped with the request still queued (shutdown from another thread).
    return Status(Errc::io_error, std::string(what) + ": the node stopped before answering");
  }
}

void ClusterManager::Impl::on_leader_change(engine::NodeId leader, engine::Term term) {
  LeadershipEvent e;
  if (leader != engine::kNoNode) e.leader = leader;
  e.term = term;
  e.is_leader = leader == config.node_id;
  e.was_leader = was_leader;
  was_leader = e.is_leader;
  std::lock_guard lock(event_mutex);
  if (events.size() == ClusterManager::kMaxQueuedEvents) {
    // A handler that cannot keep up loses the oldest news, not the newest: the last event
    // always says who leads now. The next delivered event counts what was lost.
    events.pop_front();
    missed++;
  }
  events.push_back(e);
  ANYA_ASSERT(events.size() <= ClusterManager::kMaxQueuedEvents);
  event_cv.notify_one();
}

void ClusterManager::Impl::on_fatal(const Status& why) {
  log.error("the node stopped: ", why.message());
  std::lock_guard lock(mutex);
  fatal = Status(Errc::io_error, "the node stopped: " + why.message());
}

void ClusterManager::Impl::run_events() {
  std::unique_lock lock(event_mutex);
  for (;;) {
    event_cv.wait(lock, [this] { return events_closed || !events.empty(); });
    if (events.empty()) return;  // closed and drained: survivors' last events still arrive
    LeadershipEvent e = events.front();
    events.pop_front();
    e.missed = std::exchange(missed, 0);
    const std::vector<LeadershipHandler> current = handlers;
    lock.unlock();
    for (const LeadershipHandler& handler : current) {
      try {
        handler(e);
      } catch (const std::exception& ex) {
        log.error("a leadership handler threw: ", ex.what());
      } catch (...) {
        log.error("a leadership handler threw a non-standard exception");
      }
    }
    lock.lock();
  }
}

// Asks the join endpoints (and the leaders they name) to add this node, until one accepts or
// this node is already a member.
Status ClusterManager::Impl::request_join(Clock::time_point deadline,
                                          const ClusterManager& self) {
  const transport::NodeConfig nc = *config.to_node_config();  // validated by initialize()
  const std::string body = json::serialize(json::object{
      {"id", config.node_id}, {"address", nc.peer_advertise.to_string()}});
  std::string last_error = "no endpoint answered";
  while (Clock::now() < deadline) {
    if (Result<ClusterStatus> st = self.get_status(); st && find_node(*st, config.node_id)) {
      return {};  // added already (a restart, or an earlier round's request committed)
    }
    std::deque<std::string> targets(config.join_endpoints.begin(), config.join_endpoints.end());
    for (std::size_t hops = 0; !targets.empty() && hops < 2 * ClusterConfig::kMaxJoinEndpoints;
         hops++) {
      const std::string endpoint = targets.front();
      targets.pop_front();
      transport::AdminClientOptions o{config.tls_ca, config.tls_cert, config.tls_key,
                                      static_cast<std::uint64_t>(kJoinRequestTimeout.count()),
                                      config.join_token};
      Result<transport::HttpReply> r =
          transport::admin_request(o, endpoint, "POST", "/v1/members", body);
      if (!r) {
        last_error = r.status().message();
        continue;
      }
      if (r->status == 200) return {};
      boost::system::error_code ec;
      const json::value v = json::parse(r->body, ec);
      const json::object* obj = ec ? nullptr : v.if_object();
      const json::value* hint = obj ? obj->if_contains("leader_admin") : nullptr;
      const json::value* message = obj ? obj->if_contains("message") : nullptr;
      last_error = endpoint + " answered " + std::to_string(r->status) + ": " +
                   (message && message->is_string() ? std::string(message->as_string())
                                                    : r->body);
      if (r->status == 421 && hint && hint->is_string() && !hint->as_string().empty()) {
        targets.push_front(std::string(hint->as_string()));  // follow the leader
      } else if (r->status >= 400 && r->status < 500 && r->status != 421) {
        return {Errc::invalid_argument, "join_cluster: " + last_error};
      }
    }
    std::this_thread::sleep_for(kJoinRetryInterval);
  }
  return {Errc::busy, "join_cluster: no member added this node: " + last_error};
}

ClusterManager::ClusterManager(ClusterConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

ClusterManager::~ClusterManager() { shutdown(); }

Status ClusterManager::initialize() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    if (s.state != Impl::State::created) {
      return {Errc::invalid_argument, "initialize: already called"};
    }
  }
  Result<transport::NodeConfig> nc = s.config.to_node_config();
  if (!nc) return nc.status();
  std::map<std::string, transport::HealthCheck> checks;
  {
    std::lock_guard lock(s.mutex);
    if (Status st = apply_health(s.config, s.health_checks, *nc, checks); !st) return st;
  }
  transport::LogLevel level = transport::LogLevel::warn;
  transport::parse_log_level(nc->log_level, level);
  s.log = transport::Logger(s.config.log_sink ? s.config.log_sink : transport::stderr_sink(),
                            level, "node=" + std::to_string(nc->node_id));
  transport::NodeEvents events;
  events.on_leader_change = [&s](engine::NodeId leader, engine::Term term) {
    s.on_leader_change(leader, term);
  };
  events.on_fatal = [&s](const Status& why) { s.on_fatal(why); };
  auto agent = std::make_unique<transport::Agent>(*nc, s.log, std::move(events));
  if (s.config.chain_probe) agent->set_chain_probe(callback_chain_probe(s.config.chain_probe));
  // Queued before start() queues the first probe runs, so the first runs find their functions.
  if (!checks.empty()) {
    agent->post([checks = std::move(checks)](transport::Node& node) mutable {
      node.set_health_checks(std::move(checks));
    });
  }
  // A failed start leaves the manager as it was: the caller may fix the cause and call again.
  if (Status st = agent->start(); !st) return st;
  s.peer_port = agent->peer_port();
  s.admin_port = agent->admin_port();
  {
    std::lock_guard lock(s.event_mutex);
    s.events_closed = false;
  }
  s.event_thread = std::thread([&s] { s.run_events(); });
  transport::Agent* running = agent.get();
  {
    std::lock_guard lock(s.mutex);
    s.agent = std::move(agent);
    s.state = Impl::State::running;
  }
  s.node_thread = std::thread([running] { static_cast<void>(running->run(false)); });
  return {};
}

Status ClusterManager::join_cluster(milliseconds timeout) {
  Impl& s = *impl_;
  const Clock::time_point deadline = Clock::now() + std::max(timeout, milliseconds(0));
  if (s.config.join && !s.config.join_endpoints.empty()) {
    if (Status st = s.request_join(deadline, *this); !st) return st;
  }
  std::string missing;
  for (;;) {
    Result<ClusterStatus> st = get_status();
    if (!st && st.status().code() != Errc::busy) return st.status();
    missing = st ? missing_for_join(*st) : st.status().message();
    if (missing.empty()) return {};
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return {Errc::busy, "join_cluster: not joined after " + ms_text(timeout) + ": " + missing};
}

Result<ClusterStatus> ClusterManager::get_status() const {
  return impl_->call<ClusterStatus>(
      "get_status", kCallTimeout,
      [](transport::Node& node, const std::function<void(Result<ClusterStatus>)>& reply) {
        reply(to_cluster_status(node.status()));
      });
}

Result<LeaseInfo> ClusterManager::lease() const {
  return impl_->call<LeaseInfo>(
      "lease", kCallTimeout,
      [](transport::Node& node, std::function<void(Result<LeaseInfo>)> reply) {
        node.lease([reply](transport::ApiResult<transport::LeaseView> r) {
          if (!r.ok()) return reply(r.error.status);
          LeaseInfo l;
          l.holder = r.value->holder;
          l.fencing_token = r.value->fencing_token;
          l.valid = r.value->valid;
          l.remaining = milliseconds(r.value->remaining_ms);
          ANYA_ASSERT(l.valid || l.remaining.count() == 0);
          reply(l);
        });
      });
}

Status ClusterManager::add_health_check(HealthCheckOptions check) {
  if (!check.check) return {Errc::invalid_argument, "add_health_check: check: empty function"};
  if (Status st = engine::health::validate_probe_spec(check_spec(check), "add_health_check: ");
      !st) {
    return st;
  }
  Impl& s = *impl_;
  std::lock_guard lock(s.mutex);
  if (s.state != Impl::State::created) {
    return {Errc::invalid_argument, "add_health_check: only before initialize()"};
  }
  for (const HealthCheckOptions& c : s.health_checks) {
    if (c.name == check.name) {
      return {Errc::invalid_argument, "add_health_check: name: \"" + check.name +
                                          "\" names another check"};
    }
  }
  if (s.health_checks.size() >= engine::health::ProbeLimits::max_probes) {
    return {Errc::invalid_argument, "add_health_check: at most " +
                                        std::to_string(engine::health::ProbeLimits::max_probes) +
                                        " probes"};
  }
  s.health_checks.push_back(std::move(check));
  return {};
}

Status ClusterManager::on_leadership_change(LeadershipHandler handler) {
  if (!handler) return {Errc::invalid_argument, "on_leadership_change: empty handler"};
  std::lock_guard lock(impl_->event_mutex);
  if (impl_->handlers.size() >= kMaxHandlers) {
    return {Errc::busy, "on_leadership_change: at most " + std::to_string(kMaxHandlers) +
                            " handlers"};
  }
  impl_->handlers.push_back(std::move(handler));
  return {};
}

Result<std::uint64_t> ClusterManager::put(const std::string& key, const std::string& value) {
  transport::KvWrite write;
  write.op = transport::KvWrite::Op::put;
  write.key = key;
  write.value = value;
  return impl_->call<std::uint64_t>(
      "put", kWriteTimeout,
      [write](transport::Node& node, std::function<void(Result<std::uint64_t>)> reply) {
        node.kv_write(write, [reply](transport::ApiResult<transport::KvWriteResult> r) {
          if (r.ok()) return reply(r.value->revision);
          reply(r.error.status);
        });
      });
}

Result<std::uint64_t> ClusterManager::open_session() {
  Result<WriteOutcome> opened = submit(engine::SessionOpen{}, std::nullopt);
  if (!opened) return opened.status();
  return opened->revision;  // the session's client id is the index of its open
}

Result<ClusterManager::WriteOutcome> ClusterManager::put(const std::string& key,
                                                         const std::string& value,
                                                         const transport::ClientRef& client) {
  return submit(engine::KvCommand::put(key, value), client);
}

Result<ClusterManager::WriteOutcome> ClusterManager::submit(
    engine::Command command, std::optional<transport::ClientRef> client) {
  return impl_->call<WriteOutcome>(
      "write", kWriteTimeout,
      [command = std::move(command), client = std::move(client)](
          transport::Node& node, std::function<void(Result<WriteOutcome>)> reply) {
        node.record_write(command, client,
                          [reply](transport::ApiResult<transport::KvWriteResult> r) {
                            if (r.ok()) return reply(WriteOutcome{r.value->revision,
                                                                  r.value->replayed});
                            reply(r.error.status);
                          });
      });
}

namespace {
Result<engine::UtxoCommand> utxo_command(engine::UtxoOp op, const std::string& outpoint,
                                         const std::string& owner, std::uint64_t ttl_ms) {
  Result<engine::Outpoint> parsed = engine::parse_outpoint(outpoint);
  if (!parsed) return parsed.status();
  return engine::UtxoCommand{op, std::move(parsed).value(), owner, 0, ttl_ms};
}
}  // namespace

Result<ClusterManager::WriteOutcome> ClusterManager::reserve_utxo(
    const std::string& outpoint, const std::string& owner, std::chrono::milliseconds ttl,
    std::optional<transport::ClientRef> client) {
  auto command = utxo_command(engine::UtxoOp::reserve, outpoint, owner,
                              ttl.count() > 0 ? static_cast<std::uint64_t>(ttl.count()) : 0);
  if (!command) return command.status();
  return submit(std::move(command).value(), std::move(client));
}

Result<ClusterManager::WriteOutcome> ClusterManager::release_utxo(
    const std::string& outpoint, const std::string& owner,
    std::optional<transport::ClientRef> client) {
  auto command = utxo_command(engine::UtxoOp::release, outpoint, owner, 0);
  if (!command) return command.status();
  return submit(std::move(command).value(), std::move(client));
}

Result<ClusterManager::WriteOutcome> ClusterManager::spend_utxo(
    const std::string& outpoint, const std::string& owner,
    std::optional<transport::ClientRef> client) {
  auto command = utxo_command(engine::UtxoOp::spend, outpoint, owner, 0);
  if (!command) return command.status();
  return submit(std::move(command).value(), std::move(client));
}

Result<std::string> ClusterManager::read_record(const std::string& key) const {
  return impl_->call<std::string>(
      "get", kCallTimeout,
      [key](transport::Node& node, std::function<void(Result<std::string>)> reply) {
        node.kv_get(key, engine::ReadMode::linearizable,
                    [reply](transport::ApiResult<transport::KvEntryView> r) {
                      if (r.ok()) return reply(r.value->value);
                      reply(r.error.status);
                    });
      });
}

Result<std::optional<engine::UtxoRecord>> ClusterManager::get_utxo(
    const std::string& outpoint) const {
  Result<engine::Outpoint> parsed = engine::parse_outpoint(outpoint);
  if (!parsed) return parsed.status();
  Result<std::string> value = read_record(engine::utxo_key(*parsed));
  if (!value && value.status().code() == Errc::not_found) {
    return std::optional<engine::UtxoRecord>{};
  }
  if (!value) return value.status();
  Result<engine::UtxoRecord> record = engine::decode_utxo_record(*value);
  if (!record) return record.status();
  return std::optional<engine::UtxoRecord>{std::move(record).value()};
}

Result<ClusterManager::WriteOutcome> ClusterManager::create_contract(
    const std::string& id, const std::string& state, const std::vector<std::string>& nonces,
    std::optional<transport::ClientRef> client) {
  engine::DlcCommand command{engine::DlcOp::create, id, state, {}, {}, {}, {}};
  for (const std::string& n : nonces) command.nonces.push_back(engine::lower_hex(n));
  return submit(std::move(command), std::move(client));
}

Result<ClusterManager::WriteOutcome> ClusterManager::transition_contract(
    const std::string& id, const std::string& from, const std::string& to,
    std::optional<transport::ClientRef> client) {
  return submit(engine::DlcCommand{engine::DlcOp::transition, id, to, from, {}, {}, {}},
                std::move(client));
}

Result<ClusterManager::WriteOutcome> ClusterManager::attest_contract(
    const std::string& id, const std::string& nonce, const std::string& attestation,
    std::optional<transport::ClientRef> client) {
  return submit(engine::DlcCommand{engine::DlcOp::attest, id, {}, {}, {},
                                   engine::lower_hex(nonce), engine::lower_hex(attestation)},
                std::move(client));
}

Result<engine::DlcRecord> ClusterManager::get_contract(const std::string& id) const {
  if (Status s = engine::check_contract_id(id); !s) return s;
  Result<std::string> value = read_record(engine::dlc_key(id));
  if (!value) return value.status();
  return engine::decode_dlc_record(*value);
}

Result<std::string> ClusterManager::get(const std::string& key) const {
  return impl_->call<std::string>(
      "get", kCallTimeout,
      [key](transport::Node& node, std::function<void(Result<std::string>)> reply) {
        node.kv_get(key, std::nullopt, [reply](transport::ApiResult<transport::KvEntryView> r) {
          if (r.ok()) return reply(r.value->value);
          reply(r.error.status);
        });
      });
}

void ClusterManager::shutdown() {
  Impl& s = *impl_;
  // From a handler this would wait for the handler's own thread to finish.
  ANYA_ASSERT(std::this_thread::get_id() != s.event_thread.get_id());
  {
    std::lock_guard lock(s.mutex);
    if (s.state != Impl::State::running) {
      s.state = Impl::State::stopped;
      return;
    }
    s.state = Impl::State::stopped;  // no call posts to the node after this
    s.agent->request_stop();
  }
  // Bounded by the node: a leader hands over within two election timeouts, then stops.
  s.node_thread.join();
  std::unique_ptr<transport::Agent> agent;
  {
    std::lock_guard lock(s.mutex);
    agent = std::move(s.agent);
  }
  agent.reset();  // requests still queued are dropped; their callers see "stopped"
  {
    std::lock_guard lock(s.event_mutex);
    s.events_closed = true;
  }
  s.event_cv.notify_one();
  s.event_thread.join();
}

std::uint16_t ClusterManager::peer_port() const { return impl_->peer_port; }
std::uint16_t ClusterManager::admin_port() const { return impl_->admin_port; }

}  // namespace anya
