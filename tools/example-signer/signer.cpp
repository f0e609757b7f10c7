#include "tools/example-signer/signer.hpp"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace anya::signer {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr const char* kKeyFile = "signer.key";
constexpr const char* kRecordFile = "record.jsonl";
constexpr const char* kFencingFile = "fencing.state";
constexpr const char* kCurve = "secp256k1";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// OpenSSL's own words for what just failed (and a clean error queue for the next call).
std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += out.empty() ? buf : std::string("; ") + buf;
  }
  return out.empty() ? "no reason given" : out;
}

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; i++) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0F]);
  }
  return out;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  ANYA_ASSERT(size >= 0);
  return std::string(data, static_cast<std::size_t>(size));
}

// Now, as "2025-01-31T12:00:00.123Z".
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[96];  // room for any int the fields could hold, which keeps -Wformat-truncation quiet
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

Status make_private_dir(const fs::path& dir) {
  if (dir.empty()) return {Errc::invalid_argument, "--dir: empty path"};
  std::error_code ec;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  if (ec) return {Errc::io_error, "--dir " + dir.string() + ": " + ec.message()};
  if (!fs::is_directory(dir, ec)) {
    return {Errc::invalid_argument, "--dir " + dir.string() + ": not a directory"};
  }
  return {};
}

}  // namespace

// ---- the key ------------------------------------------------------------------------------------

struct Signer::Key {
  PkeyPtr pkey;
};

namespace {

Result<PkeyPtr> generate_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kCurve));
  if (!key) return Status(Errc::io_error, "cannot make a secp256k1 key: " + openssl_error());
  return key;
}

Result<std::string> private_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status(Errc::io_error, "cannot encode the key: " + openssl_error());
  }
  return bio_text(bio.get());
}

// The key must be secp256k1 and readable by its owner only: it signs transactions.
Result<PkeyPtr> load_key(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return transport::errno_status("cannot stat", path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Status(Errc::invalid_argument, path.string() + ": mode " + mode +
                                              " lets others read or write the key: chmod 600 it");
  }
  Result<std::string> pem = transport::read_small_file(path, Limits::kMaxKeyFileBytes);
  if (!pem) return pem.status();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Status(Errc::corrupt, path.string() + ": not a PEM private key: " +
                                             openssl_error());
  char group[64] = {};
  std::size_t group_len = 0;
  if (!EVP_PKEY_is_a(key.get(), "EC") ||
      EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     &group_len) != 1 ||
      std::string(group) != kCurve) {
    ERR_clear_error();
    return Status(Errc::invalid_argument, path.string() + ": not a secp256k1 EC key");
  }
  return key;
}

// The key in DIR/signer.key, made first if there is none (and no record signed with one).
Result<PkeyPtr> ensure_key(const fs::path& dir, const fs::path& record_path, std::string& notes) {
  const fs::path key_path = dir / kKeyFile;
  std::error_code ec;
  if (!fs::exists(key_path, ec)) {
    if (fs::exists(record_path, ec) && fs::file_size(record_path, ec) > 0) {
      return Status(Errc::corrupt, key_path.string() + " is missing but " +
                                       record_path.string() + " holds signatures made with it; "
                                       "restore the key (a new one would not match them)");
    }
    Result<PkeyPtr> fresh = generate_key();
    if (!fresh) return fresh.status();
    Result<std::string> pem = private_pem(fresh->get());
    if (!pem) return pem.status();
    // Atomic and 0600: a crash never leaves half a key, and nobody else ever reads it.
    if (Status s = transport::replace_file_atomically(dir, kKeyFile, {*pem}, true, {}); !s) {
      return s;
    }
    notes += "made a new secp256k1 key in " + key_path.string() + "\n";
  }
  return load_key(key_path);
}

}  // namespace

// ---- opening ------------------------------------------------------------------------------------

