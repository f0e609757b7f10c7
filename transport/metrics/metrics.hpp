// A small metrics registry rendered in the Prometheus text exposition format, version 0.0.4, for
// GET /metrics of the node's admin API. Three metric types: Counter (monotonic), Gauge (set, inc,
// dec) and Histogram (fixed bucket upper bounds). Every metric lives in a family that has a name,
// help text, a type and zero or more label names; a family hands out one child per combination of
// label values, e.g. anya_messages_sent_total{peer="2",type="append"}.
//
// Why our own rather than prometheus-cpp: we need three types, one thread, and a render function;
// a library would bring its own HTTP server, threads and registry of collectables.
//
// Output is stable, so it can be compared in tests and diffed by a person: families in the order
// they were registered, children sorted by their label values (in label-name order), histogram
// buckets in increasing bound order with le="+Inf" last. Metric and label names are programmer
// constants and are asserted to follow the Prometheus rules; label values and help text are
// escaped as the format requires (label values: backslash, double quote, newline; help: backslash,
// newline).
//
// Threads: the node runs one io_context thread, which registers families, creates children and
// renders. Counter, Gauge and Histogram updates are relaxed atomics, so reading a child's value
// (or rendering) from another thread while that thread only increments is safe; creating families
// or children concurrently with render() is not, and is not needed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.hpp"

namespace anya::transport::metrics {

// Limits. Names are programmer constants, so breaking a name limit is asserted. Label values come
// from the running system (peer ids, message types), so the child limit is handled at run time:
// once a family has kMaxChildrenPerFamily children, every new combination of label values is
// counted in one overflow child whose label values are all kOverflowLabelValue, so a bug that
// mints label values cannot grow memory or the /metrics page without bound.
inline constexpr std::size_t kMaxFamilies = 1024;
inline constexpr std::size_t kMaxNameBytes = 200;
inline constexpr std::size_t kMaxHelpBytes = 1024;
inline constexpr std::size_t kMaxLabelNames = 8;
inline constexpr std::size_t kMaxChildrenPerFamily = 4096;
inline constexpr std::size_t kMaxHistogramBuckets = 64;  // finite bounds; +Inf comes on top
inline constexpr std::string_view kOverflowLabelValue = "_overflow";

// Prometheus rules: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
// and label names starting with "__" are reserved. Both are also held to kMaxNameBytes.
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// Escapes for the text format: label values escape \ " and newline; help text escapes \ and
// newline. Other bytes (UTF-8 included) pass through unchanged.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);

// A sample value as Prometheus parses it: "+Inf", "-Inf", "NaN"; integral values below 2^53 with
// no exponent and no fraction ("3", "-12"); anything else in the shortest form that reads back to
// the same double ("0.25", "1e+300").
std::string format_double(double value);
std::string format_uint(std::uint64_t value);

enum class MetricType { counter, gauge, histogram };
const char* metric_type_name(MetricType type);  // as written after "# TYPE name "

// Monotonic. Whole increments are kept in a uint64 so integer counts render exactly and without
// an exponent; fractional increments (seconds, say) go to a separate double and, once any has been
// made, the counter renders as the double sum. A uint64 wraps after 2^64 increments: at a billion
// a second that is 584 years, so it is not handled.
class Counter {
 public:
  void inc(std::uint64_t amount = 1) { whole_.fetch_add(amount, std::memory_order_relaxed); }
  // `amount` must be finite and >= 0 (asserted): a counter never goes down.
  void add(double amount);

  std::uint64_t whole() const { return whole_.load(std::memory_order_relaxed); }
  double value() const;
  std::string value_text() const;  // what render() writes

