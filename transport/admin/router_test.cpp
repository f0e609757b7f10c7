// Tests for the admin router (router.hpp) against a fake node: every endpoint of DESIGN.md's
// outside contract, the JSON fields each one answers with, the mapping of node errors to HTTP
// statuses, replies that arrive later (a write answers once it commits), and one test per kind
// of bad input. A rejected request must name what is wrong and must not reach the node, so
// every refusal test also checks that the fake node saw no call at all.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv/kv.hpp"
#include "transport/admin/router.hpp"

namespace anya::transport {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A NodeApi that records every call (one line each, with its arguments) and answers with the
// results a test scripted. With `defer` set, the asynchronous calls keep their reply until
// release() runs them, as a node does while a write waits for its commit.
class FakeNode : public NodeApi {
 public:
  StatusView status_view;
  bool alive_value = true;
  std::string metrics = "# TYPE anya_term gauge\nanya_term 7\n";

  std::optional<ApiResult<KvEntryView>> kv_get_result;
  std::optional<ApiResult<KvWriteResult>> kv_write_result;
  std::optional<ApiResult<Empty>> members_result;
  std::optional<ApiResult<ConfigView>> config_result;
  std::optional<ApiResult<std::vector<ConfigView>>> history_result;
  std::optional<ApiResult<engine::NodeId>> transfer_result;
  std::optional<ApiResult<LeaseView>> lease_result;

  std::vector<KvEntryView> scan_result;

  bool defer = false;
  std::vector<std::string> calls;
  std::vector<KvWrite> writes;  // the kv_write arguments, in full
  std::vector<engine::Command> commands;  // the record_write arguments
  std::vector<std::optional<ClientRef>> clients;

  // Runs the replies held back while `defer` was set; returns how many ran.
  std::size_t release() {
    std::vector<std::function<void()>> held;
    held.swap(deferred_);
    for (auto& reply : held) reply();
    return held.size();
  }

  StatusView status() override {
    calls.push_back("status");
    return status_view;
  }
  bool alive() override {
    calls.push_back("alive");
    return alive_value;
  }
  std::string metrics_text() override {
    calls.push_back("metrics_text");
    return metrics;
  }
  void kv_get(const std::string& key, std::optional<engine::ReadMode> consistency,
              Reply<KvEntryView> reply) override {
    calls.push_back("kv_get " + key +
                    (consistency ? std::string(" ") + engine::read_mode_name(*consistency) : ""));
    answer(kv_get_result, std::move(reply));
  }
  void kv_write(KvWrite write, Reply<KvWriteResult> reply) override {
    static const char* const kOps[] = {"put", "cas", "del"};
    std::string line = std::string("kv_write ") + kOps[static_cast<int>(write.op)] + " " +
                       write.key + " value=" + write.value;
    line += " expected=" + (write.expected_revision ? std::to_string(*write.expected_revision)
                                                    : std::string("none"));
    calls.push_back(line);
    writes.push_back(write);
    answer(kv_write_result, std::move(reply));
  }
  void record_write(engine::Command command, std::optional<ClientRef> client,
                    Reply<KvWriteResult> reply) override {
    calls.push_back("record_write");
    commands.push_back(std::move(command));
    clients.push_back(std::move(client));
    answer(kv_write_result, std::move(reply));
  }
  std::vector<KvEntryView> kv_scan(const std::string& prefix, std::size_t limit) override {
    calls.push_back("kv_scan " + prefix);
    std::vector<KvEntryView> out;
    for (const KvEntryView& e : scan_result) {
      if (e.key.starts_with(prefix) && out.size() < limit) out.push_back(e);
    }
    return out;
  }
  void members_add(engine::NodeId id, std::string address, bool learner,
                   Reply<Empty> reply) override {
    calls.push_back("members_add " + std::to_string(id) + " " + address +
                    (learner ? " learner" : " voter"));
    answer(members_result, std::move(reply));
  }
  void members_remove(engine::NodeId id, Reply<Empty> reply) override {
    calls.push_back("members_remove " + std::to_string(id));
    answer(members_result, std::move(reply));
  }
  void config_get(Reply<ConfigView> reply) override {
    calls.push_back("config_get");
    answer(config_result, std::move(reply));
  }
  void config_put(std::string document, std::optional<std::uint64_t> if_version,
                  Reply<ConfigView> reply) override {
    calls.push_back("config_put " + opt(if_version) + " " + document);
    answer(config_result, std::move(reply));
  }
  void config_rollback(std::uint64_t version, std::optional<std::uint64_t> if_version,
                       Reply<ConfigView> reply) override {
    calls.push_back("config_rollback " + std::to_string(version) + " " + opt(if_version));
    answer(config_result, std::move(reply));
  }
  void config_history(Reply<std::vector<ConfigView>> reply) override {
    calls.push_back("config_history");
    answer(history_result, std::move(reply));
  }
  void leader_transfer(std::optional<engine::NodeId> to, Reply<engine::NodeId> reply) override {
    calls.push_back("leader_transfer " + opt(to));
    answer(transfer_result, std::move(reply));
  }
  void lease(Reply<LeaseView> reply) override {
    calls.push_back("lease");
    answer(lease_result, std::move(reply));
  }

 private:
  static std::string opt(std::optional<std::uint64_t> v) {
    return v ? std::to_string(*v) : std::string("none");
  }
  template <typename T>
  void answer(const std::optional<ApiResult<T>>& result, Reply<T> reply) {
    if (!result) {
      ADD_FAILURE() << "the fake node has no scripted answer for: " << calls.back();
      reply(ApiError{Status(Errc::io_error, "no scripted answer")});
      return;
    }
    if (defer) {
      deferred_.push_back([reply = std::move(reply), r = *result] { reply(r); });
      return;
    }
    reply(*result);
  }

