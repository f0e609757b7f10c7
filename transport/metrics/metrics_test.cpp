// Tests of the metrics registry: exact rendered text of each type, escaping, histogram buckets at
// and around their bounds, stable ordering, the child limit, and a small parser of the text format
// that reads a whole rendered document back and checks every line is well formed.
#include "transport/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace anya::transport::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// --- a tiny parser of sample lines: name{label="value",...} value -------------------------------

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // values unescaped
  double value = 0.0;
};

bool parse_name(std::string_view line, std::size_t& pos, bool metric, std::string& out) {
  const std::size_t start = pos;
  while (pos < line.size()) {
    const char c = line[pos];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                        (metric && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && pos > start)) break;
    ++pos;
  }
  out = std::string(line.substr(start, pos - start));
  return !out.empty();
}

// Reads a quoted label value starting after the opening quote; only \\ \" \n are legal escapes.
bool parse_quoted(std::string_view line, std::size_t& pos, std::string& out) {
  out.clear();
  while (pos < line.size()) {
    const char c = line[pos++];
    if (c == '"') return true;
    if (c == '\n') return false;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (pos >= line.size()) return false;
    const char e = line[pos++];
    if (e == '\\') out.push_back('\\');
    else if (e == '"') out.push_back('"');
    else if (e == 'n') out.push_back('\n');
    else return false;
  }
  return false;
}

