#include "resp/inline.h"

#include <cstdint>

namespace weightcache::resp {

namespace {

bool IsSpace(int c) { return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 || c == 0x0b || c == 0x0c || c == 0x00; }

int HexVal(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int Escaped(int c) {
  switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return c;
  }
}

}  // namespace

bool SplitInline(const char* line, size_t n, std::vector<std::string>& out) {
  const auto* s = reinterpret_cast<const uint8_t*>(line);
  // -1 past the end, as the JavaScript version's `undefined`.
  auto at = [&](size_t i) -> int { return i < n ? s[i] : -1; };
  size_t i = 0;
  for (;;) {
    while (i < n && IsSpace(s[i])) i++;
    if (i >= n) return true;
    std::string cur;
    bool in_dq = false, in_sq = false;
    for (;;) {
      int c = at(i);
      if (in_dq) {
        if (c < 0) return false;  // closing quote missing
        int n1 = at(i + 1), n2 = at(i + 2), n3 = at(i + 3);
        if (c == '\\' && n1 == 'x' && n2 >= 0 && n3 >= 0 && HexVal(n2) >= 0 && HexVal(n3) >= 0) {
          cur.push_back(static_cast<char>(HexVal(n2) * 16 + HexVal(n3)));
          i += 3;
        } else if (c == '\\' && n1 >= 0) {
          cur.push_back(static_cast<char>(Escaped(n1)));
          i += 1;
        } else if (c == '"') {
          if (n1 >= 0 && !IsSpace(n1)) return false;  // the closing quote must end the argument
          i += 1;
          break;
        } else {
          cur.push_back(static_cast<char>(c));
        }
      } else if (in_sq) {
        if (c < 0) return false;
        int n1 = at(i + 1);
        if (c == '\\' && n1 == '\'') {
          cur.push_back('\'');
          i += 1;
        } else if (c == '\'') {
          if (n1 >= 0 && !IsSpace(n1)) return false;
          i += 1;
          break;
        } else {
          cur.push_back(static_cast<char>(c));
        }
      } else {
        if (c < 0 || IsSpace(c)) break;
        if (c == '"') {
          in_dq = true;
        } else if (c == '\'') {
          in_sq = true;
        } else {
          cur.push_back(static_cast<char>(c));
        }
      }
      i++;
    }
    out.push_back(std::move(cur));
  }
}

}  // namespace weightcache::resp