  std::vector<std::function<void()>> deferred_;
};

// What the router answered: every call of `respond` (exactly one is expected).
struct Answers {
  std::vector<AdminResponse> got;
  std::function<void(AdminResponse)> sink() {
    return [this](AdminResponse r) { got.push_back(std::move(r)); };
  }
  json::value body(std::size_t i = 0) const {
    EXPECT_LT(i, got.size());
    boost::system::error_code ec;
    json::value v = json::parse(got.at(i).body, ec);
    EXPECT_FALSE(ec) << "response body is not JSON: " << got.at(i).body;
    return v;
  }
};

AdminRequest request(std::string method, std::string target, std::string body = {},
                     std::string if_match = {}) {
  return AdminRequest{std::move(method), std::move(target), std::move(if_match), std::move(body)};
}

// Routes one request and checks that exactly one response came back at once.
AdminResponse route(FakeNode& node, const AdminRequest& req) {
  Answers answers;
  route_admin_request(req, node, answers.sink());
  EXPECT_EQ(answers.got.size(), 1u) << req.method << " " << req.target;
  return answers.got.empty() ? AdminResponse{0, "", "", ""} : answers.got.front();
}

json::value parse(const AdminResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "response body is not JSON: " << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  return v;
}

// The request is refused with `status` and {"error": code, "message": ...naming `what`...},
// and the node was not asked to do anything.
void expect_refused(const AdminRequest& req, int status, std::string_view code,
                    std::string_view what) {
  SCOPED_TRACE(req.method + " " + req.target.substr(0, 80) + " body=" + req.body.substr(0, 80));
  FakeNode node;
  const AdminResponse r = route(node, req);
  EXPECT_EQ(r.status, status) << r.body;
  const json::value v = parse(r);
  ASSERT_TRUE(v.is_object()) << r.body;
  ASSERT_TRUE(v.as_object().contains("error")) << r.body;
  ASSERT_TRUE(v.as_object().contains("message")) << r.body;
  EXPECT_EQ(v.at("error"), json::value(code)) << r.body;
  ASSERT_TRUE(v.at("message").is_string()) << r.body;
  EXPECT_THAT(std::string(v.at("message").as_string()), HasSubstr(std::string(what)));
  EXPECT_THAT(node.calls, ::testing::IsEmpty()) << "a refused request reached the node";
}

StatusView sample_status() {
  StatusView s;
  s.node_id = 2;
  s.cluster = "prod-eu";
  s.role = "follower";
  s.term = 9;
  s.leader = 3;
  s.leader_admin = "https://10.0.0.3:8443";
  s.commit_index = 120;
  s.applied_index = 118;
  s.quorum = true;
  s.ready = true;
  s.config_version = 4;
  s.fencing_token = 9;
  const auto member = [](engine::NodeId id, bool voter, bool healthy, engine::Liveness liveness,
                         std::optional<std::uint64_t> last_seen_ms, engine::Index match) {
    MemberView m;
    m.id = id;
    m.address = "10.0.0." + std::to_string(id) + ":7000";
    m.voter = voter;
    m.healthy = healthy;
    m.liveness = liveness;
    m.reachable = liveness == engine::Liveness::reachable;
    m.last_seen_ms = last_seen_ms;
    m.match_index = match;
    if (m.reachable) m.rtt_ms = 2;
    return m;
  };
  // A member down (it reported unhealthy before it died), and a learner only suspected: neither
  // may be shown healthy or unhealthy, since neither report is current.
  s.members = {member(1, true, true, engine::Liveness::reachable, 15, 120),
               member(3, true, false, engine::Liveness::down, std::nullopt, 0),
               member(5, false, true, engine::Liveness::suspect, 400, 100),
               member(7, false, false, engine::Liveness::reachable, 3, 100)};
  return s;
}

// Checks one member object against the view it came from, field by field.
void expect_member(const json::value& got, const MemberView& want) {
  ASSERT_TRUE(got.is_object());
  EXPECT_EQ(got.at("id"), json::value(want.id));
  EXPECT_EQ(got.at("address"), json::value(want.address));
  EXPECT_EQ(got.at("voter"), json::value(want.voter));
  const bool alive = want.liveness == engine::Liveness::reachable;
  EXPECT_EQ(got.at("health"),
            json::value(!alive ? "unknown" : want.healthy ? "healthy" : "unhealthy"));
  EXPECT_EQ(got.at("reachability"), json::value(engine::liveness_name(want.liveness)));
  if (want.rtt_ms) EXPECT_EQ(got.at("rtt_ms"), json::value(*want.rtt_ms));
  else EXPECT_TRUE(got.at("rtt_ms").is_null());
  if (want.last_seen_ms) EXPECT_EQ(got.at("last_seen_ms"), json::value(*want.last_seen_ms));
  else EXPECT_TRUE(got.at("last_seen_ms").is_null());
}

// ---------------------------------------------------------------- probes

TEST(AdminRouter, HealthzAnswersOkWhileAliveAnd503WhenStopped) {
  FakeNode node;
  AdminResponse r = route(node, request("GET", "/healthz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("status"), "ok");
  node.alive_value = false;
  r = route(node, request("GET", "/healthz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(parse(r).at("status"), "stopped");
}

TEST(AdminRouter, ReadyzIs200WhenReadyAnd503WithAReasonWhenNot) {
  FakeNode node;
  node.status_view = sample_status();
  AdminResponse r = route(node, request("GET", "/readyz"));
  EXPECT_EQ(r.status, 200);
  json::value v = parse(r);
  EXPECT_EQ(v.at("ready"), true);
  EXPECT_EQ(v.at("quorum"), true);
  EXPECT_EQ(v.at("role"), "follower");
  EXPECT_FALSE(v.as_object().contains("reason"));

  node.status_view.ready = false;
  node.status_view.quorum = false;
  r = route(node, request("GET", "/readyz"));
  EXPECT_EQ(r.status, 503);
  v = parse(r);
  EXPECT_EQ(v.at("ready"), false);
  EXPECT_THAT(std::string(v.at("reason").as_string()), HasSubstr("quorum"));

  node.status_view.quorum = true;  // in a quorum but still applying
  r = route(node, request("GET", "/readyz"));
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(std::string(parse(r).at("reason").as_string()), HasSubstr("applying"));
}

TEST(AdminRouter, MetricsIsPrometheusTextFromTheNode) {
  FakeNode node;
  const AdminResponse r = route(node, request("GET", "/metrics"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.content_type, StartsWith("text/plain; version=0.0.4"));
  EXPECT_EQ(r.body, node.metrics);
  EXPECT_EQ(node.calls, std::vector<std::string>{"metrics_text"});
}

// ---------------------------------------------------------------- status and members

TEST(AdminRouter, StatusCarriesEveryFieldOfTheContract) {
  FakeNode node;
  node.status_view = sample_status();
  const AdminResponse r = route(node, request("GET", "/v1/status"));
  ASSERT_EQ(r.status, 200);
  const json::value v = parse(r);
  EXPECT_EQ(v.at("node_id"), 2);
  EXPECT_EQ(v.at("cluster_id"), "prod-eu");
  EXPECT_EQ(v.at("role"), "follower");
  EXPECT_EQ(v.at("term"), 9);
  EXPECT_EQ(v.at("leader"), 3);
  EXPECT_EQ(v.at("commit_index"), 120);
  EXPECT_EQ(v.at("applied_index"), 118);
  EXPECT_EQ(v.at("quorum"), true);
  EXPECT_EQ(v.at("config_version"), 4);
  EXPECT_EQ(v.at("fencing_token"), 9);
  const json::array& members = v.at("members").as_array();
  ASSERT_EQ(members.size(), 4u);
  for (std::size_t i = 0; i < members.size(); i++) {
    expect_member(members[i], node.status_view.members[i]);
  }
}

TEST(AdminRouter, StatusWithoutALeaderSaysNull) {
  FakeNode node;
  node.status_view = sample_status();
  node.status_view.leader = engine::kNoNode;
  node.status_view.quorum = false;
  node.status_view.role = "candidate";
  const json::value v = parse(route(node, request("GET", "/v1/status")));
  EXPECT_TRUE(v.at("leader").is_null());
  EXPECT_EQ(v.at("quorum"), false);
  EXPECT_EQ(v.at("role"), "candidate");
}

TEST(AdminRouter, StatusShowsTheChainViewTheQuorumHeightAndEachMembersHeight) {
  FakeNode node;
  node.status_view = sample_status();
  engine::ChainView view;
  view.height = 800'000;
  view.tip[0] = 0xab;
  view.tip[31] = 0x01;
  node.status_view.chain = ChainStatusView{true, view, 800'004, true, 2, ""};
  node.status_view.members[0].chain_height = 800'004;
  const json::value v = parse(route(node, request("GET", "/v1/status")));
  const json::value& chain = v.at("chain");
  EXPECT_EQ(chain.at("height"), 800'000);
  EXPECT_EQ(chain.at("tip"), json::value("ab" + std::string(60, '0') + "01"));
  EXPECT_EQ(chain.at("quorum_height"), 800'004);
  EXPECT_EQ(chain.at("blocks_behind"), 4);
  EXPECT_EQ(chain.at("behind"), true);
  EXPECT_EQ(chain.at("max_blocks_behind"), 2);
  EXPECT_TRUE(chain.at("probe_error").is_null());
  EXPECT_EQ(v.at("members").at(0).at("chain_height"), 800'004);
  EXPECT_TRUE(v.at("members").at(1).at("chain_height").is_null()) << "unknown: null";
}

TEST(AdminRouter, StatusWithAFailedProbeSaysWhyAndNull) {
  FakeNode node;
  node.status_view = sample_status();
  node.status_view.chain = ChainStatusView{true, std::nullopt, 800'004, true, 2,
                                           "exited with status 1: error: couldn't connect"};
  const json::value chain = parse(route(node, request("GET", "/v1/status"))).at("chain");
  EXPECT_TRUE(chain.at("height").is_null());
  EXPECT_TRUE(chain.at("tip").is_null());
  EXPECT_TRUE(chain.at("blocks_behind").is_null());
  EXPECT_EQ(chain.at("behind"), true);
  EXPECT_EQ(chain.at("probe_error"), "exited with status 1: error: couldn't connect");
}

TEST(AdminRouter, MembersListsTheNodesMembers) {
  FakeNode node;
  node.status_view = sample_status();
  for (const char* target : {"/v1/members", "/v1/members/"}) {
    const AdminResponse r = route(node, request("GET", target));
    ASSERT_EQ(r.status, 200) << target;
    const json::value v = parse(r);
    const json::array& members = v.at("members").as_array();
    ASSERT_EQ(members.size(), 4u);
    for (std::size_t i = 0; i < members.size(); i++) {
      expect_member(members[i], node.status_view.members[i]);
    }
  }
}

TEST(AdminRouter, MembersAddPassesIdAddressAndLearner) {
  FakeNode node;
  node.members_result = Empty{};
  AdminResponse r = route(node, request("POST", "/v1/members",
                                        R"({"id": 4, "address": "10.0.0.4:7000"})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("ok"), true);
  r = route(node, request("POST", "/v1/members",
                          R"({"id": 6, "address": "[::1]:7006", "learner": true})"));
  EXPECT_EQ(r.status, 200);
  r = route(node, request("POST", "/v1/members",
                          R"({"id": 7, "address": "h:1", "learner": false})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("members_add 4 10.0.0.4:7000 voter",
                                                 "members_add 6 [::1]:7006 learner",
                                                 "members_add 7 h:1 voter"));
}

TEST(AdminRouter, MembersRemoveTakesTheIdFromThePath) {
  FakeNode node;
  node.members_result = Empty{};
  const AdminResponse r = route(node, request("DELETE", "/v1/members/18446744073709551615"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("ok"), true);
  EXPECT_EQ(node.calls, std::vector<std::string>{"members_remove 18446744073709551615"});
}

// ---------------------------------------------------------------- configuration

TEST(AdminRouter, ConfigGetReturnsTheDocumentAsJson) {
  FakeNode node;
  node.config_result = ConfigView{3, R"({"services": {"db": {"replicas": 2}}})"};
  AdminResponse r = route(node, request("GET", "/v1/config"));
  ASSERT_EQ(r.status, 200);
  json::value v = parse(r);
  EXPECT_EQ(v.at("version"), 3);
  EXPECT_EQ(v.at("document").at("services").at("db").at("replicas"), 2);

  node.config_result = ConfigView{0, ""};  // before the first configuration
  v = parse(route(node, request("GET", "/v1/config")));
  EXPECT_EQ(v.at("version"), 0);
  EXPECT_TRUE(v.at("document").is_null());
}

TEST(AdminRouter, ConfigPutPassesTheBodyAndIfMatch) {
  FakeNode node;
  node.config_result = ConfigView{8, R"({"a": 1})"};
  const std::string doc = R"({"a": 1})";
  AdminResponse r = route(node, request("PUT", "/v1/config", doc, "\"7\""));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("version"), 8);
  r = route(node, request("PUT", "/v1/config", doc, "7"));
  EXPECT_EQ(r.status, 200);
  r = route(node, request("PUT", "/v1/config", doc));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("config_put 7 " + doc, "config_put 7 " + doc,
                                                 "config_put none " + doc));
}

TEST(AdminRouter, ConfigRollbackPassesVersionAndIfVersion) {
  FakeNode node;
  node.config_result = ConfigView{9, R"({"a": 0})"};
  AdminResponse r = route(node, request("POST", "/v1/config/rollback",
                                        R"({"version": 2, "if_version": 8})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("version"), 9);
  r = route(node, request("POST", "/v1/config/rollback", R"({"version": 2})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("config_rollback 2 8", "config_rollback 2 none"));
}

TEST(AdminRouter, ConfigHistoryListsEveryVersion) {
  FakeNode node;
  node.history_result = std::vector<ConfigView>{{1, R"({"a": 1})"}, {2, R"({"a": 2})"}};
  const AdminResponse r = route(node, request("GET", "/v1/config/history"));
  ASSERT_EQ(r.status, 200);
  const json::value v = parse(r);
  const json::array& versions = v.at("versions").as_array();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].at("version"), 1);
  EXPECT_EQ(versions[0].at("document").at("a"), 1);
  EXPECT_EQ(versions[1].at("version"), 2);
  EXPECT_EQ(versions[1].at("document").at("a"), 2);
}

// ---------------------------------------------------------------- leader, lease

TEST(AdminRouter, LeaderTransferWithAndWithoutATarget) {
  FakeNode node;
  node.transfer_result = engine::NodeId{3};
  AdminResponse r = route(node, request("POST", "/v1/leader/transfer", R"({"to": 3})"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("transferring_to"), 3);
  EXPECT_EQ(route(node, request("POST", "/v1/leader/transfer")).status, 200);
  EXPECT_EQ(route(node, request("POST", "/v1/leader/transfer", "{}")).status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("leader_transfer 3", "leader_transfer none",
                                                 "leader_transfer none"));
}

TEST(AdminRouter, LeaseNamesHolderFencingTokenAndValidity) {
  FakeNode node;
  node.lease_result = LeaseView{3, 41, true, 800};
  const AdminResponse r = route(node, request("GET", "/v1/lease"));
  ASSERT_EQ(r.status, 200);
  const json::value v = parse(r);
  EXPECT_EQ(v.at("holder"), 3);
  EXPECT_EQ(v.at("fencing_token"), 41);
  EXPECT_EQ(v.at("valid"), true);
  EXPECT_EQ(node.calls, std::vector<std::string>{"lease"});
}

// ---------------------------------------------------------------- records and client sessions

const std::string kTxidUpper(64, 'A');
const std::string kTxidLower(64, 'a');

TEST(AdminRecords, ReserveBuildsTheCommandWithTheClientSession) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{17, true};
  AdminRequest req = request("POST", "/v1/utxo/reserve",
                             R"({"outpoint": ")" + kTxidUpper + R"(:3", "owner": "w1", "ttl_ms": 5000})");
  req.client_id = "7";
  req.client_seq = "42";
  const AdminResponse r = route(node, req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r).at("revision"), 17);
  EXPECT_EQ(parse(r).at("replayed"), true);
  ASSERT_EQ(node.commands.size(), 1u);
  const engine::UtxoCommand* utxo = node.commands[0].utxo();
  ASSERT_NE(utxo, nullptr);
  EXPECT_EQ(utxo->op, engine::UtxoOp::reserve);
  EXPECT_EQ(utxo->outpoint.txid, kTxidLower);  // stored in one spelling
  EXPECT_EQ(utxo->outpoint.vout, 3u);
  EXPECT_EQ(utxo->owner, "w1");
  EXPECT_EQ(utxo->ttl_ms, 5000u);
  ASSERT_TRUE(node.clients[0].has_value());
  EXPECT_EQ(node.clients[0]->id, 7u);
  EXPECT_EQ(node.clients[0]->seq, 42u);
}

TEST(AdminRecords, BadInputIs400NamingTheFieldAndNothingIsProposed) {
  const std::string good_outpoint = kTxidLower + ":0";
  struct Bad {
    std::string target, body, client_id, client_seq, names;
  };
  const std::vector<Bad> cases = {
      {"/v1/utxo/reserve", R"({"outpoint": "abc:0", "owner": "w", "ttl_ms": 1})", "", "",
       "outpoint txid"},
      {"/v1/utxo/reserve", R"({"outpoint": ")" + kTxidLower + R"(:x", "owner": "w", "ttl_ms": 1})",
       "", "", "outpoint vout"},
      {"/v1/utxo/reserve", R"({"outpoint": ")" + kTxidLower + R"(:4294967295", "owner": "w", "ttl_ms": 1})",
       "", "", "outpoint vout"},
      {"/v1/utxo/reserve", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "", "",
       "ttl_ms"},
      {"/v1/utxo/reserve", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w", "ttl_ms": 0})",
       "", "", "ttl_ms"},
      {"/v1/utxo/spend", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "a b"})", "", "",
       "owner"},
      {"/v1/utxo/spend", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w", "x": 1})", "",
       "", "x: unknown field"},
      {"/v1/utxo/release", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "3", "",
       "Anya-Client-Seq"},
      {"/v1/utxo/release", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "", "1",
       "Anya-Client-Id"},
      {"/v1/utxo/release", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "3", "0",
       "Anya-Client-Seq"},
      {"/v1/utxo/release", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "c", "1",
       "Anya-Client-Id: expected the client_id that POST /v1/session returned"},
      {"/v1/utxo/release", R"({"outpoint": ")" + good_outpoint + R"(", "owner": "w"})", "0", "1",
       "Anya-Client-Id"},
      {"/v1/session", "", "3", "1", "not itself in a session"},
      {"/v1/session", R"({"x": 1})", "", "", "body: a session open takes none"},
      {"/v1/dlc", R"({"contract_id": "c", "state": "s", "nonces": ["xyz"]})", "", "", "nonces[0]"},
      {"/v1/dlc", R"({"contract_id": "c", "state": "S", "nonces": [")" + std::string(64, '1') +
                      R"("]})", "", "", "state"},
      {"/v1/dlc/c/attest", R"({"nonce": ")" + std::string(64, '1') + R"(", "attestation": "abc"})",
       "", "", "attestation"},
      {"/v1/dlc/c/sign", "{}", "", "", "no such contract action"},
  };
  for (const Bad& c : cases) {
    FakeNode node;
    node.kv_write_result = KvWriteResult{1};
    AdminRequest req = request("POST", c.target, c.body);
    req.client_id = c.client_id;
    req.client_seq = c.client_seq;
    const AdminResponse r = route(node, req);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << c.body << " -> " << r.status;
    EXPECT_NE(r.body.find(c.names), std::string::npos) << c.body << " -> " << r.body;
    EXPECT_TRUE(node.commands.empty()) << c.body;
  }
}

TEST(AdminRecords, KvWritesCarryTheClientSession) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{5, true};
  AdminRequest req = request("PUT", "/v1/kv/k", R"({"value": "v"})");
  req.client_id = "12";
  req.client_seq = "9";
  const AdminResponse r = route(node, req);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("replayed"), true);
  ASSERT_TRUE(node.writes.at(0).client.has_value());
  EXPECT_EQ(node.writes[0].client->id, 12u);
  EXPECT_EQ(node.writes[0].client->seq, 9u);
  AdminRequest plain = request("DELETE", "/v1/kv/k");
  EXPECT_EQ(route(node, plain).status, 200);
  EXPECT_FALSE(node.writes.at(1).client.has_value());
}

TEST(AdminRecords, OpeningASessionReturnsItsClientId) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{41, false};
  const AdminResponse r = route(node, request("POST", "/v1/session"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r).at("client_id"), 41);
  EXPECT_EQ(parse(r).at("window"), engine::kSessionWindow);
  ASSERT_EQ(node.commands.size(), 1u);
  EXPECT_NE(node.commands[0].open(), nullptr);
  EXPECT_FALSE(node.clients[0].has_value());
  // Only POST.
  EXPECT_EQ(route(node, request("GET", "/v1/session")).status, 405);
}

TEST(AdminRecords, UtxoGetShowsFreeReservedAndSpent) {
  FakeNode node;
  node.kv_get_result = ApiError{Status(Errc::not_found, "key not found")};
  AdminResponse r = route(node, request("GET", "/v1/utxo/" + kTxidUpper + ":1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r).at("state"), "free");
  EXPECT_EQ(parse(r).at("outpoint"), json::value(kTxidLower + ":1"));
  EXPECT_EQ(node.calls.back(), "kv_get _anya/utxo/" + kTxidLower + ":1");

  node.kv_get_result = KvEntryView{"k", engine::encode_utxo_record({engine::UtxoState::reserved,
                                                                    "w", 5000}), 3, 8, 2};
  AdminRequest at_4000 = request("GET", "/v1/utxo/" + kTxidLower + ":1");
  at_4000.now_unix_ms = 4000;
  r = route(node, at_4000);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("state"), "reserved");
  EXPECT_EQ(parse(r).at("owner"), "w");
  EXPECT_EQ(parse(r).at("expires_at_ms"), 5000);
  EXPECT_EQ(parse(r).at("expired"), false);
  EXPECT_EQ(parse(r).at("revision"), 8);

  node.kv_get_result = KvEntryView{"k", engine::encode_utxo_record({engine::UtxoState::spent,
                                                                    "w", 0}), 3, 9, 3};
  r = route(node, request("GET", "/v1/utxo/" + kTxidLower + ":1"));
  EXPECT_EQ(parse(r).at("state"), "spent");
  EXPECT_EQ(route(node, request("GET", "/v1/utxo/nope")).status, 400);
}

TEST(AdminRecords, DlcActionsBuildTheirCommands) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{4};
  const std::string nonce(64, 'B');
  EXPECT_EQ(route(node, request("POST", "/v1/dlc",
                                R"({"contract_id": "c-1", "state": "offered", "nonces": [")" +
                                    nonce + R"("]})"))
                .status,
            200);
  EXPECT_EQ(route(node, request("POST", "/v1/dlc/c-1/transition",
                                R"({"from": "offered", "to": "signed"})"))
                .status,
            200);
  EXPECT_EQ(route(node, request("POST", "/v1/dlc/c-1/attest",
                                R"({"nonce": ")" + nonce + R"(", "attestation": "AB01"})"))
                .status,
            200);
  ASSERT_EQ(node.commands.size(), 3u);
  EXPECT_EQ(node.commands[0].dlc()->nonces, std::vector<std::string>{std::string(64, 'b')});
  EXPECT_EQ(node.commands[1].dlc()->expected_state, "offered");
  EXPECT_EQ(node.commands[1].dlc()->state, "signed");
  EXPECT_EQ(node.commands[2].dlc()->nonce, std::string(64, 'b'));
  EXPECT_EQ(node.commands[2].dlc()->attestation, "ab01");
}

// ---------------------------------------------------------------- key-value

TEST(AdminRouter, KvGetDecodesTheKeyAndReturnsEveryField) {
  FakeNode node;
  node.kv_get_result = KvEntryView{"a/b c", "v\xC3\xA9", 10, 12, 3};
  const AdminResponse r = route(node, request("GET", "/v1/kv/a%2Fb%20c"));
  ASSERT_EQ(r.status, 200);
  const json::value v = parse(r);
  EXPECT_EQ(v.at("key"), "a/b c");
  EXPECT_EQ(v.at("value"), "v\xC3\xA9");
  EXPECT_EQ(v.at("create_revision"), 10);
  EXPECT_EQ(v.at("mod_revision"), 12);
  EXPECT_EQ(v.at("version"), 3);
  EXPECT_EQ(node.calls, std::vector<std::string>{"kv_get a/b c"});
}

TEST(AdminRouter, KvKeysArePercentDecodedExactlyOnce) {
  FakeNode node;
  node.kv_get_result = KvEntryView{"k", "v", 1, 1, 1};
  route(node, request("GET", "/v1/kv/%25%32%46"));     // "%2F" encoded: the key is "%2F"
  route(node, request("GET", "/v1/kv/plain+key"));     // '+' is not a space in a path
  route(node, request("GET", "/v1/kv/dir/sub/leaf"));  // unescaped slashes stay in the key
  route(node, request("GET", "/v1/kv/%C3%A9t%c3%a9"));  // UTF-8, either hex case
  route(node, request("GET", "/v1/kv/x?consistency=lease"));  // the query is not the key
  EXPECT_THAT(node.calls, ::testing::ElementsAre("kv_get %2F", "kv_get plain+key",
                                                 "kv_get dir/sub/leaf",
                                                 "kv_get \xC3\xA9t\xC3\xA9", "kv_get x lease"));
}

TEST(AdminRouter, KvGetConsistencyIsCheckedAndLabelled) {
  FakeNode node;
  node.kv_get_result = KvEntryView{"k", "v", 1, 1, 1, engine::ReadMode::serializable, true};
  const AdminResponse ok = route(node, request("GET", "/v1/kv/k?consistency=serializable"));
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(parse(ok).at("consistency"), "serializable");
  EXPECT_EQ(parse(ok).at("stale_possible"), true);
  const AdminResponse bad = route(node, request("GET", "/v1/kv/k?consistency=eventual"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(parse(bad).at("message").as_string().find("consistency"), std::string::npos);
  const AdminResponse unknown = route(node, request("GET", "/v1/kv/k?stale=1"));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(node.calls, std::vector<std::string>{"kv_get k serializable"});
}

TEST(AdminRouter, KvPutWithoutPrevRevisionIsAPlainPut) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{31};
  const AdminResponse r = route(node, request("PUT", "/v1/kv/a%2Fb", R"({"value": "x y"})"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("revision"), 31);
  EXPECT_EQ(node.calls, std::vector<std::string>{"kv_write put a/b value=x y expected=none"});
}

TEST(AdminRouter, KvPutWithPrevRevisionIsACompareAndSet) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{32};
  EXPECT_EQ(route(node, request("PUT", "/v1/kv/k", R"({"value": "v", "prev_revision": 31})"))
                .status, 200);
  // prev_revision 0: the key must not exist yet (create-if-absent), still a CAS.
  EXPECT_EQ(route(node, request("PUT", "/v1/kv/k", R"({"value": "", "prev_revision": 0})"))
                .status, 200);
  // null is "absent": a plain put.
  EXPECT_EQ(route(node, request("PUT", "/v1/kv/k", R"({"value": "w", "prev_revision": null})"))
                .status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("kv_write cas k value=v expected=31",
                                                 "kv_write cas k value= expected=0",
                                                 "kv_write put k value=w expected=none"));
}

TEST(AdminRouter, KvDeleteWithAndWithoutAPrecondition) {
  FakeNode node;
  node.kv_write_result = KvWriteResult{40};
  AdminResponse r = route(node, request("DELETE", "/v1/kv/a%2Fb"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(parse(r).at("revision"), 40);
  r = route(node, request("DELETE", "/v1/kv/k?prev_revision=39"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(node.calls, ::testing::ElementsAre("kv_write del a/b value= expected=none",
                                                 "kv_write del k value= expected=39"));
}

TEST(AdminRouter, KvCasConflictIs409WithTheNodesMessage) {
  FakeNode node;
  node.kv_write_result =
      ApiError{Status(Errc::conflict, "key k: mod_revision is 12, expected 11")};
  const AdminResponse r =
      route(node, request("PUT", "/v1/kv/k", R"({"value": "v", "prev_revision": 11})"));
  EXPECT_EQ(r.status, 409);
  const json::value v = parse(r);
  EXPECT_EQ(v.at("error"), "conflict");
  EXPECT_EQ(v.at("message"), "key k: mod_revision is 12, expected 11");
  EXPECT_EQ(node.calls.size(), 1u);
}

// ---------------------------------------------------------------- deferred replies

TEST(AdminRouter, AWriteAnswersOnlyWhenTheNodeDoes) {
  FakeNode node;
  node.defer = true;
  node.kv_write_result = KvWriteResult{77};
  Answers answers;
  route_admin_request(request("PUT", "/v1/kv/k", R"({"value": "v"})"), node, answers.sink());
  EXPECT_TRUE(answers.got.empty()) << "answered before the node did";
  EXPECT_EQ(node.calls.size(), 1u);
  EXPECT_EQ(node.release(), 1u);
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(answers.got[0].status, 200);
  EXPECT_EQ(answers.body().at("revision"), 77);
}

TEST(AdminRouter, DeferredAnswersOfEveryAsyncEndpointArriveOnceEach) {
  FakeNode node;
  node.defer = true;
  node.kv_get_result = ApiError{Status(Errc::not_found, "key k: no such key")};
  node.members_result = Empty{};
  node.config_result = ConfigView{2, "{}"};
  node.history_result = std::vector<ConfigView>{};
  node.transfer_result = engine::NodeId{2};
  node.lease_result = LeaseView{1, 5, false, 0};
  Answers answers;
  const std::vector<AdminRequest> requests = {
      request("GET", "/v1/kv/k"),
      request("POST", "/v1/members", R"({"id": 4, "address": "h:1"})"),
      request("DELETE", "/v1/members/4"),
      request("GET", "/v1/config"),
      request("PUT", "/v1/config", "{}"),
      request("POST", "/v1/config/rollback", R"({"version": 1})"),
      request("GET", "/v1/config/history"),
      request("POST", "/v1/leader/transfer"),
      request("GET", "/v1/lease")};
  for (const AdminRequest& r : requests) route_admin_request(r, node, answers.sink());
  EXPECT_TRUE(answers.got.empty());
  EXPECT_EQ(node.release(), requests.size());
  ASSERT_EQ(answers.got.size(), requests.size());
  EXPECT_EQ(answers.got[0].status, 404);
  EXPECT_EQ(answers.body(0).at("error"), "not_found");
  for (std::size_t i = 1; i < answers.got.size(); i++) {
    EXPECT_EQ(answers.got[i].status, 200) << requests[i].method << " " << requests[i].target;
  }
  EXPECT_EQ(node.release(), 0u) << "a reply was held twice";
}

// ---------------------------------------------------------------- node errors

TEST(AdminRouter, NotLeaderIs421WithTheLeaderToFollow) {
  FakeNode node;
  node.kv_write_result = ApiError{Status(Errc::not_leader, "node 2 is a follower"), 3,
                                  "https://10.0.0.3:8443"};
  const AdminResponse r = route(node, request("PUT", "/v1/kv/k", R"({"value": "v"})"));
  EXPECT_EQ(r.status, 421);
  const json::value v = parse(r);
  EXPECT_EQ(v.at("error"), "not_leader");
  EXPECT_EQ(v.at("message"), "node 2 is a follower");
  EXPECT_EQ(v.at("leader"), 3);
  EXPECT_EQ(v.at("leader_admin"), "https://10.0.0.3:8443");
}

TEST(AdminRouter, NotLeaderWithTheLeaderUnknownSaysNull) {
  FakeNode node;
  node.config_result = ApiError{Status(Errc::not_leader, "no leader (election in progress)")};
  const AdminResponse r = route(node, request("PUT", "/v1/config", "{}"));
  EXPECT_EQ(r.status, 421);
  const json::value v = parse(r);
  EXPECT_TRUE(v.at("leader").is_null());
  EXPECT_EQ(v.at("leader_admin"), "");
}

TEST(AdminRouter, NodeErrorsMapToHttpStatuses) {
  struct Case {
    Errc code;
    int status;
  };
  for (const Case c : {Case{Errc::conflict, 409}, Case{Errc::busy, 503},
                       Case{Errc::not_found, 404}, Case{Errc::invalid_argument, 400},
                       Case{Errc::io_error, 500}, Case{Errc::corrupt, 500}}) {
    FakeNode node;
    const std::string message = std::string("because ") + errc_name(c.code);
    node.members_result = ApiError{Status(c.code, message)};
    const AdminResponse r = route(node, request("DELETE", "/v1/members/3"));
    EXPECT_EQ(r.status, c.status) << errc_name(c.code);
    EXPECT_EQ(http_status_for(c.code), c.status);
    const json::value v = parse(r);
    EXPECT_EQ(v.at("error"), json::value(errc_name(c.code)));
    EXPECT_EQ(v.at("message"), json::value(message));
    EXPECT_FALSE(v.as_object().contains("leader")) << "only not_leader names a leader";
  }
}

// ---------------------------------------------------------------- bad input: bodies

TEST(AdminRouterRefuses, InvalidJson) {
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": "v")"), 400, "invalid_argument",
                 "not valid JSON");
  expect_refused(request("POST", "/v1/members", "{id: 4}"), 400, "invalid_argument",
                 "not valid JSON");
  expect_refused(request("PUT", "/v1/config", "services = 1"), 400, "invalid_argument",
                 "document: body is not valid JSON");
  expect_refused(request("POST", "/v1/config/rollback", ""), 400, "invalid_argument",
                 "not valid JSON");
  expect_refused(request("POST", "/v1/leader/transfer", "{\"to\": 3} x"), 400,
                 "invalid_argument", "not valid JSON");
  expect_refused(request("PUT", "/v1/kv/k", "{\"value\": \"\xff\"}"), 400, "invalid_argument",
                 "not valid JSON");  // not UTF-8
}

TEST(AdminRouterRefuses, JsonThatIsNotAnObject) {
  expect_refused(request("PUT", "/v1/kv/k", R"(["value", "v"])"), 400, "invalid_argument",
                 "must be a JSON object");
  expect_refused(request("POST", "/v1/members", "4"), 400, "invalid_argument",
                 "must be a JSON object");
  expect_refused(request("PUT", "/v1/config", R"("text")"), 400, "invalid_argument",
                 "document: body must be a JSON object");
  expect_refused(request("POST", "/v1/config/rollback", "null"), 400, "invalid_argument",
                 "must be a JSON object");
  expect_refused(request("POST", "/v1/leader/transfer", "3"), 400, "invalid_argument",
                 "must be a JSON object");
}

TEST(AdminRouterRefuses, UnknownFields) {
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": "v", "ttl": 5})"), 400,
                 "invalid_argument", "ttl: unknown field");
  expect_refused(request("POST", "/v1/members", R"({"id": 4, "address": "h:1", "role": 1})"),
                 400, "invalid_argument", "role: unknown field");
  expect_refused(request("POST", "/v1/config/rollback", R"({"version": 2, "force": true})"),
                 400, "invalid_argument", "force: unknown field");
  expect_refused(request("POST", "/v1/leader/transfer", R"({"target": 2})"), 400,
                 "invalid_argument", "target: unknown field");
}

TEST(AdminRouterRefuses, FieldsOfTheWrongType) {
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": 5})"), 400, "invalid_argument",
                 "value: missing or not a string");
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": "v", "prev_revision": "3"})"), 400,
                 "invalid_argument", "prev_revision: expected a non-negative whole number");
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": "v", "prev_revision": 3.5})"), 400,
                 "invalid_argument", "prev_revision");
  expect_refused(request("POST", "/v1/members", R"({"id": "4", "address": "h:1"})"), 400,
                 "invalid_argument", "id: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/members", R"({"id": 4, "address": 7000})"), 400,
                 "invalid_argument", "address: missing or not a string");
  expect_refused(request("POST", "/v1/members", R"({"id": 4, "address": "h:1", "learner": 1})"),
                 400, "invalid_argument", "learner: expected true or false");
  expect_refused(request("POST", "/v1/config/rollback", R"({"version": [2]})"), 400,
                 "invalid_argument", "version: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/config/rollback", R"({"version": 2, "if_version": true})"),
                 400, "invalid_argument", "if_version: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/leader/transfer", R"({"to": "3"})"), 400,
                 "invalid_argument", "to: expected a non-negative whole number");
}

