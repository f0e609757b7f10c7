// FencingGuard: the rules a resource relies on (refuse lower, accept equal, durable before
// accepted, check and action as one step) and the state file's refusal of damage. Real files in
// a temporary directory; no timing anywhere.
#include "transport/embed/fencing.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace anya {
namespace {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "anya-fencing-test-XXXXXX").string();
    ANYA_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << p;
}

std::unique_ptr<FencingGuard> open_ok(const fs::path& p) {
  Result<std::unique_ptr<FencingGuard>> g = FencingGuard::open(p);
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  return g.is_ok() ? std::move(g).value() : nullptr;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `bytes` with the byte at `offset` XORed with `mask`.
std::string flip(std::string bytes, std::size_t offset, int mask) {
  ANYA_ASSERT(offset < bytes.size());
  bytes.at(offset) = static_cast<char>(bytes.at(offset) ^ mask);
  return bytes;
}

TEST(FencingFile, RoundTripsAndEveryFlippedBitIsRefused) {
  for (std::uint64_t token : {0ull, 1ull, 7ull, 0x0102030405060708ull, ~0ull}) {
    const std::string bytes = FencingFile::encode(token);
    ASSERT_EQ(bytes.size(), FencingFile::kBytes);
    Result<std::uint64_t> back = FencingFile::decode(bytes, "state");
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(*back, token);
  }
  const std::string good = FencingFile::encode(42);
  EXPECT_EQ(good.substr(0, 8), "ANYAFENC");
  EXPECT_EQ(good[12], 42);  // little-endian token at offset 12
  for (std::size_t bit = 0; bit < 8 * good.size(); bit++) {
    const std::string bad = flip(good, bit / 8, 1 << (bit % 8));
    EXPECT_FALSE(FencingFile::decode(bad, "state").is_ok()) << "bit " << bit << " flipped";
  }
}

TEST(FencingGuard, OpenCreatesAPrivateFileWithNoTokenYet) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  auto g = open_ok(p);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->highest(), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_bytes(p), FencingFile::encode(0));

  Result<std::unique_ptr<FencingGuard>> missing_dir = FencingGuard::open(dir.path / "no" / "f");
  ASSERT_FALSE(missing_dir.is_ok());
  EXPECT_EQ(missing_dir.status().code(), Errc::io_error);
  EXPECT_TRUE(contains(missing_dir.status().message(), (dir.path / "no").string()))
      << missing_dir.status().message();
  EXPECT_EQ(FencingGuard::open("").status().code(), Errc::invalid_argument);
}

TEST(FencingGuard, TokenZeroIsRefusedAndRunsNothing) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  Status s = g->admit(0);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_TRUE(contains(s.message(), "fencing token 0")) << s.message();
  bool ran = false;
  EXPECT_EQ(g->with_token(0, [&] { ran = true; }).code(), Errc::invalid_argument);
  EXPECT_FALSE(ran);
  EXPECT_EQ(g->highest(), 0u);
}

TEST(FencingGuard, ALowerTokenIsRefusedNamingBothAndRunsNothing) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  ASSERT_TRUE(g->admit(7).is_ok());
  bool ran = false;
  Status s = g->with_token(5, [&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_EQ(s.code(), Errc::conflict);
  EXPECT_EQ(s.message(),
            "fencing token 5 is below 7, the highest accepted: a newer leader has acted; "
            "request refused");
  EXPECT_EQ(g->admit(6).code(), Errc::conflict);
  EXPECT_EQ(g->highest(), 7u);
  EXPECT_EQ(read_bytes(dir.path / "fence.state"), FencingFile::encode(7));
}

TEST(FencingGuard, AnEqualTokenIsAcceptedAgain) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  int runs = 0;
  for (int i = 0; i < 3; i++) {
    EXPECT_TRUE(g->with_token(4, [&] { runs++; }).is_ok());
  }
  EXPECT_EQ(runs, 3);
  EXPECT_TRUE(g->admit(4).is_ok());
  EXPECT_EQ(g->highest(), 4u);
}

TEST(FencingGuard, AHigherTokenIsOnDiskBeforeTheActionRuns) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  auto g = open_ok(p);
  ASSERT_NE(g, nullptr);
  for (std::uint64_t token : {3u, 9u, 10u}) {
    std::string seen_on_disk;
    ASSERT_TRUE(g->with_token(token, [&] { seen_on_disk = read_bytes(p); }).is_ok());
    EXPECT_EQ(seen_on_disk, FencingFile::encode(token)) << "token " << token;
  }
  EXPECT_FALSE(fs::exists(dir.path / "fence.state.tmp"));
}

