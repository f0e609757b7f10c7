// anya-example-signer: an example of a protected resource that fences stale leaders. Workers
// beside each anya-ha node ask their own node for the lease (GET /v1/lease, `anya-ha ctl lease`,
// or ClusterManager::lease()) and send its fencing token with every request; the signer refuses
// any token below the highest it has accepted, so a deposed leader that wakes up late cannot get
// a signature once its successor has acted (docs/guarantees.md, "Fencing at the resource").
//
//   anya-example-signer --listen 127.0.0.1:PORT --dir DIR
//
//   POST /sign     {"message": TEXT, "fencing_token": N} -> 200 {message, fencing_token,
//                  signature, time, already_signed}; 409 for a stale token, 400 for bad input
//   GET /pubkey    {"curve": "secp256k1", "public_key_pem", "public_key_hex"}
//   GET /record    DIR/record.jsonl as it is on disk (JSON Lines)
//   GET /fencing   {"highest_token": N}
//
// This example speaks plain HTTP and listens on loopback addresses only. In production the signer
// would sit behind mutual TLS (as the anya-ha admin API does), so that only the workers' client
// certificates could ask it for anything; the fencing token says which leadership a request comes
// from, not who sent it. One thread serves everything; signing is quick (well under a
// millisecond), and it runs under the fencing guard's lock anyway.
#include <CLI/CLI.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "tools/example-signer/signer.hpp"
#include "transport/admin/json_util.hpp"
#include "transport/net/listen.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using anya::Errc;
using anya::Result;
using anya::Status;
using anya::signer::Signer;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Limits: a request is small (a message of at most 4 KiB, JSON-escaped); anything larger is
// refused before it is read whole. A connection gets one request and kRequestTimeout to send it.
constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxBodyBytes = 8 * anya::signer::Limits::kMaxMessageBytes;
constexpr std::size_t kMaxConnections = 64;
constexpr std::chrono::seconds kRequestTimeout{10};
constexpr std::size_t kMaxDrainBytes = 2 * kMaxBodyBytes;
constexpr std::chrono::seconds kDrainTimeout{2};

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
};

Reply json_reply(http::status status, const json::value& v) {
  return Reply{status, json::serialize(v) + "\n"};
}

http::status http_status(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return http::status::bad_request;
    case Errc::conflict: return http::status::conflict;
    case Errc::busy: return http::status::service_unavailable;
    default: return http::status::internal_server_error;
  }
}

// {"error": CODE, "message": TEXT}, as the anya-ha admin API answers errors.
Reply error_reply(const Status& s) {
  return json_reply(http_status(s.code()),
                    json::object{{"error", anya::errc_name(s.code())}, {"message", s.message()}});
}

Reply bad_request(const std::string& message) {
  return error_reply(Status(Errc::invalid_argument, message));
}

struct SignRequest {
  std::string message;
  std::uint64_t fencing_token = 0;
};

// The body {"message": TEXT, "fencing_token": N}, read with the admin API's JSON helpers (strict
// parsing, unknown fields refused, errors naming the field).
Result<SignRequest> parse_sign_request(const std::string& body) {
  std::string error;
  std::optional<json::object> o = anya::transport::parse_object(body, error);
  if (!o) return Status(Errc::invalid_argument, error);
  std::optional<std::uint64_t> token;
  if (!anya::transport::only_fields(*o, {"message", "fencing_token"}, error) ||
      !anya::transport::read_u64(*o, "fencing_token", token, error)) {
    return Status(Errc::invalid_argument, error);
  }
  const json::value* message = o->if_contains("message");
  if (message == nullptr) return Status(Errc::invalid_argument, "message: missing");
  if (!message->is_string()) return Status(Errc::invalid_argument, "message: expected a string");
  if (!token) return Status(Errc::invalid_argument, "fencing_token: missing");
  if (*token == 0) {
    return Status(Errc::invalid_argument,
                  "fencing_token: 0 is not a token (tokens are leadership terms, from 1)");
  }
  return SignRequest{std::string(message->as_string()), *token};
}

Reply sign(Signer& signer, const std::string& body) {
  Result<SignRequest> request = parse_sign_request(body);
  if (!request) return error_reply(request.status());
  Result<anya::signer::Signed> s = signer.sign(request->message, request->fencing_token);
  if (!s) {
    std::cerr << "refused: token " << request->fencing_token << ": " << s.status().message()
              << "\n";
    return error_reply(s.status());
  }
  return json_reply(http::status::ok, json::object{{"message", s->message},
                                                   {"fencing_token", s->fencing_token},
                                                   {"signature", s->signature_hex},
                                                   {"time", s->time},
                                                   {"already_signed", !s->signed_now}});
}

Reply wrong_method(std::string_view target, const char* allowed) {
  Reply r = json_reply(http::status::method_not_allowed,
                       json::object{{"error", "invalid_argument"},
                                    {"message", std::string(target) + " takes " + allowed}});
  return r;
}

Reply handle(Signer& signer, const http::request<http::string_body>& req) {
  const std::string_view target = req.target();
  const bool get = req.method() == http::verb::get;
  if (target == "/sign") {
    if (req.method() != http::verb::post) return wrong_method(target, "POST");
    return sign(signer, req.body());
  }
  if (target == "/pubkey") {
    if (!get) return wrong_method(target, "GET");
    return json_reply(http::status::ok, json::object{{"curve", "secp256k1"},
                                                     {"public_key_pem", signer.public_key_pem()},
                                                     {"public_key_hex", signer.public_key_hex()}});
  }
  if (target == "/record") {
    if (!get) return wrong_method(target, "GET");
    Result<std::string> text = signer.record_text();
    if (!text) return error_reply(text.status());
    return Reply{http::status::ok, std::move(text).value(), "application/jsonl"};
  }
  if (target == "/fencing") {
    if (!get) return wrong_method(target, "GET");
    return json_reply(http::status::ok, json::object{{"highest_token", signer.highest_token()}});
  }
  return json_reply(http::status::not_found,
                    json::object{{"error", "not_found"},
                                 {"message", std::string(target) +
                                                 ": no such endpoint (POST /sign, GET /pubkey, "
                                                 "GET /record, GET /fencing)"}});
}

