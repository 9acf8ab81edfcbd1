#include "http/parser.h"

#include <algorithm>

#include "http/chars.h"

namespace weightcache::http {

namespace {

constexpr uint8_t CR = '\r';
constexpr uint8_t LF = '\n';

bool IsOws(uint8_t c) { return c == ' ' || c == '\t'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (chars::Lower(static_cast<uint8_t>(a[i])) != chars::Lower(static_cast<uint8_t>(b[i]))) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsOws(static_cast<uint8_t>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && IsOws(static_cast<uint8_t>(s.back()))) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each comma-separated element, trimmed; empty elements
// are skipped, as RFC 9110 section 5.6.1.2 asks of a recipient.
template <typename F>
bool ForEachElement(std::string_view list, F&& f) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view e = Trim(list.substr(start, comma - start));
    if (!e.empty() && !f(e)) return false;
    start = comma + 1;
  }
  return true;
}

bool AllToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!chars::Is(static_cast<uint8_t>(c), chars::kToken)) return false;
  }
  return true;
}

}  // namespace

bool ValidHostPort(std::string_view s) {
  size_t i = 0;
  if (s.empty()) return false;
  if (s[0] == '[') {
    // IP-literal: an IPv6 address (hex digits, ':' and a dotted IPv4 tail). IPvFuture is refused.
    size_t close = s.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (size_t j = 1; j < close; j++) {
      uint8_t c = static_cast<uint8_t>(s[j]);
      if (!chars::Is(c, chars::kHex) && c != ':' && c != '.') return false;
    }
    i = close + 1;
  } else {
    // reg-name or IPv4address: unreserved / sub-delims / pct-encoded, non-empty for http(s).
    while (i < s.size() && s[i] != ':') {
      uint8_t c = static_cast<uint8_t>(s[i]);
      if (c == '%') {
        if (i + 2 >= s.size() || chars::HexValue(static_cast<uint8_t>(s[i + 1])) < 0 ||
            chars::HexValue(static_cast<uint8_t>(s[i + 2])) < 0) {
          return false;
        }
        i += 3;
        continue;
      }
      if (!chars::Is(c, chars::kRegName)) return false;
      i++;
    }
    if (i == 0) return false;
  }
  if (i == s.size()) return true;
  if (s[i] != ':') return false;
  // port = *DIGIT: may be empty ("host:"), at most 65535.
  uint32_t port = 0;
  size_t digits = 0;
  for (i++; i < s.size(); i++, digits++) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (!chars::Is(c, chars::kDigit) || digits >= 5) return false;
    port = port * 10 + (c - '0');
  }
  return port <= 65535;
}

const Header* RequestHead::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return &h;
  }
  return nullptr;
}

size_t RequestHead::Count(std::string_view name) const {
  size_t n = 0;
  for (const Header& h : headers) n += EqualsIgnoreCase(h.name, name) ? 1 : 0;
  return n;
}

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
  limits_.max_request_line_bytes = std::min<uint32_t>(limits_.max_request_line_bytes, 1u << 30);
  limits_.max_header_bytes = std::min<uint32_t>(limits_.max_header_bytes, 1u << 30);
}

void RequestParser::Reset() {
  std::vector<FieldSpan> fields = std::move(fields_);
  std::vector<Header> headers = std::move(head_.headers);
  ParserLimits limits = limits_;
  *this = RequestParser(limits);
  fields.clear();
  headers.clear();
  fields_ = std::move(fields);
  head_.headers = std::move(headers);
}

RequestParser::Status RequestParser::Fail(Error e, size_t at) {
  error_ = e;
  error_offset_ = at;
  error_in_path_ = state_ == kPath;
  state_ = kFailedState;
  return kFailed;
}

