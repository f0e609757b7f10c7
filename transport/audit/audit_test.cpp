// The audit log: the chain continues across reopen, each kind of tampering is named precisely,
// a cut tail is caught against a head vouched for from outside, hostile strings stay one capped
// line, a failed write closes the log, and the secret file is private.
#include "transport/audit/audit_log.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace anya::transport {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const std::string kSecret(64, 's');
const std::string kOtherSecret(64, 'o');
const std::string kZeros(kAuditMacHexChars, '0');
constexpr engine::NodeId kNode = 2;

AuditEntry entry(int i, std::string target_prefix = "key") {
  AuditEntry e;
  e.time_ms = 1'700'000'000'000 + static_cast<std::uint64_t>(i);
  e.term = 3;
  e.actor = "client:ops";
  e.role = "admin";
  e.action = "kv.put";
  e.target = target_prefix + std::to_string(i);
  e.outcome = "ok";
  return e;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "anya-audit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    file_ = dir_ / "audit.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes records 1..n to `file` (entries built by `entry(i, prefix)`); returns the log.
  std::unique_ptr<AuditLog> write_log(const fs::path& file, int n, const std::string& secret,
                                      const std::string& prefix = "key") {
    Result<std::unique_ptr<AuditLog>> log = AuditLog::open(file, secret, kNode);
    EXPECT_TRUE(log) << log.status().message();
    if (!log) return nullptr;
    for (int i = 1; i <= n; ++i) {
      Status s = (*log)->append(entry(i, prefix));
      EXPECT_TRUE(s) << s.message();
    }
    return std::move(*log);
  }

  static std::string read_all(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void write_all(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
  // The file's lines without their newlines (the file must end in one).
  static std::vector<std::string> lines_of(const fs::path& file) {
    const std::string text = read_all(file);
    EXPECT_TRUE(!text.empty() && text.back() == '\n');
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.push_back(text.substr(start, nl - start));
    }
    return lines;
  }
  static void write_lines(const fs::path& file, const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& l : lines) text += l + "\n";
    write_all(file, text);
  }

  VerifyReport verify(std::optional<std::string> head_mac = {},
                      std::optional<std::uint64_t> head_seq = {}) {
    return verify_audit_file(file_, kSecret, std::move(head_mac), head_seq);
  }

  fs::path dir_;
  fs::path file_;
};

TEST_F(AuditTest, AppendThenReopenContinuesTheChain) {
  std::string head;
  {
    auto log = write_log(file_, 3, kSecret);
    ASSERT_TRUE(log);
    EXPECT_EQ(log->last_seq(), 3u);
    head = log->head_mac_hex();
    EXPECT_NE(head, kZeros);
  }
  auto reopened = AuditLog::open(file_, kSecret, kNode);
  ASSERT_TRUE(reopened) << reopened.status().message();
  EXPECT_EQ((*reopened)->last_seq(), 3u);
  EXPECT_EQ((*reopened)->head_mac_hex(), head);
  ASSERT_TRUE((*reopened)->append(entry(4)));
  ASSERT_TRUE((*reopened)->append(entry(5)));

  const std::vector<std::string> lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 5u);
  const json::object fourth = json::parse(lines[3]).as_object();
  EXPECT_EQ(fourth.at("seq").as_int64(), 4);
  EXPECT_EQ(fourth.at("prev").as_string(), head);
  EXPECT_EQ(fourth.at("node").as_int64(), static_cast<std::int64_t>(kNode));
  EXPECT_EQ(json::parse(lines[0]).as_object().at("prev").as_string(), kZeros);

  const VerifyReport report = verify((*reopened)->head_mac_hex(), 5);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 5u);
  EXPECT_EQ(report.head_seq, 5u);
  EXPECT_EQ(report.head_mac_hex, (*reopened)->head_mac_hex());
}

TEST_F(AuditTest, FieldsAreWrittenInTheDocumentedOrder) {
  ASSERT_TRUE(write_log(file_, 1, kSecret));
  const std::string line = lines_of(file_).at(0);
  const std::vector<std::string> names = {"seq",    "time_ms", "node",    "term",
                                          "actor",  "role",    "action",  "target",
                                          "outcome", "detail", "prev",    "mac"};
  std::size_t last = 0;
  for (const std::string& name : names) {
    const std::size_t at = line.find("\"" + name + "\":");
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GE(at, last) << name;
    last = at;
  }
}

