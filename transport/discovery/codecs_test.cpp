// The pure codecs of transport/discovery: DNS messages (built and parsed), the Kubernetes
// EndpointSlice JSON, and multicast announcements. Real answers captured from dnsmasq 2.90 and
// the shapes of the Kubernetes discovery.k8s.io/v1 API.
#include <gtest/gtest.h>

#include <random>

#include "transport/discovery/dns_message.hpp"

namespace anya::transport {
namespace {

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// dnsmasq --srv-host=_anya-ha._tcp.cluster.example,node-1.cluster.example,7101,10,5
//         --srv-host=_anya-ha._tcp.cluster.example,node-2.cluster.example,7102,20,5
//         --host-record=node-1.cluster.example,127.0.0.11 (and node-2 at .12) --local-ttl=7
const std::string kSrvAnswer = unhex(
    "123485800001000200000003085f616e79612d6861045f74637007636c7573746572076578616d706c6500"
    "00210001c00c0021000100000007001e001400051bbe066e6f64652d3207636c7573746572076578616d70"
    "6c6500c00c0021000100000007001e000a00051bbd066e6f64652d3107636c7573746572076578616d706c"
    "6500c06b000100010000000700047f00000bc041000100010000000700047f00000c00002904d000000000"
    "0000");

TEST(DnsMessage, ParsesARealSrvAnswerWithItsAdditionalRecords) {
  Result<dns::Message> m = dns::parse_message(kSrvAnswer);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_TRUE(m->response);
  EXPECT_FALSE(m->truncated);
  EXPECT_EQ(m->rcode, 0);
  EXPECT_EQ(m->question_name, "_anya-ha._tcp.cluster.example");
  EXPECT_EQ(m->question_type, dns::kTypeSrv);
  ASSERT_EQ(m->srv.size(), 2u);
  EXPECT_EQ(m->srv[0].target, "node-2.cluster.example");
  EXPECT_EQ(m->srv[0].port, 7102);
  EXPECT_EQ(m->srv[0].priority, 20);
  EXPECT_EQ(m->srv[0].weight, 5);
  EXPECT_EQ(m->srv[0].ttl_s, 7u);
  EXPECT_EQ(m->srv[1].owner, "_anya-ha._tcp.cluster.example");
  ASSERT_EQ(m->a.size(), 2u);
  EXPECT_EQ(m->a[0].owner, "node-1.cluster.example");
  EXPECT_EQ(m->a[0].address_text(), "127.0.0.11");
}

TEST(DnsMessage, AQueryParsesBackAsTheQuestion) {
  Result<std::string> q = dns::encode_query(77, "_anya-ha._tcp.Cluster.Example.", dns::kTypeSrv);
  ASSERT_TRUE(q.is_ok());
  Result<dns::Message> m = dns::parse_message(*q);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->id, 77);
  EXPECT_FALSE(m->response);
  EXPECT_EQ(m->question_name, "_anya-ha._tcp.cluster.example");
  EXPECT_EQ(m->question_type, dns::kTypeSrv);
  EXPECT_FALSE(dns::encode_query(1, "a..b", dns::kTypeA).is_ok());
  EXPECT_FALSE(dns::encode_query(1, std::string(64, 'x') + ".example", dns::kTypeA).is_ok());
  std::string long_name;
  for (int i = 0; i < 50; i++) long_name += "abcde.";
  EXPECT_FALSE(dns::encode_query(1, long_name, dns::kTypeA).is_ok());
}

void expect_malformed(const std::string& bytes, std::string_view what) {
  Result<dns::Message> m = dns::parse_message(bytes);
  ASSERT_FALSE(m.is_ok()) << what;
  EXPECT_EQ(m.status().code(), Errc::malformed);
  EXPECT_NE(m.status().message().find(what), std::string::npos) << m.status().message();
}

TEST(DnsMessage, BadPacketsAreErrorsNamingWhatWasWrong) {
  expect_malformed(kSrvAnswer.substr(0, 7), "header of 7 bytes");
  std::string two_questions = kSrvAnswer;
  two_questions[5] = 2;
  expect_malformed(two_questions, "2 questions");
  std::string many = kSrvAnswer;
  many[6] = static_cast<char>(0xff);
  expect_malformed(many, "more than 4096");
  // The question's name points forwards (to itself): a loop.
  std::string loop = kSrvAnswer.substr(0, 12) + unhex("c00c") + kSrvAnswer.substr(43);
  expect_malformed(loop, "does not point backwards");
  expect_malformed(kSrvAnswer.substr(0, 20), "runs past the end");
  expect_malformed(kSrvAnswer + "x", "1 bytes after the last record");
  // The first SRV record's data length is 0x001e; claim 0x00ff.
  std::string long_rdata = kSrvAnswer;
  long_rdata[58] = static_cast<char>(0xff);
  expect_malformed(long_rdata, "record 0: data of 255 bytes runs past the end");
  // The first A record (at the end of the answer section) claims 5 bytes.
  std::string bad_a = kSrvAnswer;
  const std::size_t a_len = kSrvAnswer.find(unhex("00047f00000b")) + 1;
  bad_a[a_len] = 5;
  expect_malformed(bad_a, "");
  // Label type 0x40 (the obsolete extended labels).
  std::string odd_label = kSrvAnswer;
  odd_label[12] = 0x48;
  expect_malformed(odd_label, "unknown label type");
}

TEST(DnsMessage, NoPrefixOrBitFlipCrashesTheParser) {
  for (std::size_t n = 0; n <= kSrvAnswer.size(); n++) {
    (void)dns::parse_message(kSrvAnswer.substr(0, n));
  }
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; i++) {
    std::string bytes = kSrvAnswer;
    for (int flips = 0; flips < 3; flips++) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1u << (rng() % 8));
    }
    Result<dns::Message> m = dns::parse_message(bytes);
    if (m) {
      for (const dns::SrvRecord& r : m->srv) EXPECT_LE(r.target.size(), dns::kMaxNameBytes);
    }
  }
}

}  // namespace
}  // namespace anya::transport

