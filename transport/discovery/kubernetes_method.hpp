// Kubernetes discovery: the EndpointSlices of a headless service (label
// kubernetes.io/service-name=SERVICE) in a namespace, read from the API server over HTTPS with
// the service account's token and CA (kubernetes_api.hpp), turned into peers by
// endpoint_slices.hpp (ready endpoints only; node id from the StatefulSet pod name).
//
// poll:  list every `interval`.
// watch: list, then watch from the list's resourceVersion (allowWatchBookmarks; the server is
//        asked to end each watch after `interval`, and it is renewed from the last version
//        seen). Every event updates the slices and reports the whole view. 410 Gone (an HTTP
//        410 or an ERROR event with code 410: the version is too old) means list again at
//        once; any other failure reports and lists again after `interval`.
//
// Failure reasons: "token", "ca", "resolve", "connect", "tls", "io", "timeout", "too_large",
// "unauthorized" (401: the token expired or was revoked), "forbidden" (403: RBAC), "not_found"
// (404), "gone" (410 on a list), "throttled" (429), "server_error" (5xx), "http_NNN" (other),
// "bad_json" (a body or event that does not parse), "bad_port" (no usable port in a slice).
#pragma once

#include <memory>

#include "transport/config/node_config.hpp"
#include "transport/discovery/kubernetes_api.hpp"
#include "transport/discovery/method.hpp"
#include "transport/log/log.hpp"

namespace boost::asio {
class io_context;
}

namespace anya::transport::discovery {

struct KubernetesOptions {
  ApiServer server;
  std::string namespace_name;
  std::string service;
  std::string port_name;
  bool watch = false;
  std::uint64_t interval_ms = 10'000;
  std::uint64_t timeout_ms = 5'000;
  std::uint64_t node_id_offset = 1;
};

// Fills in what the configuration leaves to the pod's environment: the API server from
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, the namespace from the file beside the
// token. Errors name the field. `getenv` is a parameter so tests need not touch the process's.
Result<KubernetesOptions> kubernetes_options(
    const KubernetesDiscoveryConfig& config,
    const std::function<const char*(const char*)>& getenv);

std::unique_ptr<Method> make_kubernetes_method(boost::asio::io_context& io,
                                               KubernetesOptions options, Logger log);

}  // namespace anya::transport::discovery