TEST(AdminRouterRefuses, MissingFields) {
  expect_refused(request("PUT", "/v1/kv/k", "{}"), 400, "invalid_argument",
                 "value: missing or not a string");
  expect_refused(request("PUT", "/v1/kv/k", R"({"prev_revision": 3})"), 400, "invalid_argument",
                 "value: missing");
  expect_refused(request("POST", "/v1/members", R"({"address": "h:1"})"), 400,
                 "invalid_argument", "id: missing or 0");
  expect_refused(request("POST", "/v1/members", R"({"id": 0, "address": "h:1"})"), 400,
                 "invalid_argument", "id: missing or 0");
  expect_refused(request("POST", "/v1/members", R"({"id": 4})"), 400, "invalid_argument",
                 "address: missing");
  expect_refused(request("POST", "/v1/config/rollback", R"({"if_version": 3})"), 400,
                 "invalid_argument", "version: missing or 0");
  expect_refused(request("PUT", "/v1/kv/", R"({"value": "v"})"), 400, "invalid_argument",
                 "key: missing");
  expect_refused(request("DELETE", "/v1/members/"), 405, "method_not_allowed",
                 "method DELETE not allowed on /v1/members/");
}

TEST(AdminRouterRefuses, NegativeNumbers) {
  expect_refused(request("PUT", "/v1/kv/k", R"({"value": "v", "prev_revision": -1})"), 400,
                 "invalid_argument", "prev_revision: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/members", R"({"id": -4, "address": "h:1"})"), 400,
                 "invalid_argument", "id: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/config/rollback", R"({"version": -2})"), 400,
                 "invalid_argument", "version: expected a non-negative whole number");
  expect_refused(request("POST", "/v1/leader/transfer", R"({"to": -1})"), 400,
                 "invalid_argument", "to: expected a non-negative whole number");
  expect_refused(request("DELETE", "/v1/members/-3"), 400, "invalid_argument",
                 "member id: expected a positive number");
  expect_refused(request("DELETE", "/v1/kv/k?prev_revision=-1"), 400, "invalid_argument",
                 "prev_revision: expected a revision");
  expect_refused(request("PUT", "/v1/config", "{}", "-1"), 400, "invalid_argument", "If-Match");
}