 private:
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};  // sum of add(); Invariant: >= 0
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0);
  void dec(double amount = 1.0) { inc(-amount); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Buckets are fixed at creation: strictly increasing finite upper bounds, at most
// kMaxHistogramBuckets of them (asserted); the +Inf bucket is implicit. A value falls in the first
// bucket whose bound is >= the value (a value equal to a bound counts in that bucket, as
// Prometheus defines le). NaN counts only in +Inf and makes the sum NaN.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);

  void observe(double value);

  // Counts as rendered: cumulative[i] counts values <= upper_bounds()[i]; the last element is the
  // +Inf bucket and equals count. Read once, so one render is self-consistent even if another
  // thread observes meanwhile.
  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // size upper_bounds().size() + 1
    double sum = 0.0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;  // Invariant: strictly increasing, finite
  // Per-bucket (not cumulative) counts; Invariant: size bounds_.size() + 1, last is +Inf.
  std::vector<std::atomic<std::uint64_t>> buckets_;
  std::atomic<double> sum_{0.0};
};

using LabelValues = std::vector<std::string>;

namespace detail {
// Sample lines of one child; `label_names` and `values` have the same size.
void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Counter& child);
void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Gauge& child);
void render_child(std::string& out, const std::string& name,
                  const std::vector<std::string>& label_names, const LabelValues& values,
                  const Histogram& child);
}  // namespace detail

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends "# HELP", "# TYPE" and every child's samples.
  void render(std::string& out) const;

 protected:
  virtual void render_children(std::string& out) const = 0;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// One metric family of children of type T. References to children stay valid for the family's
// life (children are never removed), so callers look a child up once and keep it.
template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type,
         std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make_child)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        make_child_(std::move(make_child)) {
    ANYA_ASSERT(make_child_ != nullptr);
    if (this->label_names().empty()) with({});  // an unlabelled family renders 0 from the start
  }

  // The child for these label values, one per label name in order (asserted), created on first
  // use. Past kMaxChildrenPerFamily children, new combinations share the overflow child.
  T& with(LabelValues values) {
    ANYA_ASSERT(values.size() == label_names().size());
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
    if (children_.size() >= kMaxChildrenPerFamily) {
      values.assign(label_names().size(), std::string(kOverflowLabelValue));
      it = children_.find(values);
      if (it != children_.end()) return *it->second;
    }
    auto child = make_child_();
    ANYA_ASSERT(child != nullptr);
    T& ref = *child;
    children_.emplace(std::move(values), std::move(child));
    ANYA_ASSERT(children_.size() <= kMaxChildrenPerFamily + 1);
    return ref;
  }
  T& with(std::initializer_list<std::string_view> values) {
    return with(LabelValues(values.begin(), values.end()));
  }

  std::size_t child_count() const { return children_.size(); }

 private:
  void render_children(std::string& out) const override {
    for (const auto& [values, child] : children_) {
      detail::render_child(out, name(), label_names(), values, *child);
    }
  }

  std::function<std::unique_ptr<T>()> make_child_;
  // Ordered by label values, which is the render order.
  std::map<LabelValues, std::unique_ptr<T>> children_;
};

// Owns the families. Registering a name twice, or more than kMaxFamilies families, is asserted:
// families are registered once at start-up from constants.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counter_family(std::string name, std::string help,
                                  std::vector<std::string> label_names);
  Family<Gauge>& gauge_family(std::string name, std::string help,
                              std::vector<std::string> label_names);
  // Label names of a histogram may not include "le", which the buckets use.
  Family<Histogram>& histogram_family(std::string name, std::string help,
                                      std::vector<double> upper_bounds,
                                      std::vector<std::string> label_names);

  // Unlabelled shortcuts: register a family with no labels and return its only child.
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Histogram& histogram(std::string name, std::string help, std::vector<double> upper_bounds);

  std::size_t family_count() const { return families_.size(); }

  // The whole exposition document: each family's HELP, TYPE and samples, in registration order.
  // Ends with a newline unless empty. Content type: text/plain; version=0.0.4; charset=utf-8.
  std::string render() const;

 private:
  void check_new_family(const std::string& name) const;

  std::vector<std::unique_ptr<FamilyBase>> families_;  // registration order
};

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace anya::transport::metrics