// Multicast announcements.
#include <sys/stat.h>

#include <fstream>

#include "transport/discovery/announcement.hpp"

namespace anya::transport::discovery {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

TEST(Announcement, RoundTripsAndTheMacCoversEveryByte) {
  const engine::discovery::Announcement a{"prod", 7, "10.0.0.7:7100", 1'700'000'000'123, 99};
  const std::string bytes = encode_announcement(a, kSecret);
  Result<DecodedAnnouncement> d = decode_announcement(bytes, kSecret);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->announcement, a);
  EXPECT_TRUE(d->mac_ok);
  EXPECT_FALSE(decode_announcement(bytes, "another secret, 16+ bytes")->mac_ok);
  for (std::size_t i = 5; i < bytes.size(); i++) {
    std::string tampered = bytes;
    tampered[i] ^= 0x01;
    Result<DecodedAnnouncement> t = decode_announcement(tampered, kSecret);
    EXPECT_TRUE(!t.is_ok() || !t->mac_ok) << "byte " << i << " is not covered";
  }
}

TEST(Announcement, MalformedOnesNameTheField) {
  const std::string bytes =
      encode_announcement({"prod", 7, "10.0.0.7:7100", 1, 2}, kSecret);
  const auto error = [](const std::string& b) {
    Result<DecodedAnnouncement> d = decode_announcement(b, kSecret);
    return d.is_ok() ? std::string("(accepted)") : d.status().message();
  };
  EXPECT_EQ(error("ANY"), "announcement: not an anya-ha one");
  EXPECT_EQ(error("ANYD\x02"), "announcement: version 2, expected 1");
  EXPECT_EQ(error(bytes.substr(0, 8)), "announcement: cluster");
  EXPECT_EQ(error(bytes.substr(0, bytes.size() - 1)), "announcement: MAC: truncated");
  EXPECT_EQ(error(bytes + "x"), "announcement: bytes after the MAC");
  EXPECT_EQ(error(std::string(513, 'A')), "announcement: 513 bytes, more than 512");
  std::string zero_node = bytes;
  for (std::size_t i = 10; i < 18; i++) zero_node[i] = 0;
  EXPECT_EQ(error(zero_node), "announcement: node id");
}