TEST(AdminRouterRefuses, NumbersThatAreNotIdsOrRevisions) {
  expect_refused(request("DELETE", "/v1/members/0"), 400, "invalid_argument", "member id");
  expect_refused(request("DELETE", "/v1/members/4x"), 400, "invalid_argument", "member id");
  expect_refused(request("DELETE", "/v1/members/18446744073709551616"), 400, "invalid_argument",
                 "member id");  // 2^64
  expect_refused(request("DELETE", "/v1/kv/k?prev_revision=0"), 400, "invalid_argument",
                 "prev_revision");
  expect_refused(request("DELETE", "/v1/kv/k?prev_revision="), 400, "invalid_argument",
                 "prev_revision");
  expect_refused(request("DELETE", "/v1/kv/k?revision=3"), 400, "invalid_argument",
                 "unknown query parameter: revision=3");
  expect_refused(request("POST", "/v1/config/rollback", R"({"version": 18446744073709551616})"),
                 400, "invalid_argument", "version");
}

TEST(AdminRouterRefuses, BadIfMatch) {
  for (const char* tag : {"abc", "W/\"3\"", "\"3", "3\"", "\"\"", "3 4", "*", "0x3"}) {
    expect_refused(request("PUT", "/v1/config", "{}", tag), 400, "invalid_argument",
                   "If-Match: expected a version number");
  }
}