std::optional<double> parse_value(std::string_view text) {
  if (text == "+Inf") return kInf;
  if (text == "-Inf") return -kInf;
  if (text == "NaN") return kNaN;
  // from_chars also reads "inf" and "nan", which Prometheus spells differently.
  const bool numeric = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 'e' || c == '+';
  });
  if (!numeric) return std::nullopt;
  double value = 0.0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<Sample> parse_sample(std::string_view line) {
  Sample sample;
  std::size_t pos = 0;
  if (!parse_name(line, pos, true, sample.name)) return std::nullopt;
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (true) {
      std::string label;
      std::string value;
      if (!parse_name(line, pos, false, label)) return std::nullopt;
      if (line.substr(pos, 2) != "=\"") return std::nullopt;
      pos += 2;
      if (!parse_quoted(line, pos, value)) return std::nullopt;
      sample.labels.emplace_back(label, value);
      if (pos < line.size() && line[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < line.size() && line[pos] == '}') {
        ++pos;
        break;
      }
      return std::nullopt;
    }
  }
  if (pos >= line.size() || line[pos] != ' ') return std::nullopt;
  const auto value = parse_value(line.substr(pos + 1));
  if (!value) return std::nullopt;
  sample.value = *value;
  return sample;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// --- numbers, names, escaping -------------------------------------------------------------------

TEST(MetricsFormat, NumbersArePrometheusReadable) {
  EXPECT_EQ(format_double(0.0), "0");
  EXPECT_EQ(format_double(3.0), "3");
  EXPECT_EQ(format_double(-12.0), "-12");
  EXPECT_EQ(format_double(1e15), "1000000000000000");
  EXPECT_EQ(format_double(0.25), "0.25");
  EXPECT_EQ(format_double(0.1), "0.1");
  EXPECT_EQ(format_double(kInf), "+Inf");
  EXPECT_EQ(format_double(-kInf), "-Inf");
  EXPECT_EQ(format_double(kNaN), "NaN");
  EXPECT_EQ(format_uint(18446744073709551615ull), "18446744073709551615");
  // Values that are not small integers read back to the same double.
  for (const double v : {1e300, -2.5e-300, 1.0 / 3.0, 9007199254740993.0 * 4, 123.456}) {
    const auto parsed = parse_value(format_double(v));
    ASSERT_TRUE(parsed.has_value()) << format_double(v);
    EXPECT_EQ(*parsed, v) << format_double(v);
  }
}

TEST(MetricsFormat, NameRules) {
  EXPECT_TRUE(valid_metric_name("anya_messages_sent_total"));
  EXPECT_TRUE(valid_metric_name("job:rate5m"));
  EXPECT_TRUE(valid_metric_name("_x9"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_FALSE(valid_metric_name("9lives"));
  EXPECT_FALSE(valid_metric_name("a-b"));
  EXPECT_FALSE(valid_metric_name("a b"));
  EXPECT_FALSE(valid_metric_name(std::string(kMaxNameBytes + 1, 'a')));
  EXPECT_TRUE(valid_label_name("peer"));
  EXPECT_TRUE(valid_label_name("_a1"));
  EXPECT_FALSE(valid_label_name("a:b"));  // colons are for metric names only
  EXPECT_FALSE(valid_label_name("__name__"));  // reserved
  EXPECT_FALSE(valid_label_name("1a"));
  EXPECT_FALSE(valid_label_name(""));
}

TEST(MetricsFormat, Escaping) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain ünïcode"), "plain ünïcode");
  // Help text keeps double quotes as they are.
  EXPECT_EQ(escape_help("say \"hi\"\\\nnext"), "say \"hi\"\\\\\\nnext");
}

TEST(MetricsDeathTest, InvalidNamesAreProgrammerErrors) {
  Registry registry;
  EXPECT_DEATH(registry.counter("bad-name", "h"), "assertion failed");
  EXPECT_DEATH(registry.gauge_family("ok", "h", {"__reserved"}), "assertion failed");
  EXPECT_DEATH(registry.gauge_family("ok", "h", {"a", "a"}), "assertion failed");
  EXPECT_DEATH(registry.histogram_family("ok", "h", {1.0}, {"le"}), "assertion failed");
  EXPECT_DEATH(registry.histogram("ok", "h", {2.0, 1.0}), "assertion failed");
  EXPECT_DEATH(registry.histogram("ok", "h", {1.0, kInf}), "assertion failed");
  registry.counter("twice", "h");
  EXPECT_DEATH(registry.gauge("twice", "h"), "assertion failed");
  auto& family = registry.counter_family("labelled", "h", {"a", "b"});
  EXPECT_DEATH(family.with({"only one"}), "assertion failed");
  EXPECT_DEATH(registry.counter("c", "h").add(-1.0), "assertion failed");
}

// --- exact text per type ------------------------------------------------------------------------

TEST(MetricsRender, EmptyRegistryRendersNothing) { EXPECT_EQ(Registry().render(), ""); }

TEST(MetricsRender, UnlabelledCounter) {
  Registry registry;
  Counter& counter = registry.counter("anya_elections_total", "Elections started.");
  EXPECT_EQ(registry.render(),
            "# HELP anya_elections_total Elections started.\n"
            "# TYPE anya_elections_total counter\n"
            "anya_elections_total 0\n");
  counter.inc();
  counter.inc(41);
  EXPECT_EQ(counter.whole(), 42u);
  EXPECT_EQ(registry.render(),
            "# HELP anya_elections_total Elections started.\n"
            "# TYPE anya_elections_total counter\n"
            "anya_elections_total 42\n");
}

TEST(MetricsRender, CounterBeyondDoublePrecisionStaysExact) {
  Registry registry;
  Counter& counter = registry.counter("big_total", "h");
  counter.inc(9007199254740993ull);  // 2^53 + 1: not representable as a double
  EXPECT_NE(registry.render().find("big_total 9007199254740993\n"), std::string::npos);
}

TEST(MetricsRender, FractionalCounter) {
  Registry registry;
  Counter& counter = registry.counter("busy_seconds_total", "h");
  counter.inc(2);
  counter.add(0.5);
  EXPECT_DOUBLE_EQ(counter.value(), 2.5);
  EXPECT_EQ(registry.render(),
            "# HELP busy_seconds_total h\n"
            "# TYPE busy_seconds_total counter\n"
            "busy_seconds_total 2.5\n");
}

TEST(MetricsRender, LabelledCounterChildrenSortedByLabels) {
  Registry registry;
  auto& sent = registry.counter_family("anya_messages_sent_total", "Messages sent, per peer.",
                                       {"peer", "type"});
  sent.with({"3", "vote"}).inc(2);
  sent.with({"2", "heartbeat"}).inc(5);
  sent.with({"2", "append"}).inc();
  sent.with({"2", "append"}).inc();  // same child
  EXPECT_EQ(sent.child_count(), 3u);
  EXPECT_EQ(registry.render(),
            "# HELP anya_messages_sent_total Messages sent, per peer.\n"
            "# TYPE anya_messages_sent_total counter\n"
            "anya_messages_sent_total{peer=\"2\",type=\"append\"} 2\n"
            "anya_messages_sent_total{peer=\"2\",type=\"heartbeat\"} 5\n"
            "anya_messages_sent_total{peer=\"3\",type=\"vote\"} 2\n");
}

TEST(MetricsRender, LabelledFamilyWithoutChildrenHasOnlyHeader) {
  Registry registry;
  registry.gauge_family("anya_peer_up", "1 if connected.", {"peer"});
  EXPECT_EQ(registry.render(),
            "# HELP anya_peer_up 1 if connected.\n"
            "# TYPE anya_peer_up gauge\n");
}

TEST(MetricsRender, Gauge) {
  Registry registry;
  Gauge& term = registry.gauge("anya_term", "Current term.");
  auto& lag = registry.gauge_family("anya_peer_lag_entries", "Entries behind.", {"peer"});
  term.set(7);
  term.inc();
  term.dec(3);
  lag.with({"2"}).set(-1.5);
  lag.with({"10"}).set(kNaN);
  lag.with({"4"}).set(kInf);
  EXPECT_EQ(registry.render(),
            "# HELP anya_term Current term.\n"
            "# TYPE anya_term gauge\n"
            "anya_term 5\n"
            "# HELP anya_peer_lag_entries Entries behind.\n"
            "# TYPE anya_peer_lag_entries gauge\n"
            "anya_peer_lag_entries{peer=\"10\"} NaN\n"  // label values sort as strings
            "anya_peer_lag_entries{peer=\"2\"} -1.5\n"
            "anya_peer_lag_entries{peer=\"4\"} +Inf\n");
}

TEST(MetricsRender, Histogram) {
  Registry registry;
  Histogram& h =
      registry.histogram("anya_fsync_seconds", "Time in fsync.", {0.001, 0.01, 0.1, 1});
  for (const double v : {0.0005, 0.001, 0.002, 0.1, 0.5, 3.0}) h.observe(v);
  EXPECT_EQ(registry.render(),
            "# HELP anya_fsync_seconds Time in fsync.\n"
            "# TYPE anya_fsync_seconds histogram\n"
            "anya_fsync_seconds_bucket{le=\"0.001\"} 2\n"
            "anya_fsync_seconds_bucket{le=\"0.01\"} 3\n"
            "anya_fsync_seconds_bucket{le=\"0.1\"} 4\n"
            "anya_fsync_seconds_bucket{le=\"1\"} 5\n"
            "anya_fsync_seconds_bucket{le=\"+Inf\"} 6\n"
            "anya_fsync_seconds_sum 3.6035\n"
            "anya_fsync_seconds_count 6\n");
}

TEST(MetricsRender, LabelledHistogramPutsLeLast) {
  Registry registry;
  auto& family = registry.histogram_family("rtt_ms", "Round trip.", {10, 100}, {"peer"});
  family.with({"2"}).observe(50);
  EXPECT_EQ(registry.render(),
            "# HELP rtt_ms Round trip.\n"
            "# TYPE rtt_ms histogram\n"
            "rtt_ms_bucket{peer=\"2\",le=\"10\"} 0\n"
            "rtt_ms_bucket{peer=\"2\",le=\"100\"} 1\n"
            "rtt_ms_bucket{peer=\"2\",le=\"+Inf\"} 1\n"
            "rtt_ms_sum{peer=\"2\"} 50\n"
            "rtt_ms_count{peer=\"2\"} 1\n");
}

TEST(MetricsRender, EscapesLabelValuesAndHelp) {
  Registry registry;
  auto& family = registry.counter_family("errors_total", "Errors \\ by\nreason \"quoted\".",
                                         {"reason"});
  family.with({"disk \"full\"\\\nretry"}).inc();
  EXPECT_EQ(registry.render(),
            "# HELP errors_total Errors \\\\ by\\nreason \"quoted\".\n"
            "# TYPE errors_total counter\n"
            "errors_total{reason=\"disk \\\"full\\\"\\\\\\nretry\"} 1\n");
}

// --- histogram buckets --------------------------------------------------------------------------

TEST(MetricsHistogram, ValueEqualToABoundFallsInThatBucket) {
  Histogram h({1.0, 2.0, 3.0});
  h.observe(2.0);
  auto snap = h.snapshot();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{0, 1, 1, 1}));
  h.observe(std::nextafter(2.0, kInf));  // just above: the next bucket
  h.observe(std::nextafter(1.0, 0.0));   // just below: the first bucket
  snap = h.snapshot();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{1, 2, 3, 3}));
  EXPECT_EQ(snap.count, 3u);
}

