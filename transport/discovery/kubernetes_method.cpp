#include "transport/discovery/kubernetes_method.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "transport/discovery/endpoint_slices.hpp"

namespace anya::transport::discovery {

namespace asio = boost::asio;
using engine::discovery::MethodReport;

namespace {

constexpr const char* kName = "kubernetes";
// A relist sooner than this after the previous one waits instead: a server answering 410 to
// every watch must not turn the loop into a busy one.
constexpr std::uint64_t kMinRelistGapMs = 1000;

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string reason_of_status(int status) {
  switch (status) {
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 410: return "gone";
    case 429: return "throttled";
    default: return status >= 500 && status <= 599 ? "server_error"
                                                   : "http_" + std::to_string(status);
  }
}

class State : public std::enable_shared_from_this<State> {
 public:
  State(asio::io_context& io, KubernetesOptions o, Logger log)
      : io_(io), options_(std::move(o)), log_(std::move(log)), timer_(io) {
    base_path_ = "/apis/discovery.k8s.io/v1/namespaces/" + options_.namespace_name +
                 "/endpointslices?labelSelector=" +
                 percent_encode("kubernetes.io/service-name=" + options_.service);
  }

  void start(ReportFn report) {
    report_ = std::move(report);
    list();
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    if (cancel_) cancel_();
    cancel_ = nullptr;
  }

 private:
  void list();
  void on_list(ApiOutcome outcome);
  void watch();
  void on_event(std::string_view line);
  void on_watch_end(ApiOutcome outcome);
  void report_view();
  void fail(const std::string& reason, const std::string& error);
  void relist_after(std::uint64_t delay_ms);
  std::string http_error(const ApiOutcome& o) const;

