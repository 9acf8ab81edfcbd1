#include "http/fast_fields.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "http/rfc9110.h"

namespace weightcache::http {

bool PlainValue(std::string_view v) {
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c > 0x7e) return false;
  }
  return true;
}

bool PlainPchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::strchr("-._~!$&'()*+,;=:@", c) != nullptr && c != '\0';
}

bool ValidContainerName(std::string_view b) {
  if (b.empty() || b.size() > kMaxContainerBytes) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c); };
  if (!alnum(b.front())) return false;
  for (char c : b) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool PlainSegments(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i < s.size() && s[i] != '/') {
      if (!PlainPchar(s[i])) return false;
      continue;
    }
    std::string_view seg = s.substr(start, i - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = i + 1;
  }
  return true;
}

bool PlainHost(std::string_view h) {
  size_t colon = h.rfind(':');
  std::string_view name = colon == std::string_view::npos ? h : h.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    uint32_t p = 0;
    for (char c : port) {
      if (!IsDigit(c)) return false;
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p > 65535) return false;
  }
  if (name.empty() || name.front() == '.' || name.find("..") != std::string_view::npos) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' || c == '.' || c == '_')) return false;
  }
  std::string_view trimmed = name.back() == '.' ? name.substr(0, name.size() - 1) : name;
  // Punycode labels go through IDNA in the URL parser: JavaScript decides.
  for (size_t p = 0; p <= trimmed.size(); p = trimmed.find('.', p) + 1) {
    if (IEquals(trimmed.substr(p, 4), "xn--")) return false;
    if (trimmed.find('.', p) == std::string_view::npos) break;
  }
  // A name ending in a number is an IPv4 address to the URL parser: only a plain dotted quad here.
  size_t dot = trimmed.rfind('.');
  std::string_view last = dot == std::string_view::npos ? trimmed : trimmed.substr(dot + 1);
  if (last.empty() || (!IsDigit(last.front()))) return true;
  int parts = 0;
  size_t start = 0;
  for (;;) {
    size_t end = trimmed.find('.', start);
    std::string_view part = trimmed.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part.front() == '0')) return false;
    int v = 0;
    for (char c : part) {
      if (!IsDigit(c)) return false;
      v = v * 10 + (c - '0');
    }
    if (v > 255) return false;
    parts++;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts == 4;
}


void AppendNodeTail(std::string& s, std::string_view date, uint32_t keep_alive_timeout_s, bool close) {
  s.append("Date: ").append(date);
  if (close) {
    s.append("\r\nConnection: close\r\n\r\n");
  } else {
    s.append("\r\nConnection: keep-alive\r\nKeep-Alive: timeout=").append(std::to_string(keep_alive_timeout_s)).append("\r\n\r\n");
  }
}

bool SortReadFields(const RequestHead& h, ReadFields& f, bool extensions) {
  for (const Header& x : h.headers) {
    const Header** slot = nullptr;
    if (IEquals(x.name, "host")) slot = &f.host;
    else if (IEquals(x.name, "authorization")) slot = &f.authorization;
    else if (IEquals(x.name, "range")) slot = &f.range;
    else if (IEquals(x.name, "if-match")) slot = &f.if_match;
    else if (IEquals(x.name, "if-none-match")) slot = &f.if_none_match;
    else if (IEquals(x.name, "if-range")) slot = &f.if_range;
    else if (IEquals(x.name, "connection")) {
      if (!IEquals(x.value, "keep-alive") && !IEquals(x.value, "close")) return false;
      continue;
    } else if (IEquals(x.name, "user-agent") || IEquals(x.name, "accept") || IEquals(x.name, "accept-encoding") ||
               (extensions && ((x.name.size() > 2 && IEquals(x.name.substr(0, 2), "x-")) ||
                               (x.name.size() > 8 && IEquals(x.name.substr(0, 8), "amz-sdk-"))))) {
      continue;
    } else {
      return false;
    }
    if (*slot != nullptr || !PlainValue(x.value)) return false;
    *slot = &x;
  }
  return f.host != nullptr;
}

}  // namespace weightcache::http