TEST(MetricsHistogram, CumulativeCountsMatchAModel) {
  const std::vector<double> bounds = {-1.0, 0.0, 0.5, 2.0, 10.0};
  Histogram h(bounds);
  std::vector<double> values;
  for (int i = -30; i <= 130; ++i) values.push_back(i / 10.0);
  values.push_back(-kInf);
  values.push_back(kInf);
  for (const double v : values) h.observe(v);
  const auto snap = h.snapshot();
  ASSERT_EQ(snap.cumulative.size(), bounds.size() + 1);
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    std::uint64_t expected = 0;
    for (const double v : values) expected += v <= bounds[i] ? 1 : 0;
    EXPECT_EQ(snap.cumulative[i], expected) << "le=" << bounds[i];
  }
  EXPECT_EQ(snap.cumulative.back(), values.size());
  EXPECT_EQ(snap.count, values.size());
}

TEST(MetricsHistogram, NaNCountsOnlyInInf) {
  Histogram h({1.0});
  h.observe(kNaN);
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{0, 1}));
  EXPECT_TRUE(std::isnan(snap.sum));
}

TEST(MetricsHistogram, NoFiniteBoundsHasOnlyInf) {
  Registry registry;
  registry.histogram("only_inf", "h", {}).observe(4);
  EXPECT_EQ(registry.render(),
            "# HELP only_inf h\n# TYPE only_inf histogram\n"
            "only_inf_bucket{le=\"+Inf\"} 1\nonly_inf_sum 4\nonly_inf_count 1\n");
}

