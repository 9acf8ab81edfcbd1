#include "http/replay.h"

#include "http/body.h"

namespace weightcache::http {

namespace {

void Escape(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    auto c = static_cast<uint8_t>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '|') {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

}  // namespace

std::vector<ReplayedRequest> Replay(std::string_view stream, const ParserLimits& limits,
                                    const std::vector<size_t>& cuts, size_t max_requests) {
  std::vector<ReplayedRequest> out;
  std::vector<size_t> bounds;
  for (size_t c : cuts) {
    if (c > 0 && c < stream.size() && (bounds.empty() || c > bounds.back())) bounds.push_back(c);
  }
  bounds.push_back(stream.size());
  size_t next_piece = 0;  // index into bounds
  size_t received = 0;    // stream bytes delivered so far
  std::string buf;        // the unconsumed bytes, from the current request's first byte
  uint64_t base = 0;      // stream offset of buf[0]

  // A new piece arrives: the buffer is reallocated every time, so a view kept
  // across arrivals would point into freed memory (and ASan would say so).
  auto arrive = [&]() -> bool {
    if (received >= stream.size()) return false;
    size_t end = bounds[next_piece++];
    std::string grown;
    grown.reserve(buf.size() + (end - received));
    grown.append(buf).append(stream.substr(received, end - received));
    buf.swap(grown);
    received = end;
    return true;
  };

  RequestParser parser(limits);
  BodyDecoder body(limits);
  while (out.size() < max_requests) {
    if (buf.empty() && received >= stream.size()) break;  // clean end between requests
    parser.Reset();
    ReplayedRequest r;
    r.start = base;
    RequestParser::Status st;
    while ((st = parser.Parse(buf.data(), buf.size())) == RequestParser::kNeedMore) {
      if (!arrive()) {
        out.push_back(std::move(r));  // incomplete head
        return out;
      }
    }
    if (st == RequestParser::kFailed) {
      r.error = parser.error();
      r.error_offset = base + parser.error_offset();
      out.push_back(std::move(r));
      return out;
    }
    const RequestHead& h = parser.head();
    r.head_bytes = parser.head_bytes();
    r.method = h.method;
    r.target = h.target;
    r.scheme = h.scheme;
    r.authority = h.authority;
    r.host = h.host;
    r.path = h.path;
    r.query = h.query;
    r.form = h.form;
    r.has_host = h.has_host;
    r.has_query = h.has_query;
    r.keep_alive = h.keep_alive;
    r.expect_continue = h.expect_continue;
    r.version_minor = h.version_minor;
    r.framing = h.framing;
    r.content_length = h.content_length;
    for (const Header& f : h.headers) r.headers.emplace_back(f.name, f.value);
    size_t at = parser.head_bytes();
    body.Start(h);
    for (;;) {
      BodyDecoder::Step s = body.Feed(buf.data() + at, buf.size() - at);
      at += s.consumed;
      if (s.status == BodyDecoder::kData) r.body.append(s.data);
      if (s.status == BodyDecoder::kDone) break;
      if (s.status == BodyDecoder::kFailed) {
        r.error = body.error();
        r.error_offset = base + r.head_bytes + body.error_offset();
        out.push_back(std::move(r));
        return out;
      }
      if (s.status == BodyDecoder::kNeedMore && !arrive()) {
        out.push_back(std::move(r));  // incomplete body
        return out;
      }
    }
    r.complete = true;
    r.end = base + at;
    out.push_back(std::move(r));
    buf.erase(0, at);
    std::string(buf).swap(buf);  // the next request's bytes move too
    base += at;
  }
  return out;
}

std::string Canonical(const std::vector<ReplayedRequest>& requests) {
  std::string s;
  for (const ReplayedRequest& r : requests) {
    if (r.error != Error::kNone) {
      s += "error ";
      s += NameOf(r.error);
      s += " at " + std::to_string(r.error_offset) + " (request at " + std::to_string(r.start) + ")";
    } else if (!r.complete && r.head_bytes == 0) {
      s += "incomplete head at " + std::to_string(r.start);
    } else {
      s += r.complete ? "request " : "incomplete body ";
      s += std::to_string(r.start) + "+" + std::to_string(r.head_bytes) + " ";
      Escape(s, r.method);
      s += " ";
      Escape(s, r.target);
      s += " form=" + std::to_string(static_cast<int>(r.form)) + " scheme=";
      Escape(s, r.scheme);
      s += " authority=";
      Escape(s, r.authority);
      s += r.has_host ? " host=" : " nohost=";
      Escape(s, r.host);
      s += " path=";
      Escape(s, r.path);
      s += r.has_query ? " query=" : " noquery=";
      Escape(s, r.query);
      s += " 1." + std::to_string(r.version_minor);
      s += r.keep_alive ? " keep-alive" : " close";
      s += r.expect_continue ? " expect-100" : "";
      s += " framing=" + std::to_string(static_cast<int>(r.framing)) + " cl=" + std::to_string(r.content_length);
      for (const auto& [n, v] : r.headers) {
        s += " |";
        Escape(s, n);
        s += ": ";
        Escape(s, v);
      }
      s += " | body=";
      Escape(s, r.body);
      if (r.complete) s += " end=" + std::to_string(r.end);
    }
    s += "\n";
  }
  return s;
}

}  // namespace weightcache::http