TEST(AdminRouterRefuses, BadPercentEscapes) {
  for (const char* target : {"/v1/kv/a%zz", "/v1/kv/a%4", "/v1/kv/a%", "/v1/kv/%g1",
                             "/v1/kv/%%41", "/v1/kv/a%4-"}) {
    expect_refused(request("GET", target), 400, "invalid_argument", "key: missing or badly");
    expect_refused(request("DELETE", target), 400, "invalid_argument", "key");
    expect_refused(request("PUT", target, R"({"value": "v"})"), 400, "invalid_argument", "key");
  }
  EXPECT_EQ(percent_decode("%41%42c"), std::optional<std::string>("ABc"));
  EXPECT_EQ(percent_decode("%2f%2F"), std::optional<std::string>("//"));
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("%+1"), std::nullopt);
  EXPECT_EQ(percent_decode("%-1"), std::nullopt);
  EXPECT_EQ(percent_decode("%1"), std::nullopt);
}

// ---------------------------------------------------------------- bad input: routes, sizes

TEST(AdminRouterRefuses, UnknownEndpointsWith404NamingThePath) {
  for (const char* target : {"/", "/nope", "/v1", "/v1/", "/v1/statusx", "/v2/status",
                             "/v1/config/nope", "/v1/leader", "/v1/kv", "/healthz/x"}) {
    expect_refused(request("GET", target), 404, "not_found", target);
  }
}

// A known endpoint asked with a method it does not answer: 405, naming the method, with the
// methods it does answer in the Allow header (as HTTP requires) and in the message.
TEST(AdminRouterRefuses, WrongMethodsWith405AndTheAllowedOnes) {
  struct Case {
    const char* method;
    const char* target;
    const char* allow;
  };
  const Case cases[] = {
      {"POST", "/healthz", "GET"},
      {"DELETE", "/readyz", "GET"},
      {"PUT", "/metrics", "GET"},
      {"POST", "/v1/status", "GET"},
      {"PUT", "/v1/members", "GET, POST"},
      {"GET", "/v1/members/3", "DELETE"},
      {"POST", "/v1/members/3", "DELETE"},
      {"DELETE", "/v1/config", "GET, PUT"},
      {"POST", "/v1/config", "GET, PUT"},
      {"GET", "/v1/config/rollback", "POST"},
      {"PUT", "/v1/config/history", "GET"},
      {"GET", "/v1/leader/transfer", "POST"},
      {"POST", "/v1/lease", "GET"},
      {"POST", "/v1/kv/k", "GET, PUT, DELETE"},
      {"PATCH", "/v1/kv/k", "GET, PUT, DELETE"},
      {"get", "/v1/status", "GET"},  // methods are case-sensitive
      {"", "/v1/status", "GET"},
  };
  for (const Case& c : cases) {
    const AdminRequest req = request(c.method, c.target, "{}");
    expect_refused(req, 405, "method_not_allowed",
                   "method " + std::string(c.method) + " not allowed on " + c.target);
    FakeNode node;
    const AdminResponse r = route(node, req);
    EXPECT_EQ(r.allow, c.allow) << c.method << " " << c.target;
    EXPECT_THAT(r.body, HasSubstr(c.allow));
  }
}