// --- ordering and limits ------------------------------------------------------------------------

std::string render_with_insertion_order(const std::vector<std::vector<std::string>>& order) {
  Registry registry;
  registry.gauge("z_first", "registered first");
  auto& family = registry.counter_family("a_second", "registered second", {"x", "y"});
  registry.gauge("m_third", "registered third");
  for (const auto& values : order) family.with(values).inc(std::stoull(values[1]));
  return registry.render();
}

TEST(MetricsOrder, StableWhateverTheInsertionOrder) {
  std::vector<std::vector<std::string>> order = {
      {"b", "1"}, {"a", "2"}, {"a", "10"}, {"", "3"}, {"b", "0"}};
  const std::string first = render_with_insertion_order(order);
  std::reverse(order.begin(), order.end());
  EXPECT_EQ(render_with_insertion_order(order), first);
  std::rotate(order.begin(), order.begin() + 2, order.end());
  EXPECT_EQ(render_with_insertion_order(order), first);
  // Families by registration order, not by name; children by label values.
  const std::vector<std::string> lines = split_lines(first);
  const std::vector<std::string> expected = {
      "# HELP z_first registered first",
      "# TYPE z_first gauge",
      "z_first 0",
      "# HELP a_second registered second",
      "# TYPE a_second counter",
      "a_second{x=\"\",y=\"3\"} 3",
      "a_second{x=\"a\",y=\"10\"} 10",
      "a_second{x=\"a\",y=\"2\"} 2",
      "a_second{x=\"b\",y=\"0\"} 0",
      "a_second{x=\"b\",y=\"1\"} 1",
      "# HELP m_third registered third",
      "# TYPE m_third gauge",
      "m_third 0",
  };
  EXPECT_EQ(lines, expected);
}

