#include "transport/chain/chain_probe.hpp"

#include <boost/json.hpp>

#include <chrono>

#include "transport/health/exec_runner.hpp"

namespace anya::transport {

namespace json = boost::json;

namespace {

Status bad_output(const std::string& what) {
  return {Errc::malformed, "printed " + what + " (expected {\"height\": N, \"tip\": \"<64 hex "
                           "digits>\"})"};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::uint64_t> read_height(const json::object& o) {
  const json::value* v = o.if_contains("height");
  if (v == nullptr) return bad_output("no \"height\"");
  std::uint64_t height = 0;
  if (v->is_uint64()) {
    height = v->as_uint64();
  } else if (v->is_int64() && v->as_int64() >= 0) {
    height = static_cast<std::uint64_t>(v->as_int64());
  } else {
    return bad_output("\"height\": " + json::serialize(*v) + ", not a non-negative whole number");
  }
  if (height > engine::Limits::max_chain_height) {
    return bad_output("\"height\": " + std::to_string(height) + ", above the limit " +
                      std::to_string(engine::Limits::max_chain_height));
  }
  return height;
}

Status read_tip(const json::object& o, engine::ChainView& view) {
  const json::value* v = o.if_contains("tip");
  if (v == nullptr) return bad_output("no \"tip\"");
  if (!v->is_string()) return bad_output("\"tip\": " + json::serialize(*v) + ", not a string");
  const json::string& tip = v->as_string();
  if (tip.size() != 2 * view.tip.size()) {
    return bad_output("\"tip\" of " + std::to_string(tip.size()) + " characters, not 64");
  }
  for (std::size_t i = 0; i < view.tip.size(); i++) {
    const int hi = hex_value(tip[2 * i]);
    const int lo = hex_value(tip[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return bad_output("\"tip\" with a non-hex character at position " +
                        std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    view.tip[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return {};
}

}  // namespace

Result<engine::ChainView> parse_chain_view_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return bad_output("nothing");
    return bad_output("bad JSON (" + ec.message() + ")");
  }
  const json::object* o = v.if_object();
  if (o == nullptr) return bad_output("JSON that is not an object");
  for (const auto& field : *o) {
    if (field.key() != "height" && field.key() != "tip") {
      return bad_output("an unknown field \"" + std::string(field.key()) + "\"");
    }
  }
  engine::ChainView view;
  Result<std::uint64_t> height = read_height(*o);
  if (!height) return height.status();
  view.height = *height;
  if (Status s = read_tip(*o, view); !s) return s;
  ANYA_ASSERT(view.height <= engine::Limits::max_chain_height);
  return view;
}

std::string chain_tip_hex(const engine::ChainView& view) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * view.tip.size());
  for (std::uint8_t b : view.tip) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

Result<engine::ChainView> run_chain_probe_command(const std::string& command,
                                                  std::uint64_t timeout_ms) {
  ANYA_ASSERT(!command.empty());
  ExecOptions options;
  options.argv = {"/bin/sh", "-c", command};
  options.timeout_ms = timeout_ms;
  options.max_stdout_bytes = ChainProbeLimits::max_output_bytes;
  options.max_stderr_bytes = ChainProbeLimits::max_stderr_bytes;
  options.kill_on_too_much_output = true;  // the output is the answer; that much is not one
  Result<ExecOutcome> outcome = run_exec(options);
  if (!outcome) return outcome.status();
  if (outcome->end == ExecOutcome::End::too_much_output) {
    return Status(Errc::malformed, outcome->describe(options));
  }
  if (!outcome->succeeded()) return Status(Errc::io_error, outcome->describe(options));
  return parse_chain_view_json(outcome->stdout_text);
}

ChainProber::ChainProber(ChainProbeFn probe, std::uint64_t interval_ms, ChainProbeSink deliver)
    : probe_(std::move(probe)), interval_ms_(interval_ms), deliver_(std::move(deliver)) {
  ANYA_ASSERT(probe_ != nullptr);
  ANYA_ASSERT(deliver_ != nullptr);
  ANYA_ASSERT(interval_ms_ > 0);
}

ChainProber::~ChainProber() { stop(); }

void ChainProber::start() {
  ANYA_ASSERT(!thread_.joinable());
  thread_ = std::thread([this] { loop(); });
}

void ChainProber::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ChainProber::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    deliver_(probe_());
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

}  // namespace anya::transport
