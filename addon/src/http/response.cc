#include "http/response.h"

#include "http/chars.h"

namespace weightcache::http {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string SerializeHead(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          uint64_t content_length, bool close) {
  std::string h;
  h.reserve(128 + headers.size() * 48);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += ReasonPhrase(status);
  h += "\r\n";
  for (const auto& [name, value] : headers) {
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  // 1xx, 204 and 304 carry no Content-Length (RFC 9110 section 8.6).
  if (status >= 200 && status != 204 && status != 304) {
    h += "Content-Length: ";
    h += std::to_string(content_length);
    h += "\r\n";
  }
  if (close) h += "Connection: close\r\n";
  h += "\r\n";
  return h;
}

namespace {

void JsonString(std::string& out, const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
}

// The CacheError code (src/errors/cache-error.ts) the JavaScript door uses for the same refusal.
const char* CodeOf(int status) {
  switch (status) {
    case 408: return "REQUEST_TIMEOUT";
    case 413: return "TOO_LARGE";
    case 414: return "URI_TOO_LONG";
    case 431: return "HEADERS_TOO_LARGE";
    case 501:
    case 505: return "UNSUPPORTED";
    default: return "BAD_REQUEST";
  }
}

}  // namespace

std::string Refusal(int status, const char* code, const std::string& message) {
  std::string body = "{\"code\":";
  JsonString(body, code);
  body += ",\"message\":";
  JsonString(body, message);
  body += "}";
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  return SerializeHead(status, headers, body.size(), true) + body;
}

std::string RefusalFor(Error e, uint64_t offset, bool in_path) {
  std::string message = std::string("malformed HTTP request: ") + DescribeError(e) + " (" + NameOf(e) +
                        " at byte " + std::to_string(offset) + ")";
  // A backslash, and a malformed escape in the path, the JavaScript door refuses in its
  // target rules (src/http/target.ts), not its HTTP parser: the same code, BAD_KEY.
  bool bad_key = e == Error::kBackslashInTarget || (e == Error::kBadPercentEncoding && in_path);
  const char* code = bad_key ? "BAD_KEY" : CodeOf(StatusOf(e));
  return Refusal(StatusOf(e), code, message);
}

bool ValidFieldName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!chars::Is(static_cast<uint8_t>(c), chars::kToken)) return false;
  }
  return true;
}

bool ValidFieldValue(const std::string& s) {
  for (char c : s) {
    auto u = static_cast<uint8_t>(c);
    if (!chars::Is(u, chars::kFieldValue)) return false;
  }
  return true;
}

}  // namespace weightcache::http