RequestParser::Status RequestParser::Parse(const char* data, size_t len) {
  if (state_ == kDoneState) return kDone;
  if (state_ == kFailedState) return kFailed;
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  for (; pos_ < len; pos_++) {
    const uint8_t c = p[pos_];
    const uint32_t at = static_cast<uint32_t>(pos_);
    // Limits are checked per byte, so the error and its offset do not depend on how the bytes were split.
    if (state_ < kLineStart) {
      if (pos_ + 1 > limits_.max_request_line_bytes) return Fail(Error::kRequestLineTooLong, pos_);
    } else if (pos_ + 1 - request_line_end_ > limits_.max_header_bytes) {
      return Fail(Error::kHeadersTooLarge, pos_);
    }
    switch (state_) {
      case kStart:
        // RFC 9112 section 2.2: a server SHOULD ignore empty lines before the request line.
        if (c == CR) {
          state_ = kStartLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, pos_);
        } else if (chars::Is(c, chars::kToken)) {
          method_start_ = at;
          state_ = kMethod;
        } else {
          return Fail(Error::kBadMethod, pos_);
        }
        break;
      case kStartLF:
        if (c != LF) return Fail(Error::kBareCR, pos_);
        state_ = kStart;
        break;
      case kMethod:
        if (chars::Is(c, chars::kToken)) break;
        if (c != ' ') return Fail(c == CR || c == LF ? Error::kBadRequestLine : Error::kBadMethod, pos_);
        method_end_ = at;
        if (std::string_view(data + method_start_, method_end_ - method_start_) == "CONNECT") {
          return Fail(Error::kConnectNotSupported, pos_);
        }
        state_ = kTargetStart;
        break;
      case kTargetStart:
        target_start_ = at;
        if (c == '/') {
          form_ = TargetForm::kOrigin;
          path_start_ = at;
          state_ = kPath;
        } else if (c == '*') {
          form_ = TargetForm::kAsterisk;
          path_start_ = at;
          state_ = kAsterisk;
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {  // a scheme starts with ALPHA
          form_ = TargetForm::kAbsolute;
          state_ = kScheme;
        } else if (c == '#') {
          return Fail(Error::kFragmentInTarget, pos_);
        } else if (c == '\\') {
          return Fail(Error::kBackslashInTarget, pos_);
        } else if (c == ' ' || c == CR || c == LF) {
          return Fail(Error::kBadRequestLine, pos_);
        } else {
          return Fail(Error::kBadTarget, pos_);
        }
        break;
      case kScheme:
        if (chars::Is(c, chars::kScheme)) break;
        if (c != ':') return Fail(Error::kBadTarget, pos_);
        scheme_end_ = at;
        {
          std::string_view scheme(data + target_start_, scheme_end_ - target_start_);
          if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
            return Fail(Error::kBadScheme, pos_);
          }
        }
        state_ = kSchemeSlash1;
        break;
      case kSchemeSlash1:
      case kSchemeSlash2:
        if (c != '/') return Fail(Error::kBadTarget, pos_);
        if (state_ == kSchemeSlash2) authority_start_ = at + 1;
        state_ = state_ == kSchemeSlash1 ? kSchemeSlash2 : kAuthority;
        break;
      case kAuthority:
      case kPath:
      case kQuery: {
        if (pct_left_ > 0) {
          if (chars::HexValue(c) < 0) return Fail(Error::kBadPercentEncoding, pos_);
          pct_left_--;
          break;
        }
        if (c == '%') {
          pct_left_ = 2;
          break;
        }
        if (c == ' ') {
          if (state_ == kAuthority && !EndAuthority(data, at)) return kFailed;
          if (state_ == kPath) path_end_ = at;
          if (!EndTarget(data, at)) return kFailed;
          break;
        }
        if (c == '#') return Fail(Error::kFragmentInTarget, pos_);
        if (c == '\\') return Fail(Error::kBackslashInTarget, pos_);
        if (c == CR || c == LF) return Fail(Error::kBadRequestLine, pos_);  // no HTTP-version: HTTP/0.9
        if (state_ == kAuthority) {
          if (c == '@') return Fail(Error::kUserinfoInTarget, pos_);
          if (c == '/' || c == '?') {
            if (!EndAuthority(data, at)) return kFailed;
            path_start_ = at;
            if (c == '/') {
              state_ = kPath;
              break;
            }
            path_end_ = at;  // no path: means "/"
            has_query_ = true;
            query_start_ = at + 1;
            state_ = kQuery;
            break;
          }
          if (!chars::Is(c, chars::kRegName) && c != ':' && c != '[' && c != ']') {
            return Fail(Error::kBadAuthority, pos_);
          }
          break;
        }
        if (state_ == kPath && c == '?') {
          path_end_ = at;
          has_query_ = true;
          query_start_ = at + 1;
          state_ = kQuery;
          break;
        }
        if (!chars::Is(c, state_ == kPath ? chars::kPath : chars::kQuery)) return Fail(Error::kBadTarget, pos_);
        break;
      }
      case kAsterisk:
        if (c != ' ') return Fail(Error::kBadTarget, pos_);
        path_end_ = at;
        if (std::string_view(data + method_start_, method_end_ - method_start_) != "OPTIONS") {
          return Fail(Error::kAsteriskNotOptions, pos_);
        }
        if (!EndTarget(data, at)) return kFailed;
        break;
      case kVersion: {
        static constexpr char kPrefix[] = "HTTP/";
        uint8_t i = version_index_++;
        bool ok = i < 5   ? c == static_cast<uint8_t>(kPrefix[i])
                  : i == 6 ? c == '.'
                           : chars::Is(c, chars::kDigit);
        if (!ok) return Fail(i == 0 && c == ' ' ? Error::kBadRequestLine : Error::kBadVersion, pos_);
        if (i == 5) version_major_ = c - '0';
        if (i == 7) {
          version_minor_ = c - '0';
          state_ = kRequestLineCR;
        }
        break;
      }
      case kRequestLineCR:
        if (c == CR) {
          state_ = kRequestLineLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, pos_);
        } else {
          return Fail(c == ' ' ? Error::kBadRequestLine : Error::kBadVersion, pos_);
        }
        break;
      case kRequestLineLF:
        if (c != LF) return Fail(Error::kBareCR, pos_);
        if (!OnRequestLine()) return kFailed;
        request_line_end_ = at + 1;
        state_ = kLineStart;
        break;
      case kLineStart:
        if (c == CR) {
          state_ = kEndLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, pos_);
        } else if (IsOws(c)) {
          // RFC 9112 section 2.2 and 5.2: reject rather than guess what the sender meant.
          return Fail(fields_.empty() ? Error::kWhitespaceBeforeHeader : Error::kObsFold, pos_);
        } else if (chars::Is(c, chars::kToken)) {
          if (fields_.size() >= limits_.max_header_count) return Fail(Error::kTooManyHeaders, pos_);
          name_start_ = at;
          state_ = kName;
        } else {
          return Fail(Error::kBadHeaderName, pos_);
        }
        break;
      case kName:
        if (chars::Is(c, chars::kToken)) break;
        if (c == ':') {
          name_end_ = at;
          state_ = kValueOWS;
        } else if (IsOws(c)) {
          return Fail(Error::kWhitespaceBeforeColon, pos_);  // RFC 9112 section 5.1: MUST reject
        } else {
          return Fail(Error::kBadHeaderName, pos_);
        }
        break;
      case kValueOWS:
        if (IsOws(c)) break;
        value_start_ = value_end_ = at;
        if (c == CR) {
          state_ = kValueLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, pos_);
        } else if (chars::Is(c, chars::kFieldValue)) {
          value_end_ = at + 1;
          state_ = kValue;
        } else {
          return Fail(Error::kBadHeaderValue, pos_);
        }
        break;
      case kValue:
        if (c == CR) {
          state_ = kValueLF;
        } else if (c == LF) {
          return Fail(Error::kBareLF, pos_);
        } else if (IsOws(c)) {
          // trailing whitespace is not part of the value unless more follows
        } else if (chars::Is(c, chars::kFieldValue)) {
          value_end_ = at + 1;
        } else {
          return Fail(Error::kBadHeaderValue, pos_);
        }
        break;
      case kValueLF:
        if (c != LF) return Fail(Error::kBareCR, pos_);
        if (!OnHeader(data)) return kFailed;
        state_ = kLineStart;
        break;
      case kEndLF:
        if (c != LF) return Fail(Error::kBareCR, pos_);
        if (!OnHeadEnd()) return kFailed;
        pos_++;
        Build(data);
        state_ = kDoneState;
        return kDone;
      case kDoneState:
      case kFailedState:
        break;
    }
  }
  return kNeedMore;
}

