#include "transport/config/node_config.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace anya::transport {
namespace {

const std::filesystem::path kFile = "/etc/anya-ha/node.toml";

constexpr std::string_view kValid = R"(
node_id = 2
cluster = "prod-signers"
data_dir = "data"

[peer]
listen = "127.0.0.1:7102"

[admin]
listen = "127.0.0.1:7202"

[tls]
ca = "ca.crt"
cert = "node.crt"
key = "/secrets/node.key"

[raft]
heartbeat_interval = "50ms"
election_timeout = "300ms"

[storage]
fsync = true
segment_size = "8MiB"

[audit]
secret_file = "audit.secret"

[auth.clients]
ops = "admin"
prometheus = "viewer"

[discovery]
method = "static"
members = ["1@127.0.0.1:7101", "2@127.0.0.1:7102", "3@127.0.0.1:7103"]

)";

// The valid document with the line starting with `key =` (first occurrence) replaced.
std::string with(std::string_view key, std::string_view line) {
  std::string text(kValid);
  const std::string needle = "\n" + std::string(key) + " = ";
  const std::size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << key;
  const std::size_t end = text.find('\n', at + 1);
  text.replace(at + 1, end - at - 1, std::string(line));
  return text;
}

TEST(NodeConfig, AuthAndAuditSections) {
  const std::string hash(64, 'a');
  std::string text(kValid);
  text += "\n[auth.roles]\ndeployer = [\"kv.read\", \"kv.write\"]\n"
          "\n[[auth.tokens]]\nname = \"ci\"\nsha256 = \"" + hash + "\"\nrole = \"deployer\"\n";
  Result<NodeConfig> c = parse_node_config(text, kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->auth.client_roles.at("ops"), "admin");
  EXPECT_EQ(c->auth.custom_roles.at("deployer").size(), 2u);
  ASSERT_EQ(c->auth.tokens.size(), 1u);
  EXPECT_EQ(c->auth.tokens[0].role, "deployer");
  EXPECT_EQ(c->audit_secret_file, "/etc/anya-ha/audit.secret");
  EXPECT_EQ(c->audit_file, "/etc/anya-ha/data/audit.log");
  // Round trip through the renderer.
  Result<NodeConfig> again = parse_node_config(render_node_config(*c, "/etc/anya-ha"), kFile);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->auth, c->auth);
  EXPECT_EQ(again->audit_file, c->audit_file);
}

TEST(NodeConfig, BadAuthIsNamed) {
  const auto error = [](std::string extra) {
    Result<NodeConfig> c = parse_node_config(std::string(kValid) + extra, kFile);
    return c.is_ok() ? std::string("(accepted)") : c.status().message();
  };
  EXPECT_NE(error("\n[auth.roles]\nx = [\"kv.frobnicate\"]\n").find("auth.roles.x: unknown permission"),
            std::string::npos);
  EXPECT_NE(error("\n[auth.roles]\nadmin = [\"kv.read\"]\n").find("built-in role"),
            std::string::npos);
  EXPECT_NE(error("\n[[auth.tokens]]\nname = \"t\"\nsha256 = \"abc\"\nrole = \"admin\"\n")
                .find("auth.tokens[0].sha256"),
            std::string::npos);
  EXPECT_NE(error("\n[[auth.tokens]]\nname = \"t\"\nrole = \"admin\"\n").find("sha256: missing"),
            std::string::npos);
  std::string no_secret(kValid);
  no_secret.erase(no_secret.find("[audit]"), std::string("[audit]\nsecret_file = \"audit.secret\"\n").size());
  Result<NodeConfig> c = parse_node_config(no_secret, kFile);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("audit.secret_file: missing"), std::string::npos);
}

TEST(NodeConfig, UnknownClientRoleIsNamed) {
  std::string text(kValid);
  text.replace(text.find("prometheus = \"viewer\""), 22, "prometheus = \"watcher\"");
  Result<NodeConfig> c = parse_node_config(text, kFile);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("auth.clients.prometheus: unknown role 'watcher'"),
            std::string::npos)
      << c.status().message();
}