TEST(Announcement, TheSecretFileMustBePrivateAndLongEnough) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("anya-secret-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    std::ofstream(dir / name) << text;
    ::chmod((dir / name).c_str(), mode);
    return dir / name;
  };
  Result<std::string> ok = load_cluster_secret(write("ok", kSecret + "\n", 0600), "f");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(*ok, kSecret);
  Result<std::string> open = load_cluster_secret(write("open", kSecret, 0644), "x.secret_file");
  ASSERT_FALSE(open.is_ok());
  EXPECT_NE(open.status().message().find("x.secret_file: "), std::string::npos);
  EXPECT_NE(open.status().message().find("readable by group or others"), std::string::npos);
  Result<std::string> shorty = load_cluster_secret(write("short", "abc\n", 0600), "f");
  EXPECT_NE(shorty.status().message().find("3 bytes; at least 16"), std::string::npos);
  EXPECT_NE(load_cluster_secret(dir / "missing", "f").status().message().find("cannot read"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace anya::transport::discovery

// Kubernetes EndpointSlice JSON.
#include "transport/discovery/endpoint_slices.hpp"

namespace anya::transport::discovery {
namespace {

// `kubectl get endpointslices -l kubernetes.io/service-name=anya-ha -o json`, trimmed.
constexpr std::string_view kList = R"({
  "kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
  "metadata": {"resourceVersion": "81731"},
  "items": [
    {"metadata": {"name": "anya-ha-7xk2p", "namespace": "bitcoin", "resourceVersion": "81730",
                  "labels": {"kubernetes.io/service-name": "anya-ha"}},
     "addressType": "IPv4",
     "endpoints": [
       {"addresses": ["10.244.1.7"], "conditions": {"ready": true, "serving": true,
        "terminating": false}, "hostname": "anya-0",
        "targetRef": {"kind": "Pod", "namespace": "bitcoin", "name": "anya-0"}},
       {"addresses": ["10.244.2.9"], "conditions": {},
        "targetRef": {"kind": "Pod", "namespace": "bitcoin", "name": "anya-1"}},
       {"addresses": ["10.244.3.4"], "conditions": {"ready": false}, "hostname": "anya-2"},
       {"addresses": ["10.244.3.5"], "conditions": {"ready": true}, "hostname": "debug"}],
     "ports": [{"name": "peer", "protocol": "TCP", "port": 7100},
               {"name": "admin", "protocol": "TCP", "port": 7200}]},
    {"metadata": {"name": "anya-ha-v6"}, "addressType": "IPv6",
     "endpoints": [{"addresses": ["fd00::7"], "hostname": "anya-0"}],
     "ports": [{"name": "peer", "port": 7100}]}]})";

std::map<std::string, Slice> by_name(const SliceList& list) {
  std::map<std::string, Slice> out;
  for (const Slice& s : list.items) out[s.name] = s;
  return out;
}

TEST(EndpointSlices, ReadyIPv4EndpointsBecomePeers) {
  Result<SliceList> list = parse_slice_list(kList);
  ASSERT_TRUE(list.is_ok()) << list.status().to_string();
  EXPECT_EQ(list->resource_version, "81731");
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].endpoints[1].pod, "anya-1") << "targetRef.name without hostname";
  EXPECT_TRUE(list->items[0].endpoints[1].ready) << "an absent condition reads as ready";
  Result<SliceProposals> p = proposals_from(by_name(*list), "peer", 1);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  ASSERT_EQ(p->peers.size(), 2u) << "anya-2 is not ready; debug names no node; IPv6 skipped";
  EXPECT_EQ(p->peers[0].id, 1u);
  EXPECT_EQ(p->peers[0].address, "10.244.1.7:7100");
  EXPECT_EQ(p->peers[1].id, 2u);
  ASSERT_EQ(p->skipped.size(), 1u);
  EXPECT_NE(p->skipped[0].find("debug"), std::string::npos);
  Result<SliceProposals> admin = proposals_from(by_name(*list), "admin", 0);
  EXPECT_EQ(admin->peers[0].address, "10.244.2.9:7200");
  EXPECT_EQ(admin->peers.size(), 1u) << "offset 0: anya-0 would be node 0, which is nobody";
  EXPECT_EQ(admin->peers[0].id, 1u) << "anya-1 with offset 0";
}