TEST_F(AuditTest, EmptyFileVerifiesWithZeroHead) {
  ASSERT_TRUE(write_log(file_, 0, kSecret));
  const VerifyReport report = verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(report.head_mac_hex, kZeros);
}

TEST_F(AuditTest, ChangedFieldIsNamed) {
  ASSERT_TRUE(write_log(file_, 6, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  json::object record = json::parse(lines[3]).as_object();
  record["outcome"] = "refused";
  lines[3] = json::serialize(record);
  write_lines(file_, lines);
  const VerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.problem,
            "record seq 4 (line 4): changed or forged: its MAC does not match its contents");
  EXPECT_EQ(report.line, 4u);
  EXPECT_EQ(report.records, 3u);
}

TEST_F(AuditTest, NonCanonicalBytesAreNamedEvenWhenTheContentIsTheSame) {
  ASSERT_TRUE(write_log(file_, 4, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  lines[1].replace(lines[1].find("\"seq\":2"), 7, "\"seq\": 2");
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem,
            "record seq 2 (line 2): changed: the line is not in its canonical form");
}

TEST_F(AuditTest, DeletedRecordIsNamed) {
  ASSERT_TRUE(write_log(file_, 8, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  lines.erase(lines.begin() + 4);  // seq 5
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem, "record seq 6 follows seq 4 (line 5): record 5 deleted");
  lines.erase(lines.begin() + 4);  // seq 6 too
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem, "record seq 7 follows seq 4 (line 5): records 5 to 6 deleted");
}

TEST_F(AuditTest, SwappedRecordsAreNamed) {
  ASSERT_TRUE(write_log(file_, 6, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  std::swap(lines[2], lines[3]);  // seq 3 and seq 4
  write_lines(file_, lines);
  const VerifyReport report = verify();
  EXPECT_EQ(report.problem, "record seq 4 follows seq 2 (line 3): reordered: seq 3 is at line 4");
  EXPECT_EQ(report.line, 3u);
}

TEST_F(AuditTest, DuplicatedRecordIsNamed) {
  ASSERT_TRUE(write_log(file_, 5, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  lines.insert(lines.begin() + 3, lines[2]);  // seq 3 twice
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem, "record seq 3 follows seq 3 (line 4): reordered or duplicated");
}

TEST_F(AuditTest, ForgedRecordWithWrongKeyIsNamed) {
  ASSERT_TRUE(write_log(file_, 5, kSecret));
  const fs::path forged_file = dir_ / "forged.log";
  ASSERT_TRUE(write_log(forged_file, 4, kOtherSecret, "forged"));
  std::vector<std::string> lines = lines_of(file_);
  lines.insert(lines.begin() + 3, lines_of(forged_file)[3]);  // a seq 4 before the real one
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem,
            "record seq 4 (line 4): changed or forged: its MAC does not match its contents");
}

TEST_F(AuditTest, RecordFromAnotherChainIsNamedByItsPrevLink) {
  // Same secret, different content: each record's MAC verifies but the splice breaks `prev`.
  ASSERT_TRUE(write_log(file_, 6, kSecret));
  const fs::path other = dir_ / "other.log";
  ASSERT_TRUE(write_log(other, 6, kSecret, "other"));
  std::vector<std::string> lines = lines_of(file_);
  lines[3] = lines_of(other)[3];
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem,
            "record seq 4 (line 4): inserted or reordered: prev does not match the record "
            "before it");
}

TEST_F(AuditTest, TruncatedTailIsDetectedOnlyAgainstAVouchedHead) {
  auto log = write_log(file_, 10, kSecret);
  ASSERT_TRUE(log);
  const std::string head = log->head_mac_hex();
  log.reset();
  std::vector<std::string> lines = lines_of(file_);
  lines.resize(7);
  write_lines(file_, lines);

  const VerifyReport alone = verify();
  EXPECT_TRUE(alone.ok) << "a chain alone cannot show a cut tail: " << alone.problem;
  EXPECT_EQ(alone.records, 7u);

  const VerifyReport against_head = verify(head, 10);
  EXPECT_FALSE(against_head.ok);
  EXPECT_EQ(against_head.problem,
            "truncated: the file ends at seq 7 but the cluster recorded head seq 10");
  const VerifyReport against_mac = verify(head, std::nullopt);
  EXPECT_NE(against_mac.problem.find("is not in the file"), std::string::npos)
      << against_mac.problem;
  EXPECT_FALSE(verify({}, 10).ok);
}

TEST_F(AuditTest, RecordsAfterTheVouchedHeadAreFine) {
  auto log = write_log(file_, 4, kSecret);
  ASSERT_TRUE(log);
  const std::string head = log->head_mac_hex();
  ASSERT_TRUE(log->append(entry(5)));
  const VerifyReport report = verify(head, 4);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 5u);
}

TEST_F(AuditTest, FileRewrittenWithTheSecretDoesNotMatchTheVouchedHead) {
  auto original = write_log(file_, 8, kSecret);
  ASSERT_TRUE(original);
  const std::string head = original->head_mac_hex();
  original.reset();
  fs::remove(file_);
  auto rewritten = write_log(file_, 8, kSecret, "rewritten");  // a valid chain of its own
  ASSERT_TRUE(rewritten);
  ASSERT_TRUE(verify().ok);
  const VerifyReport report = verify(head, 8);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.problem.rfind("record seq 8 (line 8): not the head the cluster recorded", 0),
            0u)
      << report.problem;
}

TEST_F(AuditTest, TruncatedAtTheFrontIsNamed) {
  ASSERT_TRUE(write_log(file_, 5, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  lines.erase(lines.begin(), lines.begin() + 2);
  write_lines(file_, lines);
  EXPECT_EQ(verify().problem,
            "record seq 3 (line 1): truncated at the front: the first record is seq 3, not 1");
}

TEST_F(AuditTest, PartialLastLineIsNamed) {
  ASSERT_TRUE(write_log(file_, 6, kSecret));
  std::string text = read_all(file_);
  write_all(file_, text.substr(0, text.size() - 1));  // only the newline is missing
  VerifyReport report = verify();
  EXPECT_EQ(report.problem, "line 6: truncated (no newline at end)");
  EXPECT_EQ(report.records, 5u);
  write_all(file_, text.substr(0, text.size() - 30));
  EXPECT_EQ(verify().problem, "line 6: truncated (no newline at end)");
}

TEST_F(AuditTest, MalformedLinesAreNamed) {
  ASSERT_TRUE(write_log(file_, 4, kSecret));
  const std::vector<std::string> good = lines_of(file_);
  const auto with_line_3 = [&](const std::string& text) {
    std::vector<std::string> lines = good;
    lines[2] = text;
    write_lines(file_, lines);
    return verify().problem;
  };
  EXPECT_EQ(with_line_3("hello"), "line 3: not a JSON object");
  EXPECT_EQ(with_line_3("[1,2]"), "line 3: not a JSON object");
  EXPECT_EQ(with_line_3(""), "line 3: empty line");
  EXPECT_EQ(with_line_3("{}"), "line 3: field 'seq' missing");

  json::object no_mac = json::parse(good[2]).as_object();
  no_mac.erase("mac");
  EXPECT_EQ(with_line_3(json::serialize(no_mac)), "line 3: field 'mac' missing");
  json::object extra = json::parse(good[2]).as_object();
  extra["value"] = "secret";
  EXPECT_EQ(with_line_3(json::serialize(extra)), "line 3: unexpected field 'value'");
  json::object negative = json::parse(good[2]).as_object();
  negative["seq"] = -3;
  EXPECT_EQ(with_line_3(json::serialize(negative)),
            "line 3: field 'seq' is not an unsigned integer");
  EXPECT_EQ(with_line_3(std::string(kMaxAuditLineBytes + 1, 'x')),
            "line 3: longer than " + std::to_string(kMaxAuditLineBytes) + " bytes");
}

TEST_F(AuditTest, WrongSecretFailsAtRecordOne) {
  ASSERT_TRUE(write_log(file_, 3, kSecret));
  const VerifyReport report = verify_audit_file(file_, kOtherSecret);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.line, 1u);
  EXPECT_EQ(report.problem.rfind("record seq 1 (line 1): changed or forged", 0), 0u)
      << report.problem;
  EXPECT_NE(report.problem.find("secret"), std::string::npos);
  EXPECT_FALSE(verify_audit_file(file_, "short").ok);
}

TEST_F(AuditTest, NewLogIsOwnerOnly) {
  ASSERT_TRUE(write_log(file_, 1, kSecret));
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditTest, OpenRefusesAFileGroupOrOthersCanReach) {
  ASSERT_TRUE(write_log(file_, 2, kSecret));
  for (const mode_t mode : {0644u, 0620u, 0604u}) {
    ASSERT_EQ(::chmod(file_.c_str(), mode), 0);
    Result<std::unique_ptr<AuditLog>> log = AuditLog::open(file_, kSecret, kNode);
    ASSERT_FALSE(log) << std::oct << mode;
    EXPECT_NE(log.status().message().find(file_.string()), std::string::npos);
    EXPECT_NE(log.status().message().find("group or others"), std::string::npos);
  }
}

TEST_F(AuditTest, OpenRefusesABrokenChainNamingTheLine) {
  ASSERT_TRUE(write_log(file_, 5, kSecret));
  std::vector<std::string> lines = lines_of(file_);
  lines.erase(lines.begin() + 2);
  write_lines(file_, lines);
  Result<std::unique_ptr<AuditLog>> log = AuditLog::open(file_, kSecret, kNode);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.status().code(), Errc::corrupt);
  EXPECT_NE(log.status().message().find(file_.string()), std::string::npos);
  EXPECT_NE(log.status().message().find("(line 3): record 3 deleted"), std::string::npos)
      << log.status().message();
  EXPECT_FALSE(AuditLog::open(file_, kOtherSecret, kNode)) << "wrong secret at open";
}

TEST_F(AuditTest, OpenRefusesAShortSecretAndNodeZero) {
  EXPECT_EQ(AuditLog::open(file_, "short", kNode).status().code(), Errc::invalid_argument);
  EXPECT_EQ(AuditLog::open(file_, kSecret, engine::kNoNode).status().code(),
            Errc::invalid_argument);
}

TEST_F(AuditTest, SanitisingEscapesEveryByteThatCouldForgeAField) {
  EXPECT_EQ(sanitize_audit_field("config/db"), "config/db");
  EXPECT_EQ(sanitize_audit_field("a\nb"), "a\\x0ab");
  EXPECT_EQ(sanitize_audit_field("a\\x0ab"), "a\\x5cx0ab") << "a backslash is escaped too";
  EXPECT_EQ(sanitize_audit_field(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(sanitize_audit_field("\x7f\xc3\xa9"), "\\x7f\\xc3\\xa9");
  EXPECT_EQ(sanitize_audit_field("q\"r"), "q\"r") << "JSON escaping handles quotes";
}

TEST_F(AuditTest, SanitisingCapsAtAnEscapeBoundary) {
  EXPECT_EQ(sanitize_audit_field(std::string(16, 'k'), 16), std::string(16, 'k'));
  EXPECT_EQ(sanitize_audit_field(std::string(17, 'k'), 16), std::string(12, 'k') + "\\cut");
  const std::string cut = sanitize_audit_field("kkkkkkkkkk\n\n\n", 16);
  EXPECT_EQ(cut, "kkkkkkkkkk\\cut") << "never half an escape";
  const std::string big = sanitize_audit_field(std::string(10'000, '\n'));
  EXPECT_LE(big.size(), kMaxAuditFieldBytes);
  EXPECT_EQ(big.substr(big.size() - 4), "\\cut");
}

TEST_F(AuditTest, HostileTargetStaysOneCappedLineInItsOwnField) {
  auto log = write_log(file_, 1, kSecret);
  ASSERT_TRUE(log);
  AuditEntry hostile = entry(2);
  hostile.target = "x\",\"outcome\":\"ok\"}\n{\"seq\":3\n" + std::string(10'000, 'v');
  hostile.outcome = "refused";
  ASSERT_TRUE(log->append(hostile));
  ASSERT_TRUE(log->append(entry(3)));

  const std::vector<std::string> lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 3u);
  const json::object record = json::parse(lines[1]).as_object();
  EXPECT_EQ(record.at("outcome").as_string(), "refused");
  const std::string target(record.at("target").as_string());
  EXPECT_LE(target.size(), kMaxAuditFieldBytes);
  EXPECT_EQ(target.rfind("x\",\"outcome\":\"ok\"}\\x0a{", 0), 0u) << target;
  EXPECT_LT(lines[1].size(), kMaxAuditLineBytes);
  EXPECT_TRUE(verify().ok) << verify().problem;
}

TEST_F(AuditTest, AppendRefusesAnEntryWithoutActorActionOrOutcome) {
  auto log = write_log(file_, 1, kSecret);
  ASSERT_TRUE(log);
  AuditEntry e = entry(2);
  e.action.clear();
  EXPECT_EQ(log->append(e).code(), Errc::invalid_argument);
  EXPECT_EQ(log->last_seq(), 1u);
  EXPECT_FALSE(log->failed());
  EXPECT_TRUE(log->append(entry(2)));
}

TEST_F(AuditTest, FailedWriteRefusesEveryLaterAppendUntilReopened) {
  auto log = write_log(file_, 2, kSecret);
  ASSERT_TRUE(log);
  const std::string head = log->head_mac_hex();
  const auto size = fs::file_size(file_);
  // A file-size limit makes write(2) stop part-way through the line, as a full disk would.
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < size + 20) GTEST_SKIP() << "rlimit";
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = size + 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status failed = log->append(entry(3));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_EQ(failed.code(), Errc::io_error);
  EXPECT_TRUE(log->failed());
  EXPECT_EQ(log->last_seq(), 2u);
  EXPECT_EQ(log->head_mac_hex(), head);
  EXPECT_EQ(fs::file_size(file_), size + 20) << "a partial line was written";
  const Status later = log->append(entry(4));
  EXPECT_EQ(later.code(), Errc::io_error);
  EXPECT_NE(later.message().find("earlier write failed"), std::string::npos);
  EXPECT_EQ(fs::file_size(file_), size + 20) << "nothing more was written";

  log.reset();
  Result<std::unique_ptr<AuditLog>> reopened = AuditLog::open(file_, kSecret, kNode);
  ASSERT_FALSE(reopened);
  EXPECT_NE(reopened.status().message().find("line 3: truncated (no newline at end)"),
            std::string::npos)
      << reopened.status().message();
}

TEST_F(AuditTest, SecretIsCreatedOwnerOnlyAndLoaded) {
  const fs::path secret_file = dir_ / "audit.secret";
  ASSERT_TRUE(create_audit_secret(secret_file));
  struct stat st {};
  ASSERT_EQ(::stat(secret_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<std::string> secret = load_audit_secret(secret_file);
  ASSERT_TRUE(secret) << secret.status().message();
  EXPECT_EQ(secret->size(), 2 * kMinAuditSecretBytes);
  EXPECT_EQ(secret->find_first_not_of("0123456789abcdef"), std::string::npos);

  const Status again = create_audit_secret(secret_file);
  EXPECT_EQ(again.code(), Errc::invalid_argument);
  EXPECT_NE(again.message().find("exists"), std::string::npos);
  EXPECT_EQ(load_audit_secret(secret_file).value(), *secret) << "not overwritten";
}

TEST_F(AuditTest, LoadSecretRefusesGroupReadableOrShortFiles) {
  const fs::path secret_file = dir_ / "audit.secret";
  write_all(secret_file, kSecret + "\n");
  ASSERT_TRUE(load_audit_secret(secret_file));
  EXPECT_EQ(load_audit_secret(secret_file).value(), kSecret) << "newline stripped";
  ASSERT_EQ(::chmod(secret_file.c_str(), 0640), 0);
  Result<std::string> readable = load_audit_secret(secret_file);
  ASSERT_FALSE(readable);
  EXPECT_NE(readable.status().message().find(secret_file.string()), std::string::npos);
  write_all(secret_file, std::string(kMinAuditSecretBytes - 1, 'x') + "\n");
  Result<std::string> short_secret = load_audit_secret(secret_file);
  ASSERT_FALSE(short_secret);
  EXPECT_NE(short_secret.status().message().find(secret_file.string()), std::string::npos);
  EXPECT_FALSE(load_audit_secret(dir_ / "missing"));
}

}  // namespace
}  // namespace anya::transport