TEST(FencingGuard, TheActionsResultIsPassedThrough) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  Result<int> plain = g->with_token(2, [] { return 41 + 1; });
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(*plain, 42);
  Result<std::string> failed = g->with_token(2, []() -> Result<std::string> {
    return Status(Errc::io_error, "the HSM is unplugged");
  });
  EXPECT_EQ(failed.status().message(), "the HSM is unplugged");
  Status refused = g->with_token(1, [] { return Status(Errc::busy, "not reached"); });
  EXPECT_EQ(refused.code(), Errc::conflict);
  EXPECT_EQ(g->highest(), 2u) << "an action that fails leaves its token admitted";
}

TEST(FencingGuard, TheHighestTokenSurvivesAReopen) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  {
    auto g = open_ok(p);
    ASSERT_NE(g, nullptr);
    ASSERT_TRUE(g->admit(9).is_ok());
  }
  auto g = open_ok(p);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->highest(), 9u);
  EXPECT_EQ(g->admit(8).code(), Errc::conflict);
  EXPECT_TRUE(g->admit(9).is_ok());
}

// A crash after the temp file was written but before the rename: the token in it was never
// accepted (acceptance waits for the rename and the directory's fsync), so it must not count.
TEST(FencingGuard, ATempFileLeftByACrashIsIgnoredAndRemoved) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  const fs::path temp = dir.path / "fence.state.tmp";
  {
    auto g = open_ok(p);
    ASSERT_NE(g, nullptr);
    ASSERT_TRUE(g->admit(4).is_ok());
  }
  for (const std::string& leftover : {FencingFile::encode(100), std::string("ANYAF")}) {
    write_bytes(temp, leftover);
    auto g = open_ok(p);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->highest(), 4u);
    EXPECT_FALSE(fs::exists(temp));
    EXPECT_EQ(g->admit(3).code(), Errc::conflict);
  }
  // The same crash on the very first write: no state file, only its temp.
  fs::remove(p);
  write_bytes(temp, FencingFile::encode(100));
  auto g = open_ok(p);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->highest(), 0u);
  EXPECT_TRUE(g->admit(5).is_ok());
}

struct Damage {
  const char* what;
  std::function<std::string(std::string)> apply;
  Errc code;
  std::string names;  // "byte offset N (FIELD)"
};

TEST(FencingGuard, ADamagedFileIsRefusedNamingTheOffsetAndLeftAsItWas) {
  const std::vector<Damage> damages = {
      {"a token bit flipped", [](std::string b) { return flip(b, 13, 0x10); }, Errc::corrupt,
       "byte offset 20 (crc32c)"},
      {"the checksum changed", [](std::string b) { return flip(b, 23, 0x01); }, Errc::corrupt,
       "byte offset 20 (crc32c)"},
      {"another magic", [](std::string b) { return flip(b, 0, 'A' ^ 'X'); }, Errc::corrupt,
       "byte offset 0 (magic)"},
      {"a newer version", [](std::string b) { return flip(b, 8, 1 ^ 2); }, Errc::unsupported,
       "byte offset 8 (version)"},
      {"cut short", [](std::string b) { return b.substr(0, 13); }, Errc::corrupt,
       "byte offset 13 (truncated)"},
      {"a byte appended", [](std::string b) { return b + "x"; }, Errc::corrupt,
       "byte offset 24 (trailing bytes)"},
      {"emptied", [](std::string) { return std::string(); }, Errc::corrupt,
       "byte offset 0 (header)"},
  };
  for (const Damage& d : damages) {
    TempDir dir;
    const fs::path p = dir.path / "fence.state";
    {
      auto g = open_ok(p);
      ASSERT_NE(g, nullptr);
      ASSERT_TRUE(g->admit(7).is_ok());
    }
    const std::string damaged = d.apply(read_bytes(p));
    write_bytes(p, damaged);
    write_bytes(dir.path / "fence.state.tmp", "evidence");
    Result<std::unique_ptr<FencingGuard>> g = FencingGuard::open(p);
    ASSERT_FALSE(g.is_ok()) << d.what;
    EXPECT_EQ(g.status().code(), d.code) << d.what;
    EXPECT_TRUE(contains(g.status().message(), p.string())) << g.status().message();
    EXPECT_TRUE(contains(g.status().message(), d.names)) << d.what << ": "
                                                         << g.status().message();
    EXPECT_EQ(read_bytes(p), damaged) << d.what << ": the file was changed";
    EXPECT_EQ(read_bytes(dir.path / "fence.state.tmp"), "evidence") << d.what;
  }
}

TEST(FencingGuard, ASecondGuardOnTheSameFileIsRefusedWhileTheFirstLives) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  auto first = open_ok(p);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->admit(6).is_ok());
  Result<std::unique_ptr<FencingGuard>> second = FencingGuard::open(p);
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Errc::busy);
  EXPECT_TRUE(contains(second.status().message(), "another guard")) << second.status().message();
  first.reset();
  auto third = open_ok(p);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->highest(), 6u);
}