TEST(NodeConfig, ValidDocumentParsesWithDefaults) {
  Result<NodeConfig> c = parse_node_config(kValid, kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->node_id, 2u);
  EXPECT_EQ(c->cluster, "prod-signers");
  EXPECT_EQ(c->data_dir, "/etc/anya-ha/data");
  EXPECT_EQ(c->tls_ca, "/etc/anya-ha/ca.crt");
  EXPECT_EQ(c->tls_key, "/secrets/node.key");
  EXPECT_EQ(c->peer_listen, (HostPort{"127.0.0.1", 7102}));
  EXPECT_EQ(c->peer_advertise, c->peer_listen);  // defaults to listen
  EXPECT_EQ(c->heartbeat_interval_ms, 50u);
  EXPECT_EQ(c->election_timeout_ms, 300u);
  EXPECT_EQ(c->effective_election_jitter_ms(), 100u);  // a third of the timeout unless set
  EXPECT_EQ(c->segment_bytes, 8u << 20);
  EXPECT_TRUE(c->pre_vote);
  EXPECT_TRUE(c->check_quorum);
  EXPECT_EQ(c->reads, engine::ReadMode::linearizable);
  EXPECT_EQ(c->max_clock_drift_ppm, 50'000u);
  ASSERT_EQ(c->members.size(), 3u);
  EXPECT_EQ(c->members[2], (StaticMember{3, {"127.0.0.1", 7103}}));
  EXPECT_NE(c->cluster_id(), 0u);
}

TEST(NodeConfig, RenderParsesBackToTheSameConfig) {
  Result<NodeConfig> c = parse_node_config(kValid, kFile);
  ASSERT_TRUE(c.is_ok());
  c->election_timeout_ms = 2000;
  c->heartbeat_interval_ms = 100;
  c->fsync = false;
  c->reads = engine::ReadMode::lease;
  c->max_clock_drift_ppm = 20'000;
  const std::string text = render_node_config(*c, "/etc/anya-ha");
  Result<NodeConfig> back = parse_node_config(text, kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(render_node_config(*back, "/etc/anya-ha"), text);
  EXPECT_EQ(back->election_timeout_ms, 2000u);
  EXPECT_FALSE(back->fsync);
  EXPECT_EQ(back->reads, engine::ReadMode::lease);
  EXPECT_EQ(back->max_clock_drift_ppm, 20'000u);
  EXPECT_EQ(back->data_dir, c->data_dir);
  EXPECT_EQ(back->tls_key, c->tls_key);
}

TEST(NodeConfig, BitcoinSectionDefaultsAndRoundTrip) {
  Result<NodeConfig> plain = parse_node_config(kValid, kFile);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(plain->bitcoin, BitcoinConfig{}) << "no [bitcoin]: no probe, the defaults";
  EXPECT_TRUE(plain->bitcoin.chain_probe.empty());
  EXPECT_EQ(plain->bitcoin.max_blocks_behind, 2u);
  const std::string text = std::string(kValid) +
                           "[bitcoin]\n"
                           "chain_probe = \"/usr/local/bin/chain-view --rpc \\\"x y\\\"\"\n"
                           "max_blocks_behind = 0\n"
                           "chain_probe_interval = \"250ms\"\n"
                           "chain_probe_timeout = \"3s\"\n";
  Result<NodeConfig> c = parse_node_config(text, kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->bitcoin.chain_probe, "/usr/local/bin/chain-view --rpc \"x y\"");
  EXPECT_EQ(c->bitcoin.max_blocks_behind, 0u) << "0: not a single block behind is allowed";
  EXPECT_EQ(c->bitcoin.chain_probe_interval_ms, 250u);
  EXPECT_EQ(c->bitcoin.chain_probe_timeout_ms, 3000u);
  Result<NodeConfig> back =
      parse_node_config(render_node_config(*c, "/etc/anya-ha"), kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->bitcoin, c->bitcoin);
}

TEST(NodeConfig, ClusterIdDependsOnTheName) {
  NodeConfig a, b;
  a.cluster = "one";
  b.cluster = "two";
  EXPECT_NE(a.cluster_id(), b.cluster_id());
}

struct BadCase {
  std::string key;       // the line to replace (or "" to append `line`)
  std::string line;
  std::string expected;  // a regex the error must match
};

void PrintTo(const BadCase& bad, std::ostream* out) { *out << bad.line; }

class NodeConfigBadValue : public ::testing::TestWithParam<BadCase> {};

TEST_P(NodeConfigBadValue, IsRefusedNamingTheField) {
  const BadCase& bad = GetParam();
  const std::string text =
      bad.key.empty() ? std::string(kValid) + bad.line + "\n" : with(bad.key, bad.line);
  Result<NodeConfig> c = parse_node_config(text, kFile);
  ASSERT_FALSE(c.is_ok()) << "accepted: " << bad.line;
  EXPECT_EQ(c.status().code(), Errc::invalid_argument);
  EXPECT_TRUE(std::regex_search(c.status().message(), std::regex(bad.expected)))
      << c.status().message() << "\n  does not match: " << bad.expected;
  EXPECT_EQ(c.status().message().rfind("node.toml:", 0), 0u) << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, NodeConfigBadValue,
    ::testing::Values(
        BadCase{"node_id", "node_id = 0", "node_id: must be a positive"},
        BadCase{"node_id", "node_id = -3", "node_id: must not be negative"},
        BadCase{"node_id", "node_id = \"two\"", "node_id: expected a whole number"},
        BadCase{"node_id", "node_idx = 2", "node_id: missing"},
        BadCase{"cluster", "cluster = \"\"", "cluster: must be 1 to 64"},
        BadCase{"cluster", "cluster = \"a b\"", "cluster: only letters"},
        BadCase{"cluster", "cluster = 7", "cluster: expected a string"},
        BadCase{"data_dir", "data_dir = \"\"", "data_dir: must not be empty"},
        BadCase{"listen", "listen = \"127.0.0.1\"", "peer.listen: .* is not HOST:PORT"},
        BadCase{"listen", "listen = \"127.0.0.1:0\"", "peer.listen: .*port must be 1 to 65535"},
        BadCase{"listen", "listen = \"127.0.0.1:70000\"", "peer.listen: .*port must be"},
        BadCase{"listen", "listen = \"[::1]:7000\"", "peer.listen: .*IPv6"},
        BadCase{"", "[admin2]\nx = 1", "admin2: unknown field"},
        BadCase{"ca", "ca = 3", "tls.ca: expected a string"},
        BadCase{"ca", "cax = \"ca.crt\"", "tls.cax: unknown field|tls.ca: missing"},
        BadCase{"heartbeat_interval", "heartbeat_interval = \"50\"",
                "raft.heartbeat_interval: .*needs a unit"},
        BadCase{"heartbeat_interval", "heartbeat_interval = 50",
                "raft.heartbeat_interval: expected a duration"},
        BadCase{"heartbeat_interval", "heartbeat_interval = \"20s\"",
                "raft.heartbeat_interval: must be between"},
        BadCase{"heartbeat_interval", "heartbeat_interval = \"fast\"",
                "raft.heartbeat_interval: .*not a duration"},
        BadCase{"election_timeout", "election_timeout = \"100ms\"",
                "raft.election_timeout: must be at least 3 heartbeat intervals \\(150ms\\)"},
        BadCase{"election_timeout", "election_timeout = \"2m\"",
                "raft.election_timeout: must be at most 60s"},
        BadCase{"election_timeout", "electon_timeout = \"1s\"", "raft.electon_timeout: unknown"},
        BadCase{"election_timeout", "election_timeout = \"300ms\"\nelection_jitter = \"1s\"",
                "raft.election_jitter: must be between 1ms and raft.election_timeout"},
        BadCase{"election_timeout", "election_timeout = \"300ms\"\nelection_jitter = \"0\"",
                "raft.election_jitter: must be between"},
        BadCase{"election_timeout", "election_timeout = \"300ms\"\nreads = \"eventual\"",
                "raft.reads: 'eventual': expected linearizable, lease or serializable"},
        BadCase{"election_timeout", "election_timeout = \"300ms\"\nmax_clock_drift = 0.5",
                "raft.max_clock_drift: expected a ratio from 0 to below 0.5"},
        BadCase{"election_timeout", "election_timeout = \"300ms\"\nmax_clock_drift = \"5%\"",
                "raft.max_clock_drift: expected a ratio"},
        BadCase{"fsync", "fsync = \"yes\"", "storage.fsync: expected true or false"},
        BadCase{"segment_size", "segment_size = \"1KiB\"", "storage.segment_size: must be"},
        BadCase{"segment_size", "segment_size = \"8MB\"", "storage.segment_size: .*unit must be"},
        BadCase{"method", "method = \"dns\"", "discovery.method: \"dns\" is not supported"},
        BadCase{"members", "members = \"1@a:1\"", "discovery.members: expected a list"},
        BadCase{"members", "members = [\"1@127.0.0.1:7101\", \"127.0.0.1:7102\"]",
                "discovery.members\\[1\\]: expected \"ID@HOST:PORT\""},
        BadCase{"members", "members = [\"x@127.0.0.1:7102\"]",
                "discovery.members\\[0\\]: node id must be"},
        BadCase{"members", "members = [\"1@127.0.0.1:7101\", \"3@127.0.0.1:7103\"]",
                "discovery.members: must include this node \\(2\\)"},
        BadCase{"members",
                "members = [\"1@127.0.0.1:7101\", \"2@127.0.0.1:7102\", \"1@127.0.0.1:7109\"]",
                "discovery.members: node 1 is listed twice"},
        BadCase{"members",
                "members = [\"1@127.0.0.1:7101\", \"2@127.0.0.1:7102\", \"3@127.0.0.1:7101\"]",
                "discovery.members: address 127.0.0.1:7101 is listed twice"},
        BadCase{"members", "members = [\"1@127.0.0.1:7101\", \"2@127.0.0.1:7999\"]",
                "discovery.members: this node \\(2\\) is listed at 127.0.0.1:7999"},
        BadCase{"", "[log]\nlevel = \"loud\"", "log.level: must be error, warn, info or debug"},
        BadCase{"", "[bitcoin]\nchain_probe = \"\"",
                "bitcoin.chain_probe: must not be empty \\(leave it out for no probe\\)"},
        BadCase{"", "[bitcoin]\nchain_probe = [\"bitcoin-cli\"]",
                "bitcoin.chain_probe: expected a string"},
        BadCase{"", "[bitcoin]\nchain_probe = \"" + std::string(4097, 'x') + "\"",
                "bitcoin.chain_probe: longer than 4096 bytes"},
        BadCase{"", "[bitcoin]\nchain_probe = \"a\\u0000b\"",
                "bitcoin.chain_probe: must not contain a NUL"},
        BadCase{"", "[bitcoin]\nmax_blocks_behind = -1",
                "bitcoin.max_blocks_behind: must not be negative"},
        BadCase{"", "[bitcoin]\nmax_blocks_behind = \"2\"",
                "bitcoin.max_blocks_behind: expected a whole number"},
        BadCase{"", "[bitcoin]\nmax_blocks_behind = 1000001",
                "bitcoin.max_blocks_behind: must be at most 1000000"},
        BadCase{"", "[bitcoin]\nchain_probe_interval = \"5ms\"",
                "bitcoin.chain_probe_interval: must be between 10ms and 1h"},
        BadCase{"", "[bitcoin]\nchain_probe_interval = 1000",
                "bitcoin.chain_probe_interval: expected a duration"},
        BadCase{"", "[bitcoin]\nchain_probe_timeout = \"2m\"",
                "bitcoin.chain_probe_timeout: must be between 10ms and 60s"},
        BadCase{"", "[bitcoin]\nchain_probe_timeout = \"soon\"",
                "bitcoin.chain_probe_timeout: .*not a duration"},
        BadCase{"", "[bitcoin]\nchain_probe_interval_ms = 1000",
                "bitcoin.chain_probe_interval_ms: unknown field"},
        BadCase{"node_id", "node_id = 2\nbitcoin = 3", "bitcoin: expected a table \\[bitcoin\\]"},
        BadCase{"", "unexpected = 1", "unexpected: unknown field"},
        BadCase{"", "this is not toml", "node.toml:[0-9]+:[0-9]+: "}));

TEST(NodeConfig, AdminPortMustDifferFromThePeerPort) {
  Result<NodeConfig> c = parse_node_config(
      with("listen", "listen = \"127.0.0.1:7202\""), kFile);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("admin.listen: must differ from peer.listen"),
            std::string::npos)
      << c.status().message();
}

TEST(NodeConfig, MissingFileNamesIt) {
  Result<NodeConfig> c = load_node_config("/nonexistent/anya.toml");
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("/nonexistent/anya.toml"), std::string::npos);
}

TEST(Durations, ParseWithUnits) {
  EXPECT_EQ(*parse_duration_ms("50ms"), 50u);
  EXPECT_EQ(*parse_duration_ms("5s"), 5000u);
  EXPECT_EQ(*parse_duration_ms("2m"), 120000u);
  EXPECT_EQ(*parse_duration_ms("1h"), 3600000u);
  EXPECT_EQ(*parse_duration_ms("1500us"), 2u);  // rounded up to whole milliseconds
  EXPECT_EQ(*parse_duration_ms("0"), 0u);
  EXPECT_FALSE(parse_duration_ms("5").is_ok());
  EXPECT_FALSE(parse_duration_ms("ms").is_ok());
  EXPECT_FALSE(parse_duration_ms("5 s").is_ok());
  EXPECT_FALSE(parse_duration_ms("99999999999999999999s").is_ok());
  EXPECT_EQ(format_duration_ms(300), "300ms");
  EXPECT_EQ(format_duration_ms(5000), "5s");
  EXPECT_EQ(format_duration_ms(120000), "2m");
}

TEST(Sizes, ParseWithUnits) {
  EXPECT_EQ(*parse_size_bytes("64MiB"), 64u << 20);
  EXPECT_EQ(*parse_size_bytes("4096"), 4096u);
  EXPECT_EQ(*parse_size_bytes("1GiB"), 1u << 30);
  EXPECT_FALSE(parse_size_bytes("64MB").is_ok());
  EXPECT_FALSE(parse_size_bytes("MiB").is_ok());
  EXPECT_FALSE(parse_size_bytes("99999999999GiB").is_ok());
  EXPECT_EQ(format_size_bytes(64u << 20), "64MiB");
  EXPECT_EQ(format_size_bytes(1536), "1536B");
  EXPECT_EQ(format_size_bytes(3u << 10), "3KiB");
}

}  // namespace
}  // namespace anya::transport