TEST(EndpointSlices, APortThatCannotBeChosenIsAConfigurationError) {
  Result<SliceList> list = parse_slice_list(kList);
  ASSERT_TRUE(list.is_ok());
  Result<SliceProposals> none = proposals_from(by_name(*list), "grpc", 1);
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("no port named 'grpc'"), std::string::npos);
  Result<SliceProposals> two = proposals_from(by_name(*list), "", 1);
  ASSERT_FALSE(two.is_ok());
  EXPECT_NE(two.status().message().find("2 ports; set discovery.kubernetes.port_name"),
            std::string::npos);
}

TEST(EndpointSlices, BadJsonNamesTheField) {
  const auto error = [](std::string_view text) {
    Result<SliceList> l = parse_slice_list(text);
    return l.is_ok() ? std::string("(accepted)") : l.status().message();
  };
  EXPECT_NE(error("{\"items\": [").find("not JSON"), std::string::npos);
  EXPECT_NE(error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"kind":"Status"})").find("expected EndpointSliceList"), std::string::npos);
  EXPECT_NE(error(R"({"kind":"EndpointSliceList","items":{}})").find("items: expected a list"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"EndpointSliceList","items":[{"endpoints":[{"addresses":"x"}]}]})")
                .find("items[0].endpoints[0].addresses: expected a list"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"EndpointSliceList","items":[{"ports":[{"port":70000}]}]})")
                .find("items[0].ports[0].port: expected a port number"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"EndpointSliceList","items":[{"endpoints":[{"conditions":)"
                  R"({"ready":"yes"}}]}]})").find("conditions.ready"),
            std::string::npos);
}

TEST(EndpointSlices, WatchEvents) {
  Result<WatchEvent> added = parse_watch_event(
      R"({"type":"ADDED","object":{"kind":"EndpointSlice","metadata":{"name":"s1",)"
      R"("resourceVersion":"9"},"addressType":"IPv4","endpoints":[],"ports":[]}})");
  ASSERT_TRUE(added.is_ok()) << added.status().to_string();
  EXPECT_EQ(added->type, "ADDED");
  EXPECT_EQ(added->resource_version, "9");
  EXPECT_EQ(added->slice->name, "s1");
  Result<WatchEvent> gone = parse_watch_event(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)j"
      R"j("status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired",)j"
      R"j("code":410}})j");
  ASSERT_TRUE(gone.is_ok());
  EXPECT_EQ(gone->error_code, 410);
  EXPECT_EQ(gone->error_message, "too old resource version: 1 (5)");
  Result<WatchEvent> bookmark = parse_watch_event(
      R"({"type":"BOOKMARK","object":{"kind":"EndpointSlice",)"
      R"("metadata":{"resourceVersion":"12"}}})");
  ASSERT_TRUE(bookmark.is_ok());
  EXPECT_FALSE(bookmark->slice.has_value());
  EXPECT_FALSE(parse_watch_event(R"({"type":"SYNC","object":{}})").is_ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":{"metadata":{}}})").is_ok());
  EXPECT_EQ(status_message(R"({"kind":"Status","message":"Unauthorized","code":401})"),
            "Unauthorized");
  EXPECT_EQ(status_message("<html>"), "");
}

}  // namespace
}  // namespace anya::transport::discovery
