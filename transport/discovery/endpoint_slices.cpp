#include "transport/discovery/endpoint_slices.hpp"

#include <boost/json.hpp>

#include "engine/discovery/names.hpp"

namespace anya::transport::discovery {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxMessageBytes = 300;

Status malformed(const std::string& where, const std::string& what) {
  return {Errc::malformed, "EndpointSlice JSON: " + where + ": " + what};
}

// Field `key` of `o` as a string; absent or null: "" (optional fields).
Result<std::string> optional_string(const json::object& o, std::string_view key,
                                    const std::string& where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) return malformed(where + "." + std::string(key), "expected a string");
  return std::string(v->as_string());
}

Result<const json::object*> optional_object(const json::object& o, std::string_view key,
                                            const std::string& where) {
  static const json::object empty;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return &empty;
  if (!v->is_object()) return malformed(where + "." + std::string(key), "expected an object");
  return &v->as_object();
}

Result<const json::array*> optional_array(const json::object& o, std::string_view key,
                                          const std::string& where) {
  static const json::array empty;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return &empty;
  if (!v->is_array()) return malformed(where + "." + std::string(key), "expected a list");
  return &v->as_array();
}

Result<SliceEndpoint> parse_endpoint(const json::value& v, const std::string& where) {
  if (!v.is_object()) return malformed(where, "expected an object");
  const json::object& o = v.as_object();
  SliceEndpoint e;
  Result<const json::array*> addresses = optional_array(o, "addresses", where);
  if (!addresses) return addresses.status();
  if (!(*addresses)->empty()) {
    if (!(**addresses)[0].is_string()) return malformed(where + ".addresses[0]", "not a string");
    e.address = std::string((**addresses)[0].as_string());
  }
  Result<const json::object*> conditions = optional_object(o, "conditions", where);
  if (!conditions) return conditions.status();
  if (const json::value* ready = (*conditions)->if_contains("ready");
      ready != nullptr && !ready->is_null()) {
    if (!ready->is_bool()) return malformed(where + ".conditions.ready", "expected true/false");
    e.ready = ready->as_bool();
  }
  Result<std::string> hostname = optional_string(o, "hostname", where);
  if (!hostname) return hostname.status();
  e.pod = *hostname;
  if (e.pod.empty()) {
    Result<const json::object*> ref = optional_object(o, "targetRef", where);
    if (!ref) return ref.status();
    Result<std::string> name = optional_string(**ref, "name", where + ".targetRef");
    if (!name) return name.status();
    e.pod = *name;
  }
  return e;
}

Result<Slice> parse_slice(const json::value& v, const std::string& where) {
  if (!v.is_object()) return malformed(where, "expected an object");
  const json::object& o = v.as_object();
  Slice s;
  Result<const json::object*> meta = optional_object(o, "metadata", where);
  if (!meta) return meta.status();
  Result<std::string> name = optional_string(**meta, "name", where + ".metadata");
  if (!name) return name.status();
  s.name = *name;
  Result<std::string> type = optional_string(o, "addressType", where);
  if (!type) return type.status();
  s.address_type = *type;
  Result<const json::array*> endpoints = optional_array(o, "endpoints", where);
  if (!endpoints) return endpoints.status();
  if ((*endpoints)->size() > kMaxEndpointsPerSlice) {
    return malformed(where + ".endpoints", "more than 1000");
  }
  for (std::size_t i = 0; i < (*endpoints)->size(); i++) {
    Result<SliceEndpoint> e =
        parse_endpoint((**endpoints)[i], where + ".endpoints[" + std::to_string(i) + "]");
    if (!e) return e.status();
    s.endpoints.push_back(std::move(*e));
  }
  Result<const json::array*> ports = optional_array(o, "ports", where);
  if (!ports) return ports.status();
  for (std::size_t i = 0; i < (*ports)->size() && i < kMaxEndpointsPerSlice; i++) {
    const std::string at = where + ".ports[" + std::to_string(i) + "]";
    const json::value& p = (**ports)[i];
    if (!p.is_object()) return malformed(at, "expected an object");
    SlicePort port;
    Result<std::string> port_name = optional_string(p.as_object(), "name", at);
    if (!port_name) return port_name.status();
    port.name = *port_name;
    const json::value* number = p.as_object().if_contains("port");
    if (number == nullptr || !number->is_int64() || number->as_int64() < 1 ||
        number->as_int64() > 65535) {
      return malformed(at + ".port", "expected a port number");
    }
    port.port = static_cast<std::uint16_t>(number->as_int64());
    s.ports.push_back(std::move(port));
  }
  return s;
}

