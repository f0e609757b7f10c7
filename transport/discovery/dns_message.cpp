#include "transport/discovery/dns_message.hpp"

#include <cctype>

namespace anya::transport::dns {

namespace {

constexpr std::size_t kHeaderBytes = 12;
constexpr std::size_t kMaxLabelBytes = 63;
constexpr std::size_t kMaxPointers = 64;  // backwards-only pointers end anyway; this bounds work

Status malformed(std::string what) {
  return {Errc::malformed, "DNS message: " + std::move(what)};
}

void put16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

// Reads big-endian integers and names from a message, never past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::size_t offset() const { return at_; }
  std::size_t left() const { return bytes_.size() - at_; }
  bool u8(std::uint8_t& out) {
    if (left() < 1) return false;
    out = byte(at_++);
    return true;
  }
  bool u16(std::uint16_t& out) {
    if (left() < 2) return false;
    out = static_cast<std::uint16_t>(byte(at_) << 8 | byte(at_ + 1));
    at_ += 2;
    return true;
  }
  bool u32(std::uint32_t& out) {
    std::uint16_t hi = 0, lo = 0;
    if (!u16(hi) || !u16(lo)) return false;
    out = std::uint32_t{hi} << 16 | lo;
    return true;
  }
  bool skip(std::size_t n) {
    if (left() < n) return false;
    at_ += n;
    return true;
  }
  // A possibly compressed name at the current offset; the offset moves past its first part.
  Status name(std::string& out) {
    out.clear();
    std::size_t pos = at_;
    std::size_t wire_bytes = 1;  // the final zero length
    bool jumped = false;
    for (std::size_t pointers = 0;;) {
      if (pos >= bytes_.size()) return malformed("name at offset " + std::to_string(at_) +
                                                 " runs past the end");
      const std::uint8_t len = byte(pos);
      if ((len & 0xC0) == 0xC0) {
        if (pos + 1 >= bytes_.size()) return malformed("truncated compression pointer");
        const std::size_t target = (std::size_t{len & 0x3Fu} << 8) | byte(pos + 1);
        if (target >= pos || ++pointers > kMaxPointers) {
          return malformed("compression pointer at offset " + std::to_string(pos) +
                           " does not point backwards");
        }
        if (!jumped) at_ = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if ((len & 0xC0) != 0) return malformed("unknown label type at offset " +
                                              std::to_string(pos));
      if (len == 0) {
        if (!jumped) at_ = pos + 1;
        return {};
      }
      wire_bytes += 1u + len;
      if (wire_bytes > kMaxNameBytes) return malformed("name longer than 255 bytes");
      if (pos + 1 + len > bytes_.size()) return malformed("label runs past the end");
      if (!out.empty()) out += '.';
      for (std::size_t i = 0; i < len; i++) {
        out += static_cast<char>(std::tolower(byte(pos + 1 + i)));
      }
      pos += 1u + len;
    }
  }

 private:
  std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(bytes_[i]); }
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// One resource record; keeps SRV and A, skips the others.
Status parse_record(Reader& r, std::size_t index, Message& m) {
  const std::string where = "record " + std::to_string(index);
  std::string owner;
  if (Status s = r.name(owner); !s) return Status(s.code(), s.message() + " (" + where + ")");
  std::uint16_t type = 0, klass = 0, rdlength = 0;
  std::uint32_t ttl = 0;
  if (!r.u16(type) || !r.u16(klass) || !r.u32(ttl) || !r.u16(rdlength)) {
    return malformed(where + ": truncated record header");
  }
  if (rdlength > r.left()) {
    return malformed(where + ": data of " + std::to_string(rdlength) + " bytes runs past the end");
  }
  const std::size_t end = r.offset() + rdlength;
  // RFC 2181 §8: a TTL with the top bit set is treated as 0.
  if (ttl > 0x7FFFFFFFu) ttl = 0;
  if (type == kTypeSrv && klass == kClassIn) {
    SrvRecord srv{owner, ttl, 0, 0, 0, {}};
    if (rdlength < 7 || !r.u16(srv.priority) || !r.u16(srv.weight) || !r.u16(srv.port)) {
      return malformed(where + " (SRV): data of " + std::to_string(rdlength) +
                       " bytes is too short");
    }
    if (Status s = r.name(srv.target); !s) {
      return Status(s.code(), s.message() + " (" + where + " SRV target)");
    }
    if (r.offset() != end) return malformed(where + " (SRV): target does not end the data");
    m.srv.push_back(std::move(srv));
  } else if (type == kTypeA && klass == kClassIn) {
    if (rdlength != 4) {
      return malformed(where + " (A): " + std::to_string(rdlength) + " bytes, expected 4");
    }
    ARecord a{owner, ttl, {}};
    for (std::uint8_t& octet : a.address) (void)r.u8(octet);
    m.a.push_back(std::move(a));
  } else if (!r.skip(rdlength)) {
    return malformed(where + ": data runs past the end");
  }
  ANYA_ASSERT(r.offset() == end);
  return {};
}

}  // namespace

const char* rcode_name(std::uint8_t rcode) {
  switch (static_cast<Rcode>(rcode)) {
    case Rcode::no_error: return "NOERROR";
    case Rcode::format_error: return "FORMERR";
    case Rcode::server_failure: return "SERVFAIL";
    case Rcode::nxdomain: return "NXDOMAIN";
    case Rcode::not_implemented: return "NOTIMP";
    case Rcode::refused: return "REFUSED";
  }
  return "RCODE?";
}

std::string ARecord::address_text() const {
  return std::to_string(address[0]) + "." + std::to_string(address[1]) + "." +
         std::to_string(address[2]) + "." + std::to_string(address[3]);
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<std::string> encode_query(std::uint16_t id, std::string_view name, std::uint16_t type) {
  const std::string n = normalize_name(name);
  std::string out;
  put16(out, id);
  put16(out, 0x0100);  // a query, recursion desired
  put16(out, 1);       // one question
  put16(out, 0);
  put16(out, 0);
  put16(out, 1);       // one additional record: EDNS0 OPT
  std::size_t start = 0;
  while (start <= n.size()) {
    const std::size_t dot = std::min(n.find('.', start), n.size());
    const std::size_t len = dot - start;
    if (len == 0 || len > kMaxLabelBytes) {
      return Status(Errc::invalid_argument, "DNS name \"" + n + "\": empty or over-long label");
    }
    out += static_cast<char>(len);
    out.append(n, start, len);
    start = dot + 1;
  }
  out += '\0';
  if (out.size() - kHeaderBytes > kMaxNameBytes) {
    return Status(Errc::invalid_argument, "DNS name \"" + n + "\" is longer than 255 bytes");
  }
  put16(out, type);
  put16(out, kClassIn);
  out += '\0';  // OPT: root owner, type, payload size as class, TTL 0 (no DO bit), no data
  put16(out, kTypeOpt);
  put16(out, static_cast<std::uint16_t>(kUdpPayloadBytes));
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  return out;
}

Result<Message> parse_message(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return malformed("larger than 65535 bytes");
  Reader r(bytes);
  Message m;
  std::uint16_t flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  if (!r.u16(m.id) || !r.u16(flags) || !r.u16(qd) || !r.u16(an) || !r.u16(ns) || !r.u16(ar)) {
    return malformed("header of " + std::to_string(bytes.size()) + " bytes, expected 12");
  }
  m.response = (flags & 0x8000) != 0;
  m.truncated = (flags & 0x0200) != 0;
  m.rcode = static_cast<std::uint8_t>(flags & 0x000F);
  if (qd != 1) return malformed(std::to_string(qd) + " questions, expected 1");
  if (std::size_t{an} + ns + ar > kMaxRecords) {
    return malformed(std::to_string(an + ns + ar) + " records, more than " +
                     std::to_string(kMaxRecords));
  }
  if (Status s = r.name(m.question_name); !s) return Status(s.code(), s.message() + " (question)");
  std::uint16_t qclass = 0;
  if (!r.u16(m.question_type) || !r.u16(qclass)) return malformed("truncated question");
  // A truncated answer may stop anywhere; what it holds is not used (the query goes over TCP).
  if (m.truncated) return m;
  for (std::size_t i = 0; i < std::size_t{an} + ns + ar; i++) {
    if (Status s = parse_record(r, i, m); !s) return s;
  }
  if (r.left() != 0) return malformed(std::to_string(r.left()) + " bytes after the last record");
  return m;
}

}  // namespace anya::transport::dns