TEST(MetricsLimits, ChildrenPastTheLimitShareTheOverflowChild) {
  Registry registry;
  auto& family = registry.counter_family("c_total", "h", {"k"});
  for (std::size_t i = 0; i < kMaxChildrenPerFamily; ++i) family.with({std::to_string(i)}).inc();
  EXPECT_EQ(family.child_count(), kMaxChildrenPerFamily);
  family.with({"new1"}).inc();
  family.with({"new2"}).inc(2);
  family.with({"0"}).inc();  // existing children still work
  EXPECT_EQ(family.child_count(), kMaxChildrenPerFamily + 1);
  const std::string text = registry.render();
  EXPECT_NE(text.find("c_total{k=\"_overflow\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("c_total{k=\"0\"} 2\n"), std::string::npos);
  EXPECT_EQ(text.find("new1"), std::string::npos);
}

// --- the whole document, parsed back ------------------------------------------------------------

TEST(MetricsParse, EveryLineOfARenderedDocumentIsWellFormed) {
  Registry registry;
  auto& sent = registry.counter_family("anya_messages_sent_total", "Sent.", {"peer", "type"});
  auto& lag = registry.gauge_family("anya:lag", "Lag \\ with\nnewline.", {"peer"});
  auto& rtt = registry.histogram_family("anya_rtt_seconds", "RTT.", {0.001, 0.5, 1e6}, {"peer"});
  registry.counter("anya_up_total", "Up.").add(0.125);
  const std::vector<std::string> nasty = {"2", "a\"b", "back\\slash", "new\nline", "", "ü,}{="};
  for (std::size_t i = 0; i < nasty.size(); ++i) {
    sent.with({nasty[i], "append"}).inc(i);
    lag.with({nasty[i]}).set(i % 2 == 0 ? kNaN : -1e-300 * static_cast<double>(i));
    rtt.with({nasty[i]}).observe(static_cast<double>(i) * 0.3);
  }

  const std::vector<std::string> lines = split_lines(registry.render());
  std::string family;  // name from the last # TYPE line
  std::string type;
  std::size_t samples = 0;
  std::vector<std::string> seen_values;
  for (const std::string& line : lines) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream in(line.substr(7));
      in >> family >> type;
      ASSERT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      continue;
    }
    const auto sample = parse_sample(line);
    ASSERT_TRUE(sample.has_value()) << "malformed line: " << line;
    ++samples;
    if (type == "histogram") {
      const bool ok = sample->name == family + "_bucket" || sample->name == family + "_sum" ||
                      sample->name == family + "_count";
      EXPECT_TRUE(ok) << line;
      if (sample->name == family + "_bucket") {
        ASSERT_FALSE(sample->labels.empty());
        EXPECT_EQ(sample->labels.back().first, "le");
      }
    } else {
      EXPECT_EQ(sample->name, family) << line;
    }
    if (!sample->labels.empty() && sample->labels.front().first == "peer") {
      seen_values.push_back(sample->labels.front().second);
    }
  }
  // 6 counters, 6 gauges, 6 histograms of 4 buckets + sum + count, one unlabelled counter.
  EXPECT_EQ(samples, 6u + 6u + 6u * 6u + 1u);
  // Every label value came back unescaped to exactly what was given.
  for (const auto& value : nasty) {
    EXPECT_EQ(std::count(seen_values.begin(), seen_values.end(), value), 1 + 1 + 6) << value;
  }
}

TEST(MetricsParse, ParserRejectsBrokenLines) {
  // The parser must be able to fail, or the test above proves nothing.
  EXPECT_TRUE(parse_sample("a{b=\"c\"} 1").has_value());
  EXPECT_FALSE(parse_sample("a{b=\"c} 1").has_value());
  EXPECT_FALSE(parse_sample("a{b=\"c\\q\"} 1").has_value());
  EXPECT_FALSE(parse_sample("a{b=\"c\"} 1e").has_value());
  EXPECT_FALSE(parse_sample("a{b=\"c\",} 1").has_value());
  EXPECT_FALSE(parse_sample("a 1 2").has_value());
  EXPECT_FALSE(parse_sample("a inf").has_value());
  EXPECT_FALSE(parse_sample("1a 1").has_value());
}

// --- a reader on another thread -----------------------------------------------------------------

TEST(MetricsThreads, ReaderSeesMonotonicCounter) {
  Registry registry;
  Counter& counter = registry.counter("c_total", "h");
  Gauge& gauge = registry.gauge("g", "h");
  constexpr std::uint64_t kIncrements = 200000;
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kIncrements; ++i) {
      counter.inc();
      gauge.inc(1.0);
    }
  });
  std::uint64_t last = 0;
  while (last < kIncrements) {
    const std::uint64_t now = counter.whole();
    ASSERT_GE(now, last);
    last = now;
  }
  writer.join();
  EXPECT_EQ(counter.whole(), kIncrements);
  EXPECT_EQ(gauge.value(), static_cast<double>(kIncrements));
}

}  // namespace
}  // namespace anya::transport::metrics