// Every method an endpoint lists in Allow does reach the node or a validation error, never 405.
TEST(AdminRouter, EveryAllowedMethodIsRouted) {
  for (const char* target :
       {"/healthz", "/readyz", "/metrics", "/v1/status", "/v1/status?x=1", "/v1/kv/k", "/v1/kv/",
        "/v1/members", "/v1/members/", "/v1/members/3", "/v1/members//", "/v1/config",
        "/v1/config/rollback", "/v1/config/history", "/v1/leader/transfer", "/v1/lease"}) {
    FakeNode node;
    const AdminResponse refused = route(node, request("PATCH", target, "{}"));
    ASSERT_EQ(refused.status, 405) << target;
    std::string_view allow = refused.allow;
    while (!allow.empty()) {
      const std::size_t comma = allow.find(", ");
      const std::string method(allow.substr(0, comma));
      FakeNode fresh;  // every call it gets answers "busy"
      const ApiError busy{Status(Errc::busy, "scripted")};
      fresh.kv_get_result = busy;
      fresh.kv_write_result = busy;
      fresh.members_result = busy;
      fresh.config_result = busy;
      fresh.history_result = busy;
      fresh.transfer_result = busy;
      fresh.lease_result = busy;
      const AdminResponse r = route(fresh, request(method, target, "{}"));
      EXPECT_NE(r.status, 405) << method << " " << target << ": " << r.body;
      EXPECT_NE(r.status, 404) << method << " " << target << ": " << r.body;
      EXPECT_TRUE(r.status == 400 || !fresh.calls.empty()) << method << " " << target;
      EXPECT_TRUE(r.allow.empty());
      allow.remove_prefix(comma == std::string_view::npos ? allow.size() : comma + 2);
    }
  }
}

TEST(AdminRouterRefuses, OversizedBodyButNotOneAtTheLimit) {
  const std::string big(AdminLimits::max_body_bytes + 1, ' ');
  expect_refused(request("PUT", "/v1/config", big), 400, "invalid_argument",
                 "request body larger than 1 MiB");
  expect_refused(request("PUT", "/v1/kv/k", big), 400, "invalid_argument", "1 MiB");

  // At the limit: a valid document padded with spaces to exactly max_body_bytes is accepted.
  FakeNode node;
  node.config_result = ConfigView{1, "{}"};
  std::string at_limit = R"({"a": 1})";
  at_limit.resize(AdminLimits::max_body_bytes, ' ');
  EXPECT_EQ(route(node, request("PUT", "/v1/config", at_limit)).status, 200);
  EXPECT_EQ(node.calls.size(), 1u);
}

TEST(AdminRouterRefuses, OversizedTargetButNotOneAtTheLimit) {
  const std::string prefix = "/v1/kv/";
  expect_refused(request("GET", prefix + std::string(AdminLimits::max_target_bytes, 'k')), 400,
                 "invalid_argument", "request target longer than 4096 bytes");

  FakeNode node;
  node.kv_get_result = KvEntryView{"k", "v", 1, 1, 1};
  const std::string key(AdminLimits::max_target_bytes - prefix.size(), 'k');
  EXPECT_EQ(route(node, request("GET", prefix + key)).status, 200);
  EXPECT_EQ(node.calls, std::vector<std::string>{"kv_get " + key});
}

// A JSON document nested `depth` levels deep: objects inside a top-level object.
std::string nested(std::size_t depth) {
  std::string s;
  for (std::size_t i = 0; i < depth; i++) s += "{\"a\":";
  s += "1";
  for (std::size_t i = 0; i < depth; i++) s += "}";
  return s;
}

TEST(AdminRouterRefuses, JsonNestedTooDeep) {
  const std::string deep = nested(AdminLimits::max_json_depth + 1);
  expect_refused(request("PUT", "/v1/config", deep), 400, "invalid_argument",
                 "not valid JSON");
  expect_refused(request("POST", "/v1/members", deep), 400, "invalid_argument",
                 "not valid JSON");
  // Far deeper than the limit: refused the same way, without exhausting the stack.
  expect_refused(request("PUT", "/v1/kv/k", std::string(100000, '[')), 400, "invalid_argument",
                 "not valid JSON");

  FakeNode node;
  node.config_result = ConfigView{1, "{}"};
  EXPECT_EQ(route(node, request("PUT", "/v1/config", nested(AdminLimits::max_json_depth)))
                .status, 200);
  EXPECT_EQ(node.calls.size(), 1u);
}

}  // namespace
}  // namespace anya::transport

namespace anya::transport {
namespace {

// Found by the admin_router fuzz target: bytes that are not UTF-8, in a key or quoted back in a
// message, made the JSON answer invalid.
TEST(AdminRouterFuzzFindings, KeyThatIsNotUtf8IsRefused) {
  expect_refused(request("GET", "/v1/kv/%C3%28"), 400, "invalid_argument", "key: not valid UTF-8");
  expect_refused(request("PUT", "/v1/kv/%FF", "{\"value\":\"x\"}"), 400, "invalid_argument",
                 "UTF-8");
}

TEST(AdminRouterFuzzFindings, MessagesQuotingNonUtf8BytesStayValidJson) {
  FakeNode node;
  const AdminResponse r = route(node, request("GET", std::string("/v1/\xd1\x92\x9a\x92", 8)));
  EXPECT_EQ(r.status, 404);
  const json::value v = parse(r);  // parse() fails the test if the body is not JSON
  ASSERT_TRUE(v.is_object()) << r.body;
  EXPECT_THAT(std::string(v.at("message").as_string()), HasSubstr("\\x9A"));
}

}  // namespace
}  // namespace anya::transport

namespace anya::transport {
namespace {

// Found by the admin_router fuzz target: a number that overflows to infinity was accepted in a
// configuration document and could not be written back as JSON.
TEST(AdminRouterFuzzFindings, NumberTooLargeToRepresentIsRefused) {
  expect_refused(request("PUT", "/v1/config", "{\"fee\":5E2222222}"), 400, "invalid_argument",
                 "number too large");
}

}  // namespace
}  // namespace anya::transport

namespace anya::transport {
namespace {

// ---- Authorization: the endpoint table walked for every role --------------------------------

// Records every audit event; fails on demand (fail closed).
struct RecordingAudit : AuditSink {
  std::vector<AuditEvent> events;
  bool fail = false;
  Status record(const AuditEvent& e) override {
    if (fail) return {Errc::io_error, "disk full"};
    events.push_back(e);
    return {};
  }
};

// A node that answers every call successfully.
FakeNode willing_node() {
  FakeNode n;
  n.kv_get_result = KvEntryView{"k", "v", 1, 1, 1};
  n.kv_write_result = KvWriteResult{9};
  n.members_result = Empty{};
  n.config_result = ConfigView{2, "{}"};
  n.history_result = std::vector<ConfigView>{};
  n.transfer_result = engine::NodeId{2};
  n.lease_result = LeaseView{1, 1, true, 10, 10};
  return n;
}

// One concrete request per row of the endpoint table, and the least built-in role that may send
// it, written down here independently of the table so that a wrong row fails the test.
struct Case {
  std::string method, target, body, least_role;
};
const std::vector<Case>& table_cases() {
  static const std::vector<Case> cases = {
      {"GET", "/healthz", "", "viewer"},
      {"GET", "/readyz", "", "viewer"},
      {"GET", "/metrics", "", "viewer"},
      {"GET", "/v1/status", "", "viewer"},
      {"GET", "/v1/kv/k", "", "viewer"},
      {"PUT", "/v1/kv/k", R"({"value": "v"})", "operator"},
      {"DELETE", "/v1/kv/k", "", "operator"},
      {"GET", "/v1/members", "", "viewer"},
      {"POST", "/v1/members", R"({"id": 4, "address": "127.0.0.1:7004"})", "admin"},
      {"GET", "/v1/members/", "", "viewer"},
      {"POST", "/v1/members/", R"({"id": 4, "address": "127.0.0.1:7004"})", "admin"},
      {"DELETE", "/v1/members/3", "", "admin"},
      {"GET", "/v1/config", "", "viewer"},
      {"PUT", "/v1/config", R"({"a": 1})", "admin"},
      {"POST", "/v1/config/rollback", R"({"version": 1})", "admin"},
      {"GET", "/v1/config/history", "", "viewer"},
      {"POST", "/v1/leader/transfer", "", "operator"},
      {"GET", "/v1/lease", "", "viewer"},
      {"GET", "/v1/tokens", "", "admin"},
      {"POST", "/v1/tokens", R"({"name": "t", "role": "viewer"})", "admin"},
      {"DELETE", "/v1/tokens/0123456789abcdef", "", "admin"},
      {"GET", "/v1/ca", "", "anyone"},
      {"GET", "/v1/audit/head", "", "anyone"},
      {"GET", "/v1/audit/heads", "", "viewer"},
      {"POST", "/v1/join", R"({"node_id": 9, "csr": "x"})", "join token"},
      {"GET", "/v1/utxo/" + std::string(64, 'a') + ":0", "", "viewer"},
      {"POST", "/v1/utxo/reserve",
       R"({"outpoint": ")" + std::string(64, 'a') + R"(:0", "owner": "w", "ttl_ms": 10})",
       "operator"},
      {"POST", "/v1/dlc", R"({"contract_id": "c", "state": "s", "nonces": [")" +
                              std::string(64, '1') + R"("]})",
       "operator"},
      {"GET", "/v1/dlc/c", "", "viewer"},
      {"POST", "/v1/dlc/c/transition", R"({"from": "a", "to": "b"})", "operator"},
      {"POST", "/v1/session", "", "operator"},
  };
  return cases;
}

