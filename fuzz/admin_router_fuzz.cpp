// libFuzzer target for the admin API's request path up to the point where it would act: the
// authorization layer (endpoint table, credentials, replay guard, audit) and the router (target
// parsing, percent-decoding, JSON bodies, If-Match) against a node that answers every call at
// once. Whatever the request, it is answered exactly once, with a status the API documents, and
// every JSON answer parses; an error body names a code and a message. A request refused for its
// credential never reaches the node.
//
// Input layout: byte 0 picks the method (bits 0-2), the caller (bits 3-4: an admin certificate,
// a viewer certificate, no credential, a node certificate) and the node's mood (bit 7); then the
// target up to the first '\n', the If-Match value (also used as the Idempotency-Key) up to the
// next '\n', and the rest is the body.
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/admin/router.hpp"

namespace {

using namespace anya::transport;

// Answers everything immediately with plausible values; errors for half of the inputs so that
// both reply paths run.
class InstantNode : public NodeApi {
 public:
  explicit InstantNode(bool fail) : fail_(fail) {}
  int calls = 0;  // every call the node got
  StatusView status() override {
    calls++;
    StatusView s;
    s.node_id = 1;
    s.cluster = "fuzz";
    s.role = "leader";
    s.members.push_back(MemberView{1, "127.0.0.1:7101", true, true, true, 0, 3});
    return s;
  }
  bool alive() override {
    calls++;
    return true;
  }
  std::string metrics_text() override {
    calls++;
    return "anya_term 1\n";
  }
  template <typename T>
  void answer(Reply<T>& reply, T value) {
    calls++;
    if (fail_) {
      reply(ApiError{anya::Status(anya::Errc::not_leader, "not the leader"), 2,
                     "https://127.0.0.1:7202"});
    } else {
      reply(std::move(value));
    }
  }
  void kv_get(const std::string& key, std::optional<anya::engine::ReadMode>,
              Reply<KvEntryView> r) override {
    answer(r, KvEntryView{key, "v", 1, 2, 1});
  }
  void kv_write(KvWrite, Reply<KvWriteResult> r) override { answer(r, KvWriteResult{5}); }
  void record_write(anya::engine::Command command, std::optional<ClientRef>,
                    Reply<KvWriteResult> r) override {
    // What the router hands on must be a command the engine would accept.
    if (!anya::engine::check_command(command).is_ok()) __builtin_trap();
    answer(r, KvWriteResult{6});
  }
  std::vector<KvEntryView> kv_scan(const std::string&, std::size_t) override {
    calls++;
    return {};
  }
  void members_add(anya::engine::NodeId, std::string, bool, Reply<Empty> r) override {
    answer(r, Empty{});
  }
  void members_remove(anya::engine::NodeId, Reply<Empty> r) override { answer(r, Empty{}); }
  void config_get(Reply<ConfigView> r) override { answer(r, ConfigView{1, "{\"a\":1}"}); }
  void config_put(std::string doc, std::optional<std::uint64_t>, Reply<ConfigView> r) override {
    answer(r, ConfigView{2, std::move(doc)});
  }
  void config_rollback(std::uint64_t, std::optional<std::uint64_t>,
                       Reply<ConfigView> r) override {
    answer(r, ConfigView{3, "{}"});
  }
  void config_history(Reply<std::vector<ConfigView>> r) override {
    answer(r, std::vector<ConfigView>{ConfigView{1, "{}"}});
  }
  void leader_transfer(std::optional<anya::engine::NodeId>,
                       Reply<anya::engine::NodeId> r) override {
    answer(r, anya::engine::NodeId{2});
  }
  void lease(Reply<LeaseView> r) override { answer(r, LeaseView{1, 1, true, 0}); }

 private:
  bool fail_;
};

constexpr const char* kMethods[] = {"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"};

struct CountingAudit : AuditSink {
  anya::Status record(const AuditEvent&) override { return {}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  AdminRequest req;
  req.method = kMethods[(data[0] & 7) % 6];
  const std::size_t nl1 = in.find('\n');
  req.target = std::string(in.substr(0, nl1));
  if (nl1 != std::string_view::npos) {
    const std::string_view rest = in.substr(nl1 + 1);
    const std::size_t nl2 = rest.find('\n');
    req.if_match = std::string(rest.substr(0, nl2));
    if (nl2 != std::string_view::npos) req.body = std::string(rest.substr(nl2 + 1));
  }
  req.idempotency_key = req.if_match;
  switch ((data[0] >> 3) & 3) {
    case 0: req.caller.client_name = "ops"; break;
    case 1: req.caller.client_name = "prom"; break;
    case 2: break;
    default: req.caller.node_id = 2; break;
  }
  InstantNode node((data[0] & 0x80) != 0);
  static const auth::Authorizer authorizer(
      auth::AuthConfig{{}, {{"ops", "admin"}, {"prom", "viewer"}}, {}});
  CountingAudit audit;
  ReplayGuard guard;
  const NodeServices services{"CA", nullptr, [] { return std::string("{}"); }};
  int answers = 0;
  serve_admin_request_once(req, node, authorizer, audit, guard, [&](AdminResponse r) {
    answers++;
    ANYA_ASSERT(r.status == 200 || r.status == 201 || r.status == 400 || r.status == 401 ||
                r.status == 403 || r.status == 404 || r.status == 405 || r.status == 409 ||
                r.status == 421 || r.status == 422 || r.status == 500 || r.status == 503);
    if (r.status == 401 || (r.status == 403 && req.caller.node_id)) {
      ANYA_ASSERT(node.calls == 0);  // refused for its credential: the node saw nothing
    }
    ANYA_ASSERT((r.status == 405) == !r.allow.empty());  // a 405 says what is allowed
    if (r.content_type != "application/json") return;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(r.body, ec);
    ANYA_ASSERT(!ec);
    const bool probe =
        req.target.rfind("/readyz", 0) == 0 || req.target.rfind("/healthz", 0) == 0;
    if (r.status >= 300 && !probe) {  // the probes answer 503 with their own body
      ANYA_ASSERT(v.is_object());
      ANYA_ASSERT(v.as_object().contains("error"));
      ANYA_ASSERT(v.as_object().contains("message"));
    }
  }, &services);
  ANYA_ASSERT(answers == 1);
  return 0;
}
