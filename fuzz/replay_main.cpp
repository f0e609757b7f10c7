// Replays fuzz inputs through a target without libFuzzer, so the seed corpus and every past
// finding run as an ordinary test under g++. Arguments are files or directories (read
// recursively); inputs run in sorted path order and the output is TAP. A failing input is not
// caught: it crashes, as it would under the fuzzer, and the test fails on the signal.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 2;

int usage(const char* argv0, const std::string& problem) {
  std::fprintf(stderr, "%s: %s\nusage: %s CORPUS_DIR_OR_FILE...\n", argv0, problem.c_str(),
               argv0);
  return kExitUsage;
}

// Collects the input files under `arg`; returns false (with `problem` set) if it is unusable.
bool collect(const std::string& arg, std::vector<fs::path>& files, std::string& problem) {
  std::error_code error;
  if (fs::is_regular_file(arg, error)) {
    files.emplace_back(arg);
    return true;
  }
  if (!fs::is_directory(arg, error)) {
    problem = "not a file or directory: " + arg;
    return false;
  }
  for (const auto& item : fs::recursive_directory_iterator(arg, error)) {
    if (item.is_regular_file()) files.push_back(item.path());
  }
  if (error) problem = "cannot read " + arg + ": " + error.message();
  return !error;
}

bool read_file(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-") return usage(argv[0], "reading an input from stdin is not supported");
    std::string problem;
    if (!collect(arg, files, problem)) return usage(argv[0], problem);
  }
  // An empty corpus would make the test pass while checking nothing.
  if (files.empty()) return usage(argv[0], "no input files");
  std::sort(files.begin(), files.end());

  std::printf("1..%zu\n", files.size());
  std::string bytes;
  int exit_code = 0;
  for (std::size_t k = 0; k < files.size(); ++k) {
    if (!read_file(files[k], bytes)) {
      std::printf("not ok %zu - %s (cannot read)\n", k + 1, files[k].c_str());
      exit_code = 1;
      continue;
    }
    std::fflush(stdout);  // so the TAP line of a crashing input's predecessor is not lost
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    std::printf("ok %zu - %s\n", k + 1, files[k].c_str());
  }
  return exit_code;
}