bool RequestParser::EndAuthority(const char* data, size_t at) {
  authority_end_ = static_cast<uint32_t>(at);
  std::string_view authority(data + authority_start_, authority_end_ - authority_start_);
  if (!ValidHostPort(authority)) {
    Fail(Error::kBadAuthority, at);
    return false;
  }
  if (state_ == kAuthority) path_start_ = path_end_ = static_cast<uint32_t>(at);  // until a '/' says otherwise
  return true;
}

bool RequestParser::EndTarget(const char*, size_t at) {
  if (pct_left_ > 0) {
    Fail(Error::kBadPercentEncoding, at);
    return false;
  }
  target_end_ = static_cast<uint32_t>(at);
  state_ = kVersion;
  return true;
}

bool RequestParser::OnRequestLine() {
  // Checked at the line's end: a syntactically valid version of another major is 505, not 400.
  if (version_major_ != 1) {
    Fail(Error::kUnsupportedVersion, pos_);
    return false;
  }
  version_minor_ = version_minor_ >= 1 ? 1 : 0;
  return true;
}

bool RequestParser::OnHeader(const char* data) {
  FieldSpan f{{name_start_, name_end_ - name_start_}, {value_start_, value_end_ - value_start_}};
  fields_.push_back(f);
  std::string_view name(data + f.name.off, f.name.len);
  std::string_view value(data + f.value.off, f.value.len);
  switch (name.size()) {
    case 4:
      if (!EqualsIgnoreCase(name, "host")) break;
      if (++host_count_ > 1) {
        Fail(Error::kDuplicateHost, pos_);
        return false;
      }
      if (!ValidHostPort(value)) {
        Fail(Error::kBadHost, pos_);
        return false;
      }
      host_ = f.value;
      break;
    case 6:
      if (!EqualsIgnoreCase(name, "expect")) break;
      // 100-continue is the only expectation defined (RFC 9110 section 10.1.1),
      // and an HTTP/1.0 client cannot have meant it: the server MUST ignore it there.
      if (!EqualsIgnoreCase(value, "100-continue")) {
        Fail(Error::kUnsupportedExpectation, pos_);
        return false;
      }
      expect_continue_ = version_minor_ == 1;
      break;
    case 10:
      if (!EqualsIgnoreCase(name, "connection")) break;
      ForEachElement(value, [this](std::string_view e) {
        if (EqualsIgnoreCase(e, "close")) conn_close_ = true;
        if (EqualsIgnoreCase(e, "keep-alive")) conn_keep_alive_ = true;
        return true;
      });
      break;
    case 14: {
      if (!EqualsIgnoreCase(name, "content-length")) break;
      // One field, one number: a list ("5, 5") or a second field is refused, not reconciled.
      if (cl_seen_) {
        Fail(Error::kDuplicateContentLength, pos_);
        return false;
      }
      cl_seen_ = true;
      if (value.empty()) {
        Fail(Error::kBadContentLength, pos_);
        return false;
      }
      uint64_t n = 0;
      for (char ch : value) {
        auto d = static_cast<uint8_t>(ch);
        if (!chars::Is(d, chars::kDigit)) {
          Fail(Error::kBadContentLength, pos_);
          return false;
        }
        if (n > (UINT64_MAX - 9) / 10) {
          cl_too_large_ = true;  // still a number: 413 once the head is complete, not 400
        } else {
          n = n * 10 + (d - '0');
        }
      }
      content_length_ = n;
      break;
    }
    case 17: {
      if (!EqualsIgnoreCase(name, "transfer-encoding")) break;
      te_seen_ = true;
      bool any = false;
      Error err = Error::kNone;
      ForEachElement(value, [&](std::string_view e) {
        any = true;
        if (!AllToken(e)) {
          err = Error::kBadTransferEncoding;  // parameters or junk: not a coding we could apply
          return false;
        }
        if (te_chunked_last_) {
          err = Error::kChunkedNotFinal;  // a coding after chunked (or chunked twice)
          return false;
        }
        if (EqualsIgnoreCase(e, "chunked")) {
          te_chunked_last_ = true;
        } else {
          te_unknown_ = true;
        }
        return true;
      });
      if (err == Error::kNone && !any) err = Error::kBadTransferEncoding;
      if (err != Error::kNone) {
        Fail(err, pos_);
        return false;
      }
      break;
    }
    default:
      break;
  }
  return true;
}