int rank(const std::string& role) {
  if (role == "anyone") return 0;
  if (role == "viewer") return 1;
  if (role == "operator") return 2;
  if (role == "admin") return 3;
  return 4;  // a join token: no certificate's role reaches it
}

TEST(AdminAuthorization, EveryRowOfTheTableHasACase) {
  ASSERT_EQ(admin_endpoints().size(), table_cases().size());
  for (const Case& c : table_cases()) {
    const EndpointRule* rule = find_endpoint(c.method, c.target);
    ASSERT_NE(rule, nullptr) << c.method << " " << c.target;
    EXPECT_EQ(rule->mutates, c.method != "GET") << c.method << " " << c.target;
  }
}

TEST(AdminAuthorization, EachRoleGetsExactlyWhatItIsAllowed) {
  auth::AuthConfig config;
  for (std::string role : {"viewer", "operator", "admin"}) config.client_roles[role] = role;
  const auth::Authorizer authorizer(config);
  for (const std::string role : {"viewer", "operator", "admin"}) {
    for (const Case& c : table_cases()) {
      SCOPED_TRACE(role + ": " + c.method + " " + c.target);
      FakeNode node = willing_node();
      RecordingAudit audit;
      AdminRequest req = request(c.method, c.target, c.body);
      req.caller.client_name = role;
      Answers answers;
      const NodeServices join{"CA PEM", nullptr};
      serve_admin_request(req, node, authorizer, audit, answers.sink(), &join);
      ASSERT_EQ(answers.got.size(), 1u);
      const AdminResponse& r = answers.got[0];
      if (rank(role) >= rank(c.least_role)) {
        EXPECT_NE(r.status, 401) << r.body;
        EXPECT_NE(r.status, 403) << r.body;
        if (c.least_role != "anyone") {
          EXPECT_FALSE(node.calls.empty());
        }
        if (c.method != "GET") {
          ASSERT_EQ(audit.events.size(), 2u);
          EXPECT_EQ(audit.events[0].outcome, "requested");
          EXPECT_EQ(audit.events[1].outcome, "ok");
          EXPECT_EQ(audit.events[1].actor, "client:" + role);
        }
      } else {
        EXPECT_EQ(r.status, 403) << r.body;
        EXPECT_TRUE(node.calls.empty()) << "a refused request reached the node";
        EXPECT_TRUE(node.writes.empty());
        ASSERT_EQ(audit.events.size(), 1u);
        EXPECT_EQ(audit.events[0].outcome, "refused");
        EXPECT_EQ(audit.events[0].action, "auth.forbidden");
      }
    }
  }
}

TEST(AdminAuthorization, NoCredentialIs401AndStrangersAndNodesAre403) {
  auth::AuthConfig config;
  config.client_roles["ops"] = "admin";
  const auth::Authorizer authorizer(config);
  for (const Case& c : table_cases()) {
    SCOPED_TRACE(c.method + " " + c.target);
    if (c.least_role == "anyone") continue;  // served without a credential
    for (int who = 0; who < 4; ++who) {
      FakeNode node = willing_node();
      RecordingAudit audit;
      AdminRequest req = request(c.method, c.target, c.body);
      int expected = 403;
      if (who == 0) expected = 401;                              // nothing at all
      if (who == 1) req.caller.client_name = "stranger";         // bound to no role
      if (who == 2) req.caller.node_id = 2;                      // a node's certificate
      if (who == 3) {                                            // an unknown token
        req.caller.authorization = "Bearer nope-nope-nope-nope";
        expected = 401;
      }
      Answers answers;
      serve_admin_request(req, node, authorizer, audit, answers.sink());
      ASSERT_EQ(answers.got.size(), 1u);
      EXPECT_EQ(answers.got[0].status, expected) << answers.got[0].body;
      EXPECT_TRUE(node.calls.empty());
      EXPECT_EQ(audit.events.size(), 1u);
    }
  }
}

TEST(AdminAuthorization, AMutationThatCannotBeAuditedIsRefused) {
  auth::AuthConfig config;
  config.client_roles["ops"] = "admin";
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  RecordingAudit audit;
  audit.fail = true;
  AdminRequest req = request("PUT", "/v1/kv/wallet", R"({"value": "v"})");
  req.caller.client_name = "ops";
  Answers answers;
  serve_admin_request(req, node, authorizer, audit, answers.sink());
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(answers.got[0].status, 503);
  EXPECT_THAT(answers.got[0].body, HasSubstr("audit log"));
  EXPECT_TRUE(node.writes.empty());
  // Reads go on: only mutations need a record first.
  AdminRequest read = request("GET", "/v1/kv/wallet");
  read.caller.client_name = "ops";
  serve_admin_request(read, node, authorizer, audit, answers.sink());
  ASSERT_EQ(answers.got.size(), 2u);
  EXPECT_EQ(answers.got[1].status, 200);
}

TEST(AdminAuthorization, ReservedKeysAreNotReachableThroughKv) {
  FakeNode node = willing_node();
  for (const char* method : {"GET", "PUT", "DELETE"}) {
    const AdminResponse r = route(node, request(method, "/v1/kv/_anya%2Ftokens%2Fx",
                                                R"({"value": "v"})"));
    EXPECT_EQ(r.status, 403) << method;
  }
  EXPECT_TRUE(node.calls.empty());
}

TEST(AdminAuthorization, TokensAreCreatedAsHashesListedWithoutThemAndRevoked) {
  auth::AuthConfig config;
  config.client_roles["ops"] = "admin";
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  RecordingAudit audit;
  AdminRequest create = request("POST", "/v1/tokens", R"({"name": "ci", "role": "operator",
                                                          "ttl_seconds": 3600})");
  create.caller.client_name = "ops";
  create.now_unix_ms = 1'000'000;
  Answers answers;
  serve_admin_request(create, node, authorizer, audit, answers.sink());
  ASSERT_EQ(answers.got.size(), 1u);
  ASSERT_EQ(answers.got[0].status, 201) << answers.got[0].body;
  const json::value v = answers.body(0);
  const std::string token(v.at("token").as_string());
  const std::string id(v.at("id").as_string());
  EXPECT_EQ(v.at("expires_unix_ms").to_number<std::uint64_t>(), 1'000'000u + 3'600'000u);
  ASSERT_EQ(node.writes.size(), 1u);
  EXPECT_EQ(node.writes[0].key, std::string(auth::kTokenKeyPrefix) + id);
  EXPECT_EQ(node.writes[0].op, KvWrite::Op::cas);  // create-only
  EXPECT_EQ(node.writes[0].value.find(token.substr(token.rfind('.') + 1)), std::string::npos)
      << "the secret must not be stored";
  std::optional<auth::TokenRecord> stored = auth::decode_token_record(id, node.writes[0].value);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->created_by, "client:ops");
  // Listing shows the record without the hash.
  node.scan_result = {KvEntryView{node.writes[0].key, node.writes[0].value, 9, 9, 1}};
  AdminRequest list = request("GET", "/v1/tokens");
  list.caller.client_name = "ops";
  serve_admin_request(list, node, authorizer, audit, answers.sink());
  ASSERT_EQ(answers.got.size(), 2u);
  EXPECT_THAT(answers.got[1].body, HasSubstr("\"ci\""));
  EXPECT_THAT(answers.got[1].body, ::testing::Not(HasSubstr(stored->sha256_hex)));
  // An unknown role and a bad id are refused before anything is written.
  AdminRequest bad = request("POST", "/v1/tokens", R"({"name": "x", "role": "root"})");
  bad.caller.client_name = "ops";
  serve_admin_request(bad, node, authorizer, audit, answers.sink());
  EXPECT_EQ(answers.got.back().status, 400);
  AdminRequest bad_id = request("DELETE", "/v1/tokens/XYZ");
  bad_id.caller.client_name = "ops";
  serve_admin_request(bad_id, node, authorizer, audit, answers.sink());
  EXPECT_EQ(answers.got.back().status, 400);
  EXPECT_EQ(node.writes.size(), 1u);
  AdminRequest revoke = request("DELETE", "/v1/tokens/" + id);
  revoke.caller.client_name = "ops";
  serve_admin_request(revoke, node, authorizer, audit, answers.sink());
  EXPECT_EQ(answers.got.back().status, 200);
  ASSERT_EQ(node.writes.size(), 2u);
  EXPECT_EQ(node.writes[1].op, KvWrite::Op::del);
}

TEST(AdminReplay, ARetriedWriteWithTheSameKeyGetsTheFirstAnswerAndIsNotAppliedTwice) {
  auth::AuthConfig config;
  config.client_roles["ops"] = "admin";
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  RecordingAudit audit;
  ReplayGuard guard;
  AdminRequest put = request("PUT", "/v1/kv/wallet", R"({"value": "v"})");
  put.caller.client_name = "ops";
  put.idempotency_key = "k-1";
  put.now_unix_ms = 1000;
  Answers answers;
  serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
  serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
  ASSERT_EQ(answers.got.size(), 2u);
  EXPECT_EQ(answers.got[0].status, 200);
  EXPECT_EQ(answers.got[1].body, answers.got[0].body);
  EXPECT_EQ(node.writes.size(), 1u) << "a replayed request was applied twice";
  // The same key for another request, and another caller's same key.
  AdminRequest other = put;
  other.body = R"({"value": "w"})";
  serve_admin_request_once(other, node, authorizer, audit, guard, answers.sink());
  EXPECT_EQ(answers.got.back().status, 422);
  AdminRequest theirs = put;
  theirs.caller.client_name = "ops2";
  config.client_roles["ops2"] = "admin";
  const auth::Authorizer authorizer2(config);
  serve_admin_request_once(theirs, node, authorizer2, audit, guard, answers.sink());
  EXPECT_EQ(answers.got.back().status, 200);
  EXPECT_EQ(node.writes.size(), 2u);
  // After the keep time the key may be used again.
  put.now_unix_ms = 1000 + ReplayGuard::kKeepMs;
  serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
  EXPECT_EQ(node.writes.size(), 3u);
}

