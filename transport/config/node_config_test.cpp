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