Result<std::unique_ptr<Signer>> Signer::open(const fs::path& dir, std::string& notes) {
  if (Status s = make_private_dir(dir); !s) return s;
  std::unique_ptr<Signer> signer(new Signer());
  signer->dir_ = dir;
  Result<std::unique_ptr<FencingGuard>> guard = FencingGuard::open(dir / kFencingFile);
  if (!guard) return guard.status();
  signer->guard_ = std::move(guard).value();

  const fs::path record_path = dir / kRecordFile;
  Result<PkeyPtr> key = ensure_key(dir, record_path, notes);
  if (!key) return key.status();
  signer->key_ = std::make_unique<Key>();
  signer->key_->pkey = std::move(key).value();

  std::error_code ec;
  const bool record_existed = fs::exists(record_path, ec);
  Result<transport::Fd> fd = transport::open_file(record_path, O_RDWR | O_CREAT | O_APPEND);
  if (!fd) return fd.status();
  signer->record_fd_ = std::move(fd).value();
  // A new file's name is durable only once its directory is fsynced; without that a crash could
  // lose the whole record even though each line was fsynced.
  if (!record_existed) {
    if (Status s = transport::fsync_directory(dir, {}); !s) return s;
  }
  if (Status s = signer->load_record(notes); !s) return s;
  return signer;
}

Signer::~Signer() = default;

// ---- the record ---------------------------------------------------------------------------------

namespace {

// One complete record line, checked field by field. `where` names the line for errors.
Result<Signed> parse_line(std::string_view line, const std::string& where) {
  boost::system::error_code ec;
  const json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) {
    return Status(Errc::corrupt, where + ": not a JSON object" + (ec ? ": " + ec.message() : ""));
  }
  const json::object& o = v.as_object();
  Signed s;
  const json::value* message = o.if_contains("message");
  const json::value* token = o.if_contains("fencing_token");
  const json::value* signature = o.if_contains("signature");
  const json::value* time = o.if_contains("time");
  if (message == nullptr || !message->is_string()) {
    return Status(Errc::corrupt, where + ": message is missing or not a string");
  }
  if (token == nullptr || !token->is_number() || (!token->is_uint64() && !token->is_int64()) ||
      (token->is_int64() && token->as_int64() <= 0)) {
    return Status(Errc::corrupt, where + ": fencing_token is not a positive integer");
  }
  if (signature == nullptr || !signature->is_string()) {
    return Status(Errc::corrupt, where + ": signature is missing or not a string");
  }
  if (time == nullptr || !time->is_string()) {
    return Status(Errc::corrupt, where + ": time is missing or not a string");
  }
  s.message = std::string(message->as_string());
  s.fencing_token = token->to_number<std::uint64_t>();
  s.signature_hex = std::string(signature->as_string());
  s.time = std::string(time->as_string());
  return s;
}

// Cuts a last line that a crash left without its newline. Its signature was never answered (an
// answer waits for the line's fsync), so nobody holds it and the message may be signed again.
Status drop_torn_tail(const transport::Fd& fd, const fs::path& path, std::size_t valid_bytes) {
  if (::ftruncate(fd.get(), static_cast<off_t>(valid_bytes)) != 0) {
    return transport::errno_status("cannot truncate", path);
  }
  return transport::fsync_timed(fd, path, {});
}

}  // namespace

Status Signer::load_record(std::string& notes) {
  const fs::path path = dir_ / kRecordFile;
  Result<std::string> text = transport::read_small_file(path, Limits::kMaxRecordBytes);
  if (!text) return text.status();
  std::size_t offset = 0;
  std::uint64_t previous_token = 0;
  for (std::size_t line_no = 1; offset < text->size(); line_no++) {
    const std::size_t end = text->find('\n', offset);
    if (end == std::string::npos) {
      notes += path.string() + ": dropped a last line cut short at byte offset " +
               std::to_string(offset) + " (a crash while appending; it was never answered)\n";
      return drop_torn_tail(record_fd_, path, offset);
    }
    const std::string where = path.string() + ": line " + std::to_string(line_no) +
                              " (byte offset " + std::to_string(offset) + ")";
    Result<Signed> s = parse_line(std::string_view(*text).substr(offset, end - offset), where);
    if (!s) return s.status();
    // Tokens only rise along the record (each was admitted before its line was written), and
    // none can be above the fencing state, which is made durable first.
    if (s->fencing_token < previous_token) {
      return {Errc::corrupt, where + ": token " + std::to_string(s->fencing_token) +
                                 " is below the line before's " + std::to_string(previous_token)};
    }
    if (s->fencing_token > guard_->highest()) {
      return {Errc::corrupt, where + ": signed under token " + std::to_string(s->fencing_token) +
                                 " but the fencing state holds " +
                                 std::to_string(guard_->highest()) +
                                 ": the fencing state was rolled back or replaced; refusing to "
                                 "start (restore it, or write one holding at least that token)"};
    }
    if (signed_.count(s->message) != 0) {
      return {Errc::corrupt, where + ": the message of an earlier line, signed twice"};
    }
    if (signed_.size() == Limits::kMaxRecords) {
      return {Errc::corrupt, where + ": more than " + std::to_string(Limits::kMaxRecords) +
                                 " records"};
    }
    previous_token = s->fencing_token;
    signed_.emplace(s->message, std::move(s).value());
    offset = end + 1;
  }
  return {};
}