TEST(AdminReplay, AWriteStillRunningIsNotStartedAgainAndFailuresMayBeRetried) {
  auth::AuthConfig config;
  config.client_roles["ops"] = "admin";
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  node.defer = true;
  RecordingAudit audit;
  ReplayGuard guard;
  AdminRequest put = request("PUT", "/v1/kv/wallet", R"({"value": "v"})");
  put.caller.client_name = "ops";
  put.idempotency_key = "k-2";
  Answers answers;
  serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
  serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
  ASSERT_EQ(answers.got.size(), 1u);
  EXPECT_EQ(answers.got[0].status, 409);
  EXPECT_EQ(node.writes.size(), 1u);
  node.kv_write_result = ApiError{Status(Errc::busy, "slow down")};
  node.release();
  ASSERT_EQ(answers.got.size(), 2u);
  EXPECT_EQ(answers.got[1].status, 200);  // the deferred reply was scripted before
  node.defer = false;
  AdminRequest fail = put;
  fail.idempotency_key = "k-3";
  serve_admin_request_once(fail, node, authorizer, audit, guard, answers.sink());
  EXPECT_EQ(answers.got.back().status, 503);
  serve_admin_request_once(fail, node, authorizer, audit, guard, answers.sink());
  EXPECT_EQ(node.writes.size(), 3u) << "a failed attempt must not pin its key";
  EXPECT_EQ(guard.size(), 1u);
}

struct FakeIssuer : CertificateIssuer {
  mutable std::vector<engine::NodeId> issued;
  Result<std::string> issue_node(std::string_view csr, engine::NodeId node,
                                 const std::vector<std::string>&,
                                 const std::vector<std::string>&) const override {
    if (csr != "CSR") return Status(Errc::invalid_argument, "csr: not a PEM request");
    issued.push_back(node);
    return std::string("CERT for ") + std::to_string(node);
  }
};

struct JoinFixture {
  auth::NewToken token = *auth::generate_token();
  auth::TokenRecord record{token.id, "join-1", "join", token.sha256_hex, 0, "client:ops"};
  auth::Authorizer authorizer{auth::AuthConfig{{}, {{"ops", "admin"}}, {}},
                              [this](std::string_view id) -> std::optional<auth::TokenRecord> {
                                if (id != record.id) return std::nullopt;
                                return record;
                              }};
  FakeNode node = willing_node();
  RecordingAudit audit;
  FakeIssuer issuer;
  NodeServices join{"CA PEM", &issuer};
  Answers answers;

  JoinFixture() {
    node.scan_result = {KvEntryView{std::string(auth::kTokenKeyPrefix) + token.id,
                                    auth::encode_token_record(record), 7, 7, 1}};
    node.status_view.members = {MemberView{1, "127.0.0.1:1", true, true, true, 0, 3}};
  }
  const AdminResponse& send(std::string body, std::string authorization) {
    AdminRequest req = request("POST", "/v1/join", std::move(body));
    req.caller.authorization = std::move(authorization);
    serve_admin_request(req, node, authorizer, audit, answers.sink(), &join);
    return answers.got.back();
  }
};

TEST(AdminJoin, AJoinTokenIsSpentOnceAndBuysOneCertificate) {
  JoinFixture f;
  const AdminResponse& r = f.send(R"({"node_id": 4, "csr": "CSR"})", "Bearer " + f.token.token);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_THAT(r.body, HasSubstr("CERT for 4"));
  EXPECT_THAT(r.body, HasSubstr("CA PEM"));
  ASSERT_EQ(f.node.writes.size(), 1u);
  EXPECT_EQ(f.node.writes[0].op, KvWrite::Op::del);
  EXPECT_EQ(f.node.writes[0].expected_revision, std::optional<engine::Index>(7));
  // Spent: the record is gone, so a second use signs nothing.
  f.node.scan_result.clear();
  const AdminResponse& again = f.send(R"({"node_id": 5, "csr": "CSR"})",
                                      "Bearer " + f.token.token);
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_THAT(again.body, HasSubstr("already used"));
  EXPECT_EQ(f.issuer.issued, std::vector<engine::NodeId>{4});
}

TEST(AdminJoin, RefusedWithoutSpendingForAMemberIdABadCsrOrAnotherCredential) {
  JoinFixture f;
  EXPECT_EQ(f.send(R"({"node_id": 1, "csr": "CSR"})", "Bearer " + f.token.token).status, 409);
  EXPECT_EQ(f.send(R"({"node_id": 0, "csr": "CSR"})", "Bearer " + f.token.token).status, 400);
  EXPECT_EQ(f.send(R"({"node_id": 4})", "Bearer " + f.token.token).status, 400);
  EXPECT_EQ(f.send(R"({"node_id": 4, "csr": "CSR", "extra": 1})", "Bearer " + f.token.token)
                .status,
            400);
  EXPECT_TRUE(f.node.writes.empty()) << "a refused join spent its token";
  // An admin's certificate cannot sign a node certificate; an unknown token cannot either.
  AdminRequest by_admin = request("POST", "/v1/join", R"({"node_id": 4, "csr": "CSR"})");
  by_admin.caller.client_name = "ops";
  serve_admin_request(by_admin, f.node, f.authorizer, f.audit, f.answers.sink(), &f.join);
  EXPECT_EQ(f.answers.got.back().status, 403);
  EXPECT_EQ(f.send(R"({"node_id": 4, "csr": "CSR"})",
                   "Bearer anya.0123456789abcdef." + std::string(64, '0')).status,
            401);
  EXPECT_TRUE(f.node.writes.empty());
  EXPECT_TRUE(f.issuer.issued.empty());
  // Without the CA key here, the join is refused before the token is touched.
  f.join.issuer = nullptr;
  EXPECT_EQ(f.send(R"({"node_id": 4, "csr": "CSR"})", "Bearer " + f.token.token).status, 400);
  EXPECT_TRUE(f.node.writes.empty());
}

TEST(AdminJoin, TheCaCertificateIsServedToAnyone) {
  JoinFixture f;
  AdminRequest req = request("GET", "/v1/ca");
  serve_admin_request(req, f.node, f.authorizer, f.audit, f.answers.sink(), &f.join);
  ASSERT_EQ(f.answers.got.size(), 1u);
  EXPECT_EQ(f.answers.got[0].status, 200);
  EXPECT_THAT(f.answers.got[0].body, HasSubstr("CA PEM"));
  EXPECT_TRUE(f.audit.events.empty());
}

TEST(AdminJoin, ABadRequestIsRefusedBeforeTheTokenIsSpent) {
  JoinFixture f;
  const AdminResponse& r = f.send(R"({"node_id": 4, "csr": "not a csr"})",
                                  "Bearer " + f.token.token);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(f.node.writes.empty()) << "a bad request spent the join token";
  // A custom role holding node.join but no join token: refused, and nothing thrown.
  auth::AuthConfig config;
  config.custom_roles["joiner"] = {auth::Permission::node_join};
  config.client_roles["j"] = "joiner";
  const auth::Authorizer authorizer(config);
  AdminRequest req = request("POST", "/v1/join", R"({"node_id": 4, "csr": "CSR"})");
  req.caller.client_name = "j";
  serve_admin_request(req, f.node, authorizer, f.audit, f.answers.sink(), &f.join);
  EXPECT_EQ(f.answers.got.back().status, 403);
  EXPECT_TRUE(f.node.writes.empty());
}

TEST(AdminAuthorization, NobodyMakesATokenForMoreThanTheyHold) {
  auth::AuthConfig config;
  config.custom_roles["token-clerk"] = {auth::Permission::tokens_manage,
                                        auth::Permission::kv_read};
  config.client_roles["clerk"] = "token-clerk";
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  RecordingAudit audit;
  Answers answers;
  for (const char* role : {"admin", "operator", "viewer"}) {
    AdminRequest req = request("POST", "/v1/tokens",
                               std::string(R"({"name": "x", "role": ")") + role + "\"}");
    req.caller.client_name = "clerk";
    serve_admin_request(req, node, authorizer, audit, answers.sink());
    EXPECT_EQ(answers.got.back().status, 403) << role << ": " << answers.got.back().body;
  }
  AdminRequest join = request("POST", "/v1/tokens", R"({"name": "j", "role": "join"})");
  join.caller.client_name = "clerk";
  serve_admin_request(join, node, authorizer, audit, answers.sink());
  EXPECT_EQ(answers.got.back().status, 201) << answers.got.back().body;
  EXPECT_EQ(node.writes.size(), 1u);
}

TEST(AdminReplay, StrangersCannotFillTheGuard) {
  auth::AuthConfig config;
  const auth::Authorizer authorizer(config);
  FakeNode node = willing_node();
  RecordingAudit audit;
  ReplayGuard guard;
  Answers answers;
  for (int i = 0; i < 100; ++i) {
    AdminRequest put = request("PUT", "/v1/kv/k", std::string(1000, 'x'));
    put.idempotency_key = "k-" + std::to_string(i);
    serve_admin_request_once(put, node, authorizer, audit, guard, answers.sink());
    EXPECT_EQ(answers.got.back().status, 401);
  }
  EXPECT_EQ(guard.size(), 0u);
  EXPECT_TRUE(node.writes.empty());
}

}  // namespace
}  // namespace anya::transport