  asio::io_context& io_;
  KubernetesOptions options_;
  Logger log_;
  asio::steady_timer timer_;
  ReportFn report_;
  std::string base_path_;
  std::function<void()> cancel_;            // the call in flight
  std::map<std::string, Slice> slices_;     // by slice name
  std::string resource_version_;
  std::uint64_t last_list_ms_ = 0;
  std::uint64_t watch_started_ms_ = 0;
  std::string last_skipped_;
  bool stopped_ = false;
};

std::string State::http_error(const ApiOutcome& o) const {
  std::string text = "HTTP " + std::to_string(o.status) + " from " + options_.server.url();
  const std::string message = status_message(o.body);
  if (!message.empty()) text += ": " + message;
  if (o.status == 401) {
    text += " (the service-account token in " + options_.server.token_file.string() +
            " was refused: expired or revoked?)";
  } else if (o.status == 403) {
    text += " (the service account needs list and watch on endpointslices.discovery.k8s.io "
            "in namespace " + options_.namespace_name + ")";
  }
  return text;
}

void State::list() {
  if (stopped_) return;
  last_list_ms_ = steady_now_ms();
  auto self = shared_from_this();
  ApiCall call;
  call.path = base_path_;
  call.timeout_ms = options_.timeout_ms;
  call.done = [self](ApiOutcome o) { self->on_list(std::move(o)); };
  cancel_ = api_call(io_, options_.server, std::move(call));
}

void State::on_list(ApiOutcome o) {
  cancel_ = nullptr;
  if (stopped_) return;
  if (!o.reason.empty()) return fail(o.reason, o.error);
  if (o.status != 200) return fail(reason_of_status(o.status), http_error(o));
  Result<SliceList> list = parse_slice_list(o.body);
  if (!list) return fail("bad_json", list.status().message());
  slices_.clear();
  for (Slice& s : list->items) slices_[s.name] = std::move(s);
  resource_version_ = list->resource_version;
  report_view();
  if (stopped_) return;
  if (options_.watch && !resource_version_.empty()) return watch();
  relist_after(options_.interval_ms);
}

void State::watch() {
  if (stopped_) return;
  watch_started_ms_ = steady_now_ms();
  const std::uint64_t watch_s = std::max<std::uint64_t>(options_.interval_ms / 1000, 1);
  auto self = shared_from_this();
  ApiCall call;
  call.path = base_path_ + "&watch=true&allowWatchBookmarks=true&resourceVersion=" +
              percent_encode(resource_version_) + "&timeoutSeconds=" + std::to_string(watch_s);
  // The server ends the watch after watch_s; silence well past that is a dead connection.
  call.timeout_ms = watch_s * 1000 + options_.timeout_ms;
  call.stream = true;
  call.on_line = [self](std::string_view line) { self->on_event(line); };
  call.done = [self](ApiOutcome o) { self->on_watch_end(std::move(o)); };
  cancel_ = api_call(io_, options_.server, std::move(call));
}

void State::on_event(std::string_view line) {
  if (stopped_) return;
  Result<WatchEvent> e = parse_watch_event(line);
  if (!e || e->type == "ERROR") {
    if (cancel_) cancel_();
    cancel_ = nullptr;
    if (e && e->error_code == 410) {
      log_.debug("watch: resource version ", resource_version_, " is gone; listing again");
      return relist_after(0);
    }
    return e ? fail("watch_error", "watch ERROR " + std::to_string(e->error_code) + ": " +
                                       e->error_message)
             : fail("bad_json", e.status().message());
  }
  if (!e->resource_version.empty()) resource_version_ = e->resource_version;
  if (e->type == "BOOKMARK") return;
  ANYA_ASSERT(e->slice.has_value());
  if (e->type == "DELETED") {
    slices_.erase(e->slice->name);
  } else if (slices_.size() < kMaxSlices || slices_.count(e->slice->name) != 0) {
    slices_[e->slice->name] = std::move(*e->slice);
  }
  report_view();
}

void State::on_watch_end(ApiOutcome o) {
  cancel_ = nullptr;
  if (stopped_) return;
  if (!o.reason.empty()) return fail(o.reason, o.error);
  if (o.status == 410) return relist_after(0);
  if (o.status != 200) return fail(reason_of_status(o.status), http_error(o));
  // The server ended the watch (timeoutSeconds): renew it from the last version seen, unless
  // it ended at once, which would otherwise loop.
  if (steady_now_ms() - watch_started_ms_ < kMinRelistGapMs) {
    return relist_after(options_.interval_ms);
  }
  watch();
}

void State::report_view() {
  Result<SliceProposals> p = proposals_from(slices_, options_.port_name, options_.node_id_offset);
  if (!p) return report_(MethodReport::failure(kName, "bad_port", p.status().message()));
  std::string skipped;
  for (const std::string& s : p->skipped) skipped += (skipped.empty() ? "" : "; ") + s;
  if (!skipped.empty() && skipped != last_skipped_) {
    log_.warn("some endpoints of service ", options_.service, " were left out: ", skipped);
  }
  last_skipped_ = skipped;
  report_(MethodReport::success(kName, std::move(p->peers)));
}

void State::fail(const std::string& reason, const std::string& error) {
  report_(MethodReport::failure(kName, reason, error));
  relist_after(options_.interval_ms);
}

void State::relist_after(std::uint64_t delay_ms) {
  if (stopped_) return;
  const std::uint64_t since_ms = steady_now_ms() - last_list_ms_;
  if (delay_ms == 0 && since_ms < kMinRelistGapMs) delay_ms = kMinRelistGapMs - since_ms;
  auto self = shared_from_this();
  timer_.expires_after(std::chrono::milliseconds(delay_ms));
  timer_.async_wait([self](const boost::system::error_code& e) {
    if (!e) self->list();
  });
}

class KubernetesMethod final : public Method {
 public:
  KubernetesMethod(asio::io_context& io, KubernetesOptions o, Logger log)
      : state_(std::make_shared<State>(io, std::move(o), std::move(log))) {}
  ~KubernetesMethod() override { state_->stop(); }
  std::string_view name() const override { return kName; }
  Status start(ReportFn report) override {
    state_->start(std::move(report));
    return {};
  }
  void stop() override { state_->stop(); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

Result<KubernetesOptions> kubernetes_options(
    const KubernetesDiscoveryConfig& c, const std::function<const char*(const char*)>& getenv) {
  KubernetesOptions o;
  std::string url = c.api_server;
  if (url.empty()) {
    const char* host = getenv("KUBERNETES_SERVICE_HOST");
    const char* port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
      return Status(Errc::invalid_argument,
                    "discovery.kubernetes.api_server: not set, and KUBERNETES_SERVICE_HOST and "
                    "KUBERNETES_SERVICE_PORT are not in the environment (not in a pod?)");
    }
    url = "https://" + std::string(host) + ":" + port;
  }
  Result<HostPort> hp = parse_host_port(std::string_view(url).substr(url.find("://") + 3));
  if (url.rfind("https://", 0) != 0 || !hp) {
    return Status(Errc::invalid_argument, "discovery.kubernetes.api_server: \"" + url +
                                              "\" is not https://HOST:PORT (IPv4 or a name)");
  }
  o.server = {hp->host, std::to_string(hp->port), c.ca_file, c.token_file};
  o.namespace_name = c.namespace_name;
  if (o.namespace_name.empty()) {
    const std::filesystem::path file = c.token_file.parent_path() / "namespace";
    std::ifstream in(file);
    std::getline(in, o.namespace_name);
    const bool valid = std::all_of(o.namespace_name.begin(), o.namespace_name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    });
    // It goes into the request's path: only a Kubernetes name may.
    if (o.namespace_name.empty() || o.namespace_name.size() > 63 || !valid) {
      return Status(Errc::invalid_argument, "discovery.kubernetes.namespace: not set, and " +
                                                file.string() + " does not hold one");
    }
  }
  o.service = c.service;
  o.port_name = c.port_name;
  o.watch = c.mode == KubernetesDiscoveryConfig::Mode::watch;
  o.interval_ms = c.interval_ms;
  o.timeout_ms = c.timeout_ms;
  o.node_id_offset = c.node_id_offset;
  return o;
}

std::unique_ptr<Method> make_kubernetes_method(asio::io_context& io, KubernetesOptions options,
                                               Logger log) {
  ANYA_ASSERT(!options.service.empty());
  ANYA_ASSERT(options.interval_ms > 0);
  return std::make_unique<KubernetesMethod>(io, std::move(options), std::move(log));
}

}  // namespace anya::transport::discovery