// One connection, one request: read it (bounded in size and time), answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Signer& signer, std::size_t& open)
      : stream_(std::move(socket)), signer_(signer), open_(open) {
    open_++;
  }
  ~Session() { open_--; }

  void start() {
    parser_.header_limit(kMaxHeaderBytes);
    parser_.body_limit(kMaxBodyBytes);
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return respond(json_reply(http::status::payload_too_large,
                                json::object{{"error", "invalid_argument"},
                                             {"message", "body over " +
                                                             std::to_string(kMaxBodyBytes) +
                                                             " bytes"}}));
    }
    if (ec == http::error::header_limit) {
      return respond(bad_request("headers over " + std::to_string(kMaxHeaderBytes) + " bytes"));
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream) return;  // just close
    if (ec) return respond(bad_request("malformed HTTP request: " + ec.message()));
    respond(handle(signer_, parser_.get()));
  }

  void respond(Reply r) {
    auto res = std::make_shared<http::response<http::string_body>>(r.status, 11);
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(false);
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(kRequestTimeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec,
                                                                      std::size_t) {
      if (ec) return;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      self->drain();
    });
  }

  // Reads what the client still sends (an oversized body) until it closes, at most
  // kMaxDrainBytes and kDrainTimeout: closing with unread bytes would reset the connection, and
  // the reset can destroy the answer before the client reads it.
  void drain() {
    stream_.expires_after(kDrainTimeout);
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_bytes_ += n;
                              if (!ec && self->drained_bytes_ < kMaxDrainBytes) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  std::array<char, 4096> discard_{};
  std::size_t drained_bytes_ = 0;
  Signer& signer_;
  std::size_t& open_;  // Invariant: counts the live sessions, at most kMaxConnections
};

void accept_next(tcp::acceptor& acceptor, Signer& signer, std::size_t& open) {
  acceptor.async_accept([&acceptor, &signer, &open](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;  // stopping
    if (!ec) {
      if (open >= kMaxConnections) {
        socket.close(ec);  // at the limit a newcomer is closed at once; the others keep theirs
      } else {
        std::make_shared<Session>(std::move(socket), signer, open)->start();
      }
    }
    accept_next(acceptor, signer, open);
  });
}

struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;  // 0: any free port (printed once listening)
};

// --listen must be IPV4:PORT on the loopback: this example speaks plain HTTP.
Result<ListenAddress> parse_listen(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status(Errc::invalid_argument, "--listen: \"" + text + "\" is not HOST:PORT");
  }
  ListenAddress out{text.substr(0, colon), 0};
  const std::string_view port = std::string_view(text).substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    return Status(Errc::invalid_argument,
                  "--listen: \"" + std::string(port) + "\" is not a port (0 to 65535)");
  }
  boost::system::error_code bad;
  const asio::ip::address address = asio::ip::make_address_v4(out.host, bad);
  if (bad) {
    return Status(Errc::invalid_argument, "--listen: " + out.host + " is not an IPv4 address");
  }
  if (!address.is_loopback()) {
    return Status(Errc::invalid_argument,
                  "--listen: " + text + " is not a loopback address; this example speaks plain "
                                        "HTTP (put a real signer behind mutual TLS)");
  }
  return out;
}

int serve(Signer& signer, const ListenAddress& listen) {
  asio::io_context io;
  tcp::acceptor acceptor(io);
  if (Status s = anya::transport::net::listen(acceptor, listen.host, listen.port, "--listen");
      !s) {
    std::cerr << "anya-example-signer: " << s.message() << "\n";
    return s.code() == Errc::invalid_argument ? kExitUsage : kExitFailed;
  }
  std::size_t open = 0;
  accept_next(acceptor, signer, open);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });
  std::cout << "anya-example-signer: listening on " << listen.host << ":"
            << anya::transport::net::local_port(acceptor) << ", highest fencing token "
            << signer.highest_token() << std::endl;
  io.run();
  std::cout << "anya-example-signer: stopped" << std::endl;
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"anya-example-signer: signs messages only for the current leadership's token"};
  std::string listen_text, dir;
  app.add_option("--listen", listen_text, "HOST:PORT on the loopback (port 0: any free one)")
      ->required();
  app.add_option("--dir", dir, "its fencing state, key and record")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "anya-example-signer: " << e.what() << "\n(run anya-example-signer --help)\n";
    return kExitUsage;
  }
  Result<ListenAddress> listen = parse_listen(listen_text);
  if (!listen) {
    std::cerr << "anya-example-signer: " << listen.status().message() << "\n";
    return kExitUsage;
  }
  std::string notes;
  Result<std::unique_ptr<Signer>> signer = Signer::open(dir, notes);
  std::cerr << notes;
  if (!signer) {
    std::cerr << "anya-example-signer: " << signer.status().message() << "\n";
    return signer.status().code() == Errc::invalid_argument ? kExitUsage : kExitFailed;
  }
  return serve(**signer, *listen);
}