Result<json::object> parse_object(std::string_view text, const char* what) {
  if (text.size() > kMaxApiBodyBytes) {
    return Status(Errc::malformed, std::string(what) + ": larger than 8 MiB");
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Status(Errc::malformed, std::string(what) + ": not JSON (" + ec.message() + ")");
  if (!v.is_object()) return Status(Errc::malformed, std::string(what) + ": not a JSON object");
  return std::move(v.as_object());
}

}  // namespace

Result<SliceList> parse_slice_list(std::string_view text) {
  Result<json::object> o = parse_object(text, "EndpointSliceList");
  if (!o) return o.status();
  const std::string where = "EndpointSliceList";
  Result<std::string> kind = optional_string(*o, "kind", where);
  if (!kind) return kind.status();
  if (*kind != "EndpointSliceList") {
    return malformed(where + ".kind", "\"" + kind->substr(0, 64) + "\", expected "
                                      "EndpointSliceList");
  }
  SliceList list;
  Result<const json::object*> meta = optional_object(*o, "metadata", where);
  if (!meta) return meta.status();
  Result<std::string> rv = optional_string(**meta, "resourceVersion", where + ".metadata");
  if (!rv) return rv.status();
  list.resource_version = *rv;
  Result<const json::array*> items = optional_array(*o, "items", where);
  if (!items) return items.status();
  if ((*items)->size() > kMaxSlices) return malformed(where + ".items", "more than 1024 slices");
  for (std::size_t i = 0; i < (*items)->size(); i++) {
    Result<Slice> s = parse_slice((**items)[i], "items[" + std::to_string(i) + "]");
    if (!s) return s.status();
    list.items.push_back(std::move(*s));
  }
  return list;
}

Result<WatchEvent> parse_watch_event(std::string_view text) {
  Result<json::object> o = parse_object(text, "watch event");
  if (!o) return o.status();
  WatchEvent e;
  Result<std::string> type = optional_string(*o, "type", "event");
  if (!type) return type.status();
  e.type = *type;
  Result<const json::object*> object = optional_object(*o, "object", "event");
  if (!object) return object.status();
  if (e.type == "ERROR") {
    const json::value* code = (*object)->if_contains("code");
    e.error_code = code != nullptr && code->is_int64() ? static_cast<int>(code->as_int64()) : 0;
    Result<std::string> message = optional_string(**object, "message", "event.object");
    e.error_message = message ? message->substr(0, kMaxMessageBytes) : std::string();
    return e;
  }
  if (e.type != "ADDED" && e.type != "MODIFIED" && e.type != "DELETED" && e.type != "BOOKMARK") {
    return malformed("event.type", "\"" + e.type.substr(0, 32) + "\" is not a watch event type");
  }
  Result<const json::object*> meta = optional_object(**object, "metadata", "event.object");
  if (!meta) return meta.status();
  Result<std::string> rv = optional_string(**meta, "resourceVersion", "event.object.metadata");
  if (!rv) return rv.status();
  e.resource_version = *rv;
  if (e.type == "BOOKMARK") return e;
  Result<Slice> slice = parse_slice(json::value(**object), "event.object");
  if (!slice) return slice.status();
  if (slice->name.empty()) return malformed("event.object.metadata.name", "missing");
  e.slice = std::move(*slice);
  return e;
}

std::string status_message(std::string_view text) {
  if (text.size() > kMaxApiBodyBytes) return {};
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  const json::value* m = v.as_object().if_contains("message");
  if (m == nullptr || !m->is_string()) return {};
  return std::string(m->as_string()).substr(0, kMaxMessageBytes);
}

Result<SliceProposals> proposals_from(const std::map<std::string, Slice>& slices,
                                      const std::string& port_name,
                                      std::uint64_t node_id_offset) {
  SliceProposals out;
  for (const auto& [name, s] : slices) {
    if (s.address_type != "IPv4") continue;  // IPv6 and FQDN slices: not for our peer links
    const SlicePort* port = nullptr;
    for (const SlicePort& p : s.ports) {
      if (port_name.empty() ? s.ports.size() == 1 : p.name == port_name) port = &p;
    }
    if (port == nullptr && !s.endpoints.empty()) {
      return Status(Errc::invalid_argument,
                    "EndpointSlice " + name + ": " +
                        (port_name.empty() ? std::to_string(s.ports.size()) +
                                                 " ports; set discovery.kubernetes.port_name"
                                           : "no port named '" + port_name + "'"));
    }
    for (const SliceEndpoint& e : s.endpoints) {
      if (!e.ready) continue;  // not ready: never proposed (and not worth a note)
      Result<engine::NodeId> id = engine::discovery::node_id_from_pod_name(e.pod, node_id_offset);
      if (!id || e.address.empty()) {
        out.skipped.push_back(id ? "pod " + e.pod + " has no address" : id.status().message());
        continue;
      }
      engine::discovery::Proposal p;
      p.id = *id;
      p.address = e.address + ":" + std::to_string(port->port);
      out.peers.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace anya::transport::discovery