bool RequestParser::OnHeadEnd() {
  // The framing rules of RFC 9112 section 6.1 and 6.3, in a fixed order.
  Error e = Error::kNone;
  if (version_minor_ == 1 && host_count_ == 0) {
    e = Error::kMissingHost;
  } else if (te_seen_ && cl_seen_) {
    e = Error::kContentLengthWithTransferEncoding;
  } else if (te_seen_ && version_minor_ == 0) {
    e = Error::kTransferEncodingInHttp10;
  } else if (te_seen_ && !te_chunked_last_) {
    e = Error::kChunkedNotFinal;
  } else if (te_seen_ && te_unknown_) {
    e = Error::kUnsupportedTransferCoding;
  } else if (cl_seen_ && (cl_too_large_ || content_length_ > limits_.max_body_bytes)) {
    e = Error::kBodyTooLarge;
  }
  if (e != Error::kNone) {
    Fail(e, pos_);
    return false;
  }
  return true;
}

void RequestParser::Build(const char* data) {
  auto view = [data](uint32_t from, uint32_t to) { return std::string_view(data + from, to - from); };
  RequestHead& h = head_;
  h.method = view(method_start_, method_end_);
  h.target = view(target_start_, target_end_);
  h.form = form_;
  h.scheme = form_ == TargetForm::kAbsolute ? view(target_start_, scheme_end_) : std::string_view();
  h.path = view(path_start_, path_end_);
  h.has_query = has_query_;
  h.query = has_query_ ? view(query_start_, target_end_) : std::string_view();
  h.has_host = host_count_ > 0;
  h.host = h.has_host ? std::string_view(data + host_.off, host_.len) : std::string_view();
  h.authority = form_ == TargetForm::kAbsolute ? view(authority_start_, authority_end_) : h.host;
  h.version_minor = version_minor_;
  h.keep_alive = !conn_close_ && (version_minor_ == 1 || conn_keep_alive_);
  h.expect_continue = expect_continue_;
  h.framing = te_seen_ ? Framing::kChunked : cl_seen_ ? Framing::kContentLength : Framing::kNone;
  h.content_length = cl_seen_ ? content_length_ : 0;
  h.headers.clear();
  h.headers.reserve(fields_.size());
  for (const FieldSpan& f : fields_) {
    h.headers.push_back({std::string_view(data + f.name.off, f.name.len), std::string_view(data + f.value.off, f.value.len)});
  }
}

}  // namespace weightcache::http