// A write that fails leaves the disk in doubt: the guard refuses everything until reopened, and
// the token whose write failed was never accepted.
TEST(FencingGuard, AFailedWriteFailsClosedUntilReopened) {
  TempDir dir;
  const fs::path p = dir.path / "fence.state";
  const fs::path temp = dir.path / "fence.state.tmp";
  auto g = open_ok(p);
  ASSERT_NE(g, nullptr);
  ASSERT_TRUE(g->admit(3).is_ok());
  fs::create_directory(temp);  // the temp file cannot be created, even by root
  bool ran = false;
  Status s = g->with_token(4, [&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_EQ(s.code(), Errc::io_error);
  EXPECT_TRUE(contains(s.message(), temp.string())) << s.message();
  fs::remove(temp);
  EXPECT_EQ(g->admit(4).code(), Errc::io_error) << "a guard whose write failed must fail closed";
  EXPECT_EQ(g->admit(3).code(), Errc::io_error);
  EXPECT_EQ(g->highest(), 3u);
  g.reset();
  g = open_ok(p);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->highest(), 3u);
  EXPECT_TRUE(g->admit(4).is_ok());
}

// While an action runs under token 5, an admission of token 6 from another thread must wait
// for it: the action and its check are one step. The action waits (bounded) for the other
// thread's admission to finish; a guard that released its lock before the action would let it.
TEST(FencingGuard, AHigherTokenWaitsForTheActionRunningUnderALowerOne) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  std::mutex m;
  std::condition_variable cv;
  bool action_started = false, higher_admitted = false, seen_during_action = true;
  std::thread higher([&] {
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return action_started; });
    }
    EXPECT_TRUE(g->admit(6).is_ok());
    std::lock_guard lock(m);
    higher_admitted = true;
    cv.notify_all();
  });
  Status s = g->with_token(5, [&] {
    std::unique_lock lock(m);
    action_started = true;
    cv.notify_all();
    // Bounded: with a correct guard the other thread cannot finish until this returns.
    seen_during_action =
        cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return higher_admitted; });
  });
  higher.join();
  EXPECT_TRUE(s.is_ok()) << s.message();
  EXPECT_FALSE(seen_during_action) << "token 6 was admitted while an action under 5 ran";
  EXPECT_TRUE(higher_admitted);
  EXPECT_EQ(g->highest(), 6u);
  EXPECT_EQ(g->admit(5).code(), Errc::conflict);
}

// Threads race with interleaved tokens (each thread's own tokens mostly rise, and sometimes fall
// back). Whatever the interleaving, an action never starts under a token lower than one already
// admitted: the last token an action ran under never decreases, and nothing is refused except
// for being below the highest.
TEST(FencingGuard, ConcurrentThreadsNeverRunAnActionBelowAnAdmittedToken) {
  TempDir dir;
  auto g = open_ok(dir.path / "fence.state");
  ASSERT_NE(g, nullptr);
  constexpr int kThreads = 4;
  constexpr int kRequestsPerThread = 200;
  std::atomic<std::uint64_t> last_run{0};
  std::atomic<std::uint64_t> max_admitted{0};
  std::atomic<int> violations{0}, overlaps{0}, running{0}, runs{0}, refusals{0}, other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1000 + t));  // a fixed sequence per thread
      for (int i = 0; i < kRequestsPerThread; i++) {
        const std::uint64_t token = 1 + static_cast<std::uint64_t>(i / 2) + rng() % 4;
        Status s = g->with_token(token, [&] {
          if (running.fetch_add(1) != 0) overlaps++;  // actions run one at a time
          // Another thread that admitted a higher token must not have run before this one...
          if (token < last_run.load()) violations++;
          last_run.store(token);
          // ...nor while this one runs. A pause now and then (long enough for another thread to
          // persist a higher token) widens the window a guard that let go of its lock during
          // the action would leave; it only makes such a bug likelier to show, nothing is timed.
          if (i % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          if (token < last_run.load()) violations++;
          runs++;
          running.fetch_sub(1);
        });
        if (s.is_ok()) {
          std::uint64_t seen = max_admitted.load();
          while (seen < token && !max_admitted.compare_exchange_weak(seen, token)) {
          }
        } else if (s.code() == Errc::conflict) {
          refusals++;
        } else {
          other_errors++;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(runs.load() + refusals.load(), kThreads * kRequestsPerThread);
  EXPECT_GT(runs.load(), 0);
  EXPECT_EQ(g->highest(), max_admitted.load());
  EXPECT_EQ(g->highest(), last_run.load());
  g.reset();
  auto reopened = open_ok(dir.path / "fence.state");
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->highest(), max_admitted.load());
}

}  // namespace
}  // namespace anya