namespace anya::transport {
namespace {

// Found by the node_config fuzz target: a path holding a control character rendered to TOML
// that did not parse back.
TEST(NodeConfig, RenderEscapesControlCharactersInPaths) {
  Result<NodeConfig> c = parse_node_config(kValid, kFile);
  ASSERT_TRUE(c.is_ok());
  c->tls_cert = "/etc/anya-ha/odd\rname\t.crt";
  const std::string text = render_node_config(*c, "/etc/anya-ha");
  Result<NodeConfig> back = parse_node_config(text, kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(back->tls_cert, c->tls_cert);
}

}  // namespace
}  // namespace anya::transport

// [discovery]: methods and their sub-tables.
namespace anya::transport {
namespace {

// kValid with discovery.methods set to `methods` and `tables` appended (after [discovery]).
std::string with_discovery(std::string_view methods, std::string_view tables) {
  std::string text = with("method", "methods = " + std::string(methods));
  return text + std::string(tables) + "\n";
}

constexpr std::string_view kAllMethods = R"(["static", "dns_srv", "kubernetes", "multicast"])";
constexpr std::string_view kAllTables = R"(
[discovery.dns_srv]
domain = "cluster.example"
nameserver = "127.0.0.1:5353"
min_refresh = "1s"
max_refresh = "1m"
timeout = "500ms"

[discovery.kubernetes]
api_server = "https://127.0.0.1:6443"
namespace = "bitcoin"
service = "anya-ha"
token_file = "token"
ca_file = "/var/run/k8s/ca.crt"
port_name = "peer"
mode = "watch"
interval = "30s"
timeout = "3s"
node_id_offset = 0

[discovery.multicast]
group = "239.255.1.2"
port = 7300
interface = "127.0.0.1"
interval = "500ms"
secret_file = "multicast.secret"
replay_window = "10s"
)";

TEST(NodeConfigDiscovery, DefaultsAreTheStaticListOnly) {
  Result<NodeConfig> c = parse_node_config(kValid, kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->discovery.methods, std::vector<std::string>{"static"});
  EXPECT_EQ(c->discovery.dns_srv, DnsSrvDiscoveryConfig{});
  EXPECT_EQ(c->discovery.kubernetes.node_id_offset, 1u);
  EXPECT_EQ(c->discovery.multicast.group, "239.255.42.99");
}

TEST(NodeConfigDiscovery, EveryMethodParsesAndRendersBack) {
  Result<NodeConfig> c = parse_node_config(with_discovery(kAllMethods, kAllTables), kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const DiscoveryConfig& d = c->discovery;
  EXPECT_EQ(d.methods.size(), 4u);
  EXPECT_EQ(d.dns_srv.domain, "cluster.example");
  EXPECT_EQ(d.dns_srv.service, "_anya-ha._tcp");
  EXPECT_EQ(d.dns_srv.nameserver, (HostPort{"127.0.0.1", 5353}));
  EXPECT_EQ(d.dns_srv.min_refresh_ms, 1000u);
  EXPECT_EQ(d.dns_srv.max_refresh_ms, 60'000u);
  EXPECT_EQ(d.kubernetes.namespace_name, "bitcoin");
  EXPECT_EQ(d.kubernetes.token_file, "/etc/anya-ha/token");
  EXPECT_EQ(d.kubernetes.mode, KubernetesDiscoveryConfig::Mode::watch);
  EXPECT_EQ(d.kubernetes.node_id_offset, 0u);
  EXPECT_EQ(d.multicast.port, 7300u);
  EXPECT_EQ(d.multicast.secret_file, "/etc/anya-ha/multicast.secret");
  EXPECT_EQ(d.multicast.replay_window_ms, 10'000u);
  const std::string text = render_node_config(*c, "/etc/anya-ha");
  Result<NodeConfig> back = parse_node_config(text, kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(back->discovery, c->discovery);
  EXPECT_EQ(render_node_config(*back, "/etc/anya-ha"), text);
}

TEST(NodeConfigDiscovery, AJoiningNodeMayHaveNoStaticList) {
  std::string text = with_discovery(R"(["dns_srv"])",
                                    "[discovery.dns_srv]\ndomain = \"cluster.example\"\n");
  const std::size_t members = text.find("members = ");
  ASSERT_NE(members, std::string::npos);
  text = text.substr(0, members) + "join = true\n" +
         text.substr(text.find('\n', members) + 1);
  Result<NodeConfig> c = parse_node_config(text, kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string() << "\n" << text;
  EXPECT_TRUE(c->join);
  EXPECT_TRUE(c->members.empty());
}

struct BadDiscovery {
  std::string methods;
  std::string tables;
  std::string expected;  // a regex the error must match
};
void PrintTo(const BadDiscovery& bad, std::ostream* out) { *out << bad.methods << bad.tables; }

class NodeConfigBadDiscovery : public ::testing::TestWithParam<BadDiscovery> {};

TEST_P(NodeConfigBadDiscovery, IsRefusedNamingTheField) {
  const BadDiscovery& bad = GetParam();
  Result<NodeConfig> c = parse_node_config(with_discovery(bad.methods, bad.tables), kFile);
  ASSERT_FALSE(c.is_ok()) << "accepted: " << bad.methods << bad.tables;
  EXPECT_EQ(c.status().code(), Errc::invalid_argument);
  EXPECT_TRUE(std::regex_search(c.status().message(), std::regex(bad.expected)))
      << c.status().message() << "\n  does not match: " << bad.expected;
}

const std::string kDns = "[discovery.dns_srv]\ndomain = \"cluster.example\"\n";
const std::string kK8s = "[discovery.kubernetes]\nservice = \"anya-ha\"\n";
const std::string kMc = "[discovery.multicast]\nsecret_file = \"s\"\n";

INSTANTIATE_TEST_SUITE_P(
    EveryField, NodeConfigBadDiscovery,
    ::testing::Values(
        BadDiscovery{"[]", "", "discovery.methods: must name at least one"},
        BadDiscovery{"\"static\"", "", "discovery.methods: expected a list of strings"},
        BadDiscovery{"[1]", "", "discovery.methods: expected a list of strings"},
        BadDiscovery{"[\"static\", \"mdns\"]", "", "discovery.methods: \"mdns\" is not supp"},
        BadDiscovery{"[\"static\", \"static\"]", "", "discovery.methods: \"static\" is listed tw"},
        BadDiscovery{"[\"static\"]\nmethod = \"static\"", "", "give either method or methods"},
        BadDiscovery{"[\"static\"]\nrefresh = \"1s\"", "", "discovery.refresh: unknown field"},
        BadDiscovery{"[\"static\"]", kDns, "discovery.dns_srv: configured but \"dns_srv\" is not"},
        BadDiscovery{"[\"dns_srv\"]", "", "discovery.dns_srv.domain: missing"},
        BadDiscovery{"[\"dns_srv\"]", "[discovery.dns_srv]\ndomain = \"a..b\"",
                     "discovery.dns_srv.domain: not a DNS name"},
        BadDiscovery{"[\"dns_srv\"]", "[discovery.dns_srv]\ndomain = 7",
                     "discovery.dns_srv.domain: expected a string"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "service = \"anya-ha.tcp\"",
                     "discovery.dns_srv.service: expected a service label"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "nameserver = \"ns.example:53\"",
                     "discovery.dns_srv.nameserver: expected an IPv4 address"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "nameserver = \"127.0.0.1\"",
                     "discovery.dns_srv.nameserver: .*is not HOST:PORT"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "min_refresh = \"10ms\"",
                     "discovery.dns_srv.min_refresh: must be between 100ms and 24h"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "min_refresh = 5",
                     "discovery.dns_srv.min_refresh: expected a duration"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "min_refresh = \"10s\"\nmax_refresh = \"5s\"",
                     "discovery.dns_srv.max_refresh: must be between 10s and 24h"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "timeout = \"10m\"",
                     "discovery.dns_srv.timeout: must be between"},
        BadDiscovery{"[\"dns_srv\"]", kDns + "ttl = 5", "discovery.dns_srv.ttl: unknown field"},
        BadDiscovery{"[\"kubernetes\"]", "", "discovery.kubernetes.service: missing"},
        BadDiscovery{"[\"kubernetes\"]", "[discovery.kubernetes]\nservice = \"Anya_HA\"",
                     "discovery.kubernetes.service: not a Kubernetes name"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "namespace = \"-x\"",
                     "discovery.kubernetes.namespace: not a Kubernetes name"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "api_server = \"http://10.0.0.1:443\"",
                     "discovery.kubernetes.api_server: expected https://HOST:PORT"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "mode = \"stream\"",
                     "discovery.kubernetes.mode: \"stream\": expected \"poll\" or \"watch\""},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "interval = \"1ms\"",
                     "discovery.kubernetes.interval: must be between"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "timeout = \"soon\"",
                     "discovery.kubernetes.timeout: .*not a duration"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "node_id_offset = -1",
                     "discovery.kubernetes.node_id_offset: must not be negative"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "node_id_offset = 2000000",
                     "discovery.kubernetes.node_id_offset: must be at most"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "token_file = \"\"",
                     "discovery.kubernetes.token_file: must not be empty"},
        BadDiscovery{"[\"kubernetes\"]", kK8s + "label = \"x\"",
                     "discovery.kubernetes.label: unknown field"},
        BadDiscovery{"[\"multicast\"]", "", "discovery.multicast.secret_file: missing"},
        BadDiscovery{"[\"multicast\"]", kMc + "group = \"10.0.0.1\"",
                     "discovery.multicast.group: expected an IPv4 multicast address"},
        BadDiscovery{"[\"multicast\"]", kMc + "group = \"239.1.1\"",
                     "discovery.multicast.group: expected"},
        BadDiscovery{"[\"multicast\"]", kMc + "port = 0", "discovery.multicast.port: must be 1"},
        BadDiscovery{"[\"multicast\"]", kMc + "port = \"7199\"",
                     "discovery.multicast.port: expected a whole number"},
        BadDiscovery{"[\"multicast\"]", kMc + "interface = \"lo\"",
                     "discovery.multicast.interface: expected an IPv4 address"},
        BadDiscovery{"[\"multicast\"]", kMc + "interval = \"2h\"",
                     "discovery.multicast.interval: must be between 10ms and 1h"},
        BadDiscovery{"[\"multicast\"]", kMc + "replay_window = \"1ms\"",
                     "discovery.multicast.replay_window: must be between"},
        BadDiscovery{"[\"multicast\"]", kMc + "ttl = 4", "discovery.multicast.ttl: unknown field"},
        BadDiscovery{"[\"multicast\"]", "[discovery.multicast]\nsecret_file = 3",
                     "discovery.multicast.secret_file: expected a string"},
        BadDiscovery{"[\"static\"]\nmulticast = 1", "",
                     "discovery.multicast: expected a table"}));

// ---- [health] ----------------------------------------------------------------------------------

constexpr std::string_view kHealth = R"(
[health]
aggregate = "at_least:2"
resource_interval = "2s"
window = "30s"
resource_fall = 3
max_cpu_percent = 90
max_memory_percent = 92.5
min_disk_free_percent = 5
min_disk_free = "2GiB"
max_fd_percent = 80

[[health.probe]]
name = "signer-http"
type = "http"
url = "https://signer.local:8443/health?deep=1"
ca_file = "signer-ca.crt"
expect_status = 204
interval = "1s"
fall = 2
weight = 3

[[health.probe]]
name = "bitcoind-rpc"
type = "tcp"
address = "127.0.0.1:8332"

[[health.probe]]
name = "wallet-check"
type = "exec"
command = ["/usr/local/bin/wallet-check", "--quiet", "a \"quoted\" arg"]
interval = "10s"
timeout = "3s"
rise = 4
)";

TEST(NodeConfig, HealthSectionParsesAndRoundTrips) {
  Result<NodeConfig> plain = parse_node_config(kValid, kFile);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(plain->health, HealthConfig{}) << "no [health]: nothing monitored";
  EXPECT_FALSE(plain->health.enabled());

  Result<NodeConfig> c = parse_node_config(std::string(kValid) + std::string(kHealth), kFile);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const HealthConfig& h = c->health;
  EXPECT_TRUE(h.enabled());
  EXPECT_EQ(engine::health::aggregation_text(h.aggregate), "at_least:2");
  EXPECT_EQ(h.resource_interval_ms, 2000u);
  EXPECT_EQ(h.window_ms, 30'000u);
  EXPECT_EQ(h.resource_fall, 3u);
  EXPECT_EQ(h.resource_rise, 2u);
  EXPECT_EQ(h.limits.max_cpu_percent, 90.0);
  EXPECT_EQ(h.limits.max_memory_percent, 92.5);
  EXPECT_EQ(h.limits.min_disk_free_bytes, 2ull << 30);
  ASSERT_EQ(h.probes.size(), 3u);
  const HealthProbeConfig& web = h.probes[0];
  EXPECT_EQ(web.spec.kind, engine::health::ProbeKind::http);
  EXPECT_TRUE(web.url.https);
  EXPECT_EQ(web.url.host, "signer.local");
  EXPECT_EQ(web.url.port, 8443);
  EXPECT_EQ(web.url.target, "/health?deep=1");
  EXPECT_EQ(web.ca_file, "/etc/anya-ha/signer-ca.crt");
  EXPECT_EQ(web.expect_status, 204u);
  EXPECT_EQ(web.spec.interval_ms, 1000u);
  EXPECT_EQ(web.spec.timeout_ms, 500u) << "default timeout: half an interval under 4s";
  EXPECT_EQ(web.spec.fall, 2u);
  EXPECT_EQ(web.spec.rise, 2u);
  EXPECT_EQ(web.spec.weight, 3u);
  EXPECT_EQ(h.probes[1].address, (HostPort{"127.0.0.1", 8332}));
  EXPECT_EQ(h.probes[1].spec.interval_ms, 5000u);
  EXPECT_EQ(h.probes[1].spec.timeout_ms, 2000u);
  EXPECT_EQ(h.probes[2].command.size(), 3u);
  EXPECT_EQ(h.probes[2].command[2], "a \"quoted\" arg");
  EXPECT_EQ(h.probes[2].spec.rise, 4u);

  const std::string text = render_node_config(*c, "/etc/anya-ha");
  Result<NodeConfig> back = parse_node_config(text, kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(back->health, c->health);
  EXPECT_EQ(render_node_config(*back, "/etc/anya-ha"), text);
}

TEST(NodeConfig, RenderSkipsCallbackProbes) {
  Result<NodeConfig> c = parse_node_config(kValid, kFile);
  ASSERT_TRUE(c.is_ok());
  HealthProbeConfig cb;
  cb.spec.name = "in-process";
  cb.spec.kind = engine::health::ProbeKind::callback;
  c->health.probes.push_back(cb);
  c->health.limits.max_cpu_percent = 100.0 / 3;  // needs 17 digits to read back the same
  ASSERT_TRUE(validate(*c).is_ok());
  Result<NodeConfig> back = parse_node_config(render_node_config(*c, "/etc/anya-ha"), kFile);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(back->health.probes.empty()) << "a function in a program is not in a file";
  EXPECT_EQ(back->health.limits.max_cpu_percent, 100.0 / 3);
}

TEST(ProbeUrls, ParseWithDefaultsAndRefuseWhatCannotBeSent) {
  Result<ProbeUrl> u = parse_probe_url("http://127.0.0.1");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->to_string(), "http://127.0.0.1:80/");
  u = parse_probe_url("https://svc?x=1");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/?x=1");
  for (std::string_view bad : {"ftp://x/", "http://", "http://:80/", "http://a:0/",
                               "http://a:99999/", "http://u@a/", "http://a/#frag",
                               "http://[::1]:80/", "http://a/b c", "http://a b/"}) {
    EXPECT_FALSE(parse_probe_url(bad).is_ok()) << bad;
  }
}

struct BadHealth {
  std::string text;      // appended to the valid document
  std::string expected;  // a regex the error must match
};

void PrintTo(const BadHealth& bad, std::ostream* out) { *out << bad.text; }

class NodeConfigBadHealth : public ::testing::TestWithParam<BadHealth> {};

TEST_P(NodeConfigBadHealth, IsRefusedNamingTheField) {
  Result<NodeConfig> c = parse_node_config(std::string(kValid) + GetParam().text + "\n", kFile);
  ASSERT_FALSE(c.is_ok()) << "accepted: " << GetParam().text;
  EXPECT_EQ(c.status().code(), Errc::invalid_argument);
  EXPECT_TRUE(std::regex_search(c.status().message(), std::regex(GetParam().expected)))
      << c.status().message() << "\n  does not match: " << GetParam().expected;
  EXPECT_EQ(c.status().message().rfind("node.toml: health.", 0), 0u) << c.status().message();
}

const std::string kHttp = "[[health.probe]]\nname = \"web\"\ntype = \"http\"\n";
const std::string kHttpUrl = kHttp + "url = \"http://127.0.0.1:8080/health\"\n";
const std::string kTcp = "[[health.probe]]\nname = \"db\"\ntype = \"tcp\"\n";
const std::string kExec = "[[health.probe]]\nname = \"x\"\ntype = \"exec\"\n";

std::string probes(int count) {
  std::string out;
  for (int i = 0; i < count; i++) {
    out += "[[health.probe]]\nname = \"p" + std::to_string(i) +
           "\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, NodeConfigBadHealth,
    ::testing::Values(
        BadHealth{"[health]\naggregate = \"most\"", "health.aggregate: \"most\": expected"},
        BadHealth{"[health]\naggregate = \"at_least:0\"", "health.aggregate: .*positive"},
        BadHealth{"[health]\naggregate = 2", "health.aggregate: expected a string"},
        BadHealth{"[health]\naggregate = \"at_least:2\"\n" + kTcp + "address = \"a:1\"",
                  "health.aggregate: at_least:2 needs at least 2 probes; 1 are configured"},
        BadHealth{"[health]\naggregate = \"weighted:5\"\n" + kTcp + "address = \"a:1\"\n"
                  "weight = 4",
                  "health.aggregate: weighted:5 is more than the probes' weights add up to"},
        BadHealth{"[health]\nresource_interval = \"10ms\"",
                  "health.resource_interval: must be between 100ms and 1h"},
        BadHealth{"[health]\nresource_interval = 5", "health.resource_interval: expected a "
                                                     "duration"},
        BadHealth{"[health]\nwindow = \"100ms\"", "health.window: must be between 1s and 1h"},
        BadHealth{"[health]\nresource_fall = 0", "health.resource_fall: must be between 1"},
        BadHealth{"[health]\nresource_rise = -1", "health.resource_rise: must not be negative"},
        BadHealth{"[health]\nmax_cpu_percent = 150", "health.max_cpu_percent: must be between"},
        BadHealth{"[health]\nmax_cpu_percent = \"90%\"",
                  "health.max_cpu_percent: expected a number"},
        BadHealth{"[health]\nmax_memory_percent = 0", "health.max_memory_percent: must be"},
        BadHealth{"[health]\nmin_disk_free_percent = 100", "health.min_disk_free_percent: must"},
        BadHealth{"[health]\nmin_disk_free = \"2GB\"", "health.min_disk_free: .*unit must be"},
        BadHealth{"[health]\nmin_disk_free = 0", "health.min_disk_free: must be more than 0"},
        BadHealth{"[health]\nmax_fd_percent = -5", "health.max_fd_percent: must be between"},
        BadHealth{"[health]\nmax_cpu = 90", "health.max_cpu: unknown field"},
        BadHealth{"[health]\nprobe = 3", "health.probe: expected \\[\\[health.probe\\]\\]"},
        BadHealth{probes(33), "health.probe: at most 32 probes \\(33 given\\)"},
        BadHealth{"[[health.probe]]\ntype = \"tcp\"", "health.probe\\[0\\].name: missing"},
        BadHealth{"[[health.probe]]\nname = \"a b\"\ntype = \"tcp\"\naddress = \"a:1\"",
                  "health.probe\\[0\\].name: must be 1 to 64 characters"},
        BadHealth{probes(1) + "[[health.probe]]\nname = \"p0\"\ntype = \"tcp\"\n"
                              "address = \"a:2\"",
                  "health.probe\\[1\\].name: \"p0\" names another probe too"},
        BadHealth{"[[health.probe]]\nname = \"a\"", "health.probe\\[0\\].type: missing"},
        BadHealth{"[[health.probe]]\nname = \"a\"\ntype = \"https\"",
                  "health.probe\\[0\\].type: \"https\": expected http, tcp or exec"},
        BadHealth{"[[health.probe]]\nname = \"a\"\ntype = \"callback\"",
                  "health.probe\\[0\\].type: callback probes are registered by a program"},
        BadHealth{kHttp, "health.probe\\[0\\].url: missing"},
        BadHealth{kHttp + "url = \"ftp://a/\"", "health.probe\\[0\\].url: \"ftp://a/\": expected"},
        BadHealth{kHttp + "url = \"http://a:0/\"", "health.probe\\[0\\].url: .*port must be"},
        BadHealth{kHttpUrl + "expect_status = 42",
                  "health.probe\\[0\\].expect_status: must be an HTTP status"},
        BadHealth{kHttpUrl + "expect_status = \"200\"",
                  "health.probe\\[0\\].expect_status: expected a whole number"},
        BadHealth{kHttpUrl + "ca_file = \"ca.crt\"",
                  "health.probe\\[0\\].ca_file: only for https URLs"},
        BadHealth{kHttpUrl + "address = \"a:1\"",
                  "health.probe\\[0\\].address: only for type = \"tcp\""},
        BadHealth{kHttpUrl + "interval = \"5ms\"",
                  "health.probe\\[0\\].interval: must be between 10ms and 1h"},
        BadHealth{kHttpUrl + "interval = \"1s\"\ntimeout = \"1s\"",
                  "health.probe\\[0\\].timeout: must be at least 1ms and less than the "
                  "interval"},
        BadHealth{kHttpUrl + "timeout = 2", "health.probe\\[0\\].timeout: expected a duration"},
        BadHealth{kHttpUrl + "fall = 0", "health.probe\\[0\\].fall: must be between 1 and 100"},
        BadHealth{kHttpUrl + "rise = 1000", "health.probe\\[0\\].rise: must be between 1"},
        BadHealth{kHttpUrl + "weight = 5000", "health.probe\\[0\\].weight: must be between"},
        BadHealth{kHttpUrl + "weight = 99999999999", "health.probe\\[0\\].weight: too large"},
        BadHealth{kHttpUrl + "retries = 3", "health.probe\\[0\\].retries: unknown field"},
        BadHealth{kTcp, "health.probe\\[0\\].address: missing"},
        BadHealth{kTcp + "address = \"db\"", "health.probe\\[0\\].address: .*not HOST:PORT"},
        BadHealth{kTcp + "address = \"a:1\"\nurl = \"http://a/\"",
                  "health.probe\\[0\\].url: only for type = \"http\""},
        BadHealth{kExec, "health.probe\\[0\\].command: missing"},
        BadHealth{kExec + "command = \"check --all\"",
                  "health.probe\\[0\\].command: expected a list"},
        BadHealth{kExec + "command = []", "health.probe\\[0\\].command: must name a program"},
        BadHealth{kExec + "command = [\"\"]",
                  "health.probe\\[0\\].command\\[0\\]: must not be empty"},
        BadHealth{kExec + "command = [\"a\", 3]",
                  "health.probe\\[0\\].command: expected a list of strings"},
        BadHealth{kExec + "command = [\"a\", \"b\\u0000c\"]",
                  "health.probe\\[0\\].command\\[1\\]: must not contain a NUL"},
        BadHealth{kExec + "command = [\"a\", \"" + std::string(4097, 'x') + "\"]",
                  "health.probe\\[0\\].command\\[1\\]: longer than 4096 bytes"}));

}  // namespace
}  // namespace anya::transport