Result<std::string> Signer::record_text() const {
  return transport::read_small_file(dir_ / kRecordFile, Limits::kMaxRecordBytes);
}

// ---- signing ------------------------------------------------------------------------------------

namespace {

// ECDSA over SHA-256(message), DER-encoded. (A Bitcoin signer signs a transaction's sighash and
// normalises s to the low half; an example need not.)
Result<std::string> sign_der(EVP_PKEY* key, const std::string& message) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(message.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, data, message.size()) != 1) {
    return Status(Errc::io_error, "cannot sign: " + openssl_error());
  }
  std::string der(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &size, data,
                     message.size()) != 1) {
    return Status(Errc::io_error, "cannot sign: " + openssl_error());
  }
  der.resize(size);
  ANYA_ASSERT(!der.empty());
  return to_hex(reinterpret_cast<const unsigned char*>(der.data()), der.size());
}

// One write(2) per line on an O_APPEND descriptor, retried on EINTR and short writes. A failure
// part way leaves a torn last line, which the next start drops (load_record).
Status append_line(const transport::Fd& fd, const fs::path& path, std::string_view line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd.get(), line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return transport::errno_status("cannot append to", path);
    done += static_cast<std::size_t>(n);
  }
  ANYA_ASSERT(done == line.size());
  return {};
}

std::string record_line(const Signed& s) {
  return json::serialize(json::object{{"message", s.message},
                                      {"fencing_token", s.fencing_token},
                                      {"signature", s.signature_hex},
                                      {"time", s.time}}) +
         "\n";
}

}  // namespace

Result<Signed> Signer::sign(const std::string& message, std::uint64_t token) {
  if (message.empty() || message.size() > Limits::kMaxMessageBytes) {
    return Status(Errc::invalid_argument,
                  "message: " + std::to_string(message.size()) + " bytes; expected 1 to " +
                      std::to_string(Limits::kMaxMessageBytes));
  }
  return guard_->with_token(token, [&] { return sign_locked(message, token); });
}

// Runs under the guard's lock, with `token` admitted.
Result<Signed> Signer::sign_locked(const std::string& message, std::uint64_t token) {
  if (!record_failed_.empty()) {
    return Status(Errc::io_error, "an earlier record write failed (" + record_failed_ +
                                      "); nothing more is signed until a restart");
  }
  if (auto it = signed_.find(message); it != signed_.end()) {
    Signed answer = it->second;
    answer.signed_now = false;
    return answer;
  }
  if (signed_.size() >= Limits::kMaxRecords) {
    return Status(Errc::busy, "the record holds " + std::to_string(Limits::kMaxRecords) +
                                  " signatures, its limit: archive it and start a new one");
  }
  Result<std::string> signature = sign_der(key_->pkey.get(), message);
  if (!signature) return signature.status();
  Signed s{message, token, std::move(signature).value(), utc_now(), true};
  const std::string line = record_line(s);
  ANYA_ASSERT(line.size() <= Limits::kMaxLineBytes);
  const fs::path path = dir_ / kRecordFile;
  Status written = append_line(record_fd_, path, line);
  if (written) written = transport::fsync_timed(record_fd_, path, {});
  if (!written) {
    record_failed_ = written.message();
    return written;
  }
  signed_.emplace(message, s);
  return s;
}

std::string Signer::public_key_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  ANYA_ASSERT(bio != nullptr);
  ANYA_ASSERT(PEM_write_bio_PUBKEY(bio.get(), key_->pkey.get()) == 1);
  return bio_text(bio.get());
}

std::string Signer::public_key_hex() const {
  unsigned char point[133];
  std::size_t size = 0;
  const int ok = EVP_PKEY_get_octet_string_param(key_->pkey.get(),
                                                 OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                 sizeof point, &size);
  ANYA_ASSERT(ok == 1);
  return to_hex(point, size);
}

}  // namespace anya::signer
