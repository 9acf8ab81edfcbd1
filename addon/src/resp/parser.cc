#include "resp/parser.h"

#include <algorithm>
#include <cstring>

#include "resp/inline.h"

namespace weightcache::resp {

namespace {

constexpr char kCR = '\r';
constexpr char kLF = '\n';
constexpr int64_t kMaxMultibulk = 2147483647;  // Redis refuses counts past INT_MAX
// An empty buffer larger than this is given back: an idle connection holds no read buffer.
constexpr size_t kKeepBytes = 4096;

}  // namespace

void RequestParser::Compact() {
  if (pos_ == 0) return;
  std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
  len_ -= pos_;
  pos_ = 0;
}

char* RequestParser::Tail(size_t min, size_t* room) {
  // The parsed head is dropped first, so the buffer never grows with a session.
  if (buf_.size() - len_ < min) Compact();
  if (buf_.size() - len_ < min) buf_.resize(std::max(len_ + min, buf_.size() * 2));
  *room = buf_.size() - len_;
  return buf_.data() + len_;
}

void RequestParser::Append(const char* data, size_t len) {
  size_t room = 0;
  char* tail = Tail(len, &room);
  if (len > 0) std::memcpy(tail, data, len);
  Commit(len);
}

RequestParser::Status RequestParser::Fail(const char* reason, std::string message) {
  failed_ = true;
  error_.reason = reason;
  error_.message = std::move(message);
  return kFailed;
}

RequestParser::Status RequestParser::FailPreauthTooBig() {
  return Fail("preauth_query_buffer", "unauthenticated query buffer limit reached (" +
                                          std::to_string(kPreauthQueryBytes) + " bytes for one command before AUTH)");
}

// Out of bytes mid-command: a command that cannot fit the query buffer never will.
RequestParser::Status RequestParser::NeedMore() {
  // Many arguments each under the limit must not add up past it: what was cut out counts.
  uint64_t held = buffered() + (args_active_ ? arg_bytes_ : 0);
  if (!authenticated_ && held > kPreauthQueryBytes) return FailPreauthTooBig();
  if (held > limits_.max_query_buffer_bytes) {
    return Fail("query_buffer", "query buffer limit reached (" + std::to_string(limits_.max_query_buffer_bytes) +
                                    " bytes for one command)");
  }
  return kNeedMore;
}

// Index of the next '\n' from pos_; refuses lines past the inline limit (smaller before AUTH).
RequestParser::Line RequestParser::LineEnd(const char* what, const char* reason, size_t* nl) {
  const size_t max = authenticated_ ? kMaxInlineBytes : kPreauthQueryBytes;
  const size_t limit = std::min(len_, pos_ + max + 2);
  const void* p = std::memchr(buf_.data() + pos_, kLF, limit - pos_);
  if (p) {
    *nl = static_cast<size_t>(static_cast<const char*>(p) - buf_.data());
    return kLineReady;
  }
  if (len_ - pos_ > max) {
    Fail(reason, what);
    return kLineFailed;
  }
  return kLineMore;
}

// Reads `*N\r\n` or `$N\r\n` at pos_.
RequestParser::Line RequestParser::LengthLine(bool multibulk, int64_t* n) {
  size_t nl = 0;
  Line l = multibulk ? LineEnd("too big mbulk count string", "multibulk_header_too_big", &nl)
                     : LineEnd("too big bulk count string", "bulk_header_too_big", &nl);
  if (l != kLineReady) return l;
  const char* kind = multibulk ? "multibulk" : "bulk";
  if (nl == pos_ || buf_[nl - 1] != kCR) {
    Fail(multibulk ? "multibulk_header" : "bulk_header", std::string("invalid ") + kind + " length");
    return kLineFailed;
  }
  const char* d = buf_.data() + pos_ + 1;
  const char* end = buf_.data() + nl - 1;
  pos_ = nl + 1;
  // As /^-?\d+$/ with at most kMaxLengthDigits characters, sign included.
  bool ok = end > d && static_cast<size_t>(end - d) <= kMaxLengthDigits;
  bool neg = ok && *d == '-';
  const char* q = neg ? d + 1 : d;
  ok = ok && q < end;
  int64_t v = 0;
  for (; ok && q < end; q++) {
    if (*q < '0' || *q > '9') ok = false;
    else v = v * 10 + (*q - '0');  // ≤ 18 digits: no overflow
  }
  if (!ok) {
    Fail(multibulk ? "multibulk_length" : "bulk_length", std::string("invalid ") + kind + " length");
    return kLineFailed;
  }
  v = neg ? -v : v;
  if (multibulk && v > kMaxMultibulk) {
    Fail("multibulk_length", "invalid multibulk length");
    return kLineFailed;
  }
  *n = v;
  return kLineReady;
}

RequestParser::Status RequestParser::Inline(std::vector<std::string>& args) {
  size_t nl = 0;
  Line l = LineEnd("too big inline request", "inline_too_big", &nl);
  if (l == kLineFailed) return kFailed;
  if (l == kLineMore) return kNeedMore;
  size_t line_end = nl > pos_ && buf_[nl - 1] == kCR ? nl - 1 : nl;
  args.clear();
  bool balanced = SplitInline(buf_.data() + pos_, line_end - pos_, args);
  pos_ = nl + 1;
  if (!balanced) return Fail("unbalanced_quotes", "unbalanced quotes in request");
  if (args.size() > limits_.max_args) {
    return Fail("too_many_args", "too many arguments (" + std::to_string(args.size()) + "; the limit is " +
                                     std::to_string(limits_.max_args) + ")");
  }
  if (!authenticated_ && static_cast<int64_t>(args.size()) > kPreauthMaxArgs) {
    return Fail("preauth_args", "unauthenticated multibulk length");
  }
  return kCommand;
}

RequestParser::Status RequestParser::Next(std::vector<std::string>& out) {
  if (failed_) return kFailed;
  // Waiting for the rest of a bulk whose length is known: nothing to parse yet.
  if (args_active_ && bulk_len_ >= 0 && buffered() < static_cast<uint64_t>(bulk_len_) + 2) return NeedMore();
  for (;;) {
    if (!args_active_) {
      if (pos_ >= len_) {
        pos_ = len_ = 0;
        if (buf_.size() > kKeepBytes) std::vector<char>().swap(buf_);
        return NeedMore();
      }
      if (buf_[pos_] != '*') {
        Status s = Inline(out);
        if (s == kNeedMore) return NeedMore();
        if (s == kFailed) return s;
        if (out.empty()) continue;  // an empty line is skipped, as Redis does
        return kCommand;
      }
      int64_t n = 0;
      Line l = LengthLine(true, &n);
      if (l == kLineFailed) return kFailed;
      if (l == kLineMore) return NeedMore();
      if (n > static_cast<int64_t>(limits_.max_args)) {
        return Fail("too_many_args", "invalid multibulk length (" + std::to_string(n) + " arguments; the limit is " +
                                         std::to_string(limits_.max_args) + ")");
      }
      if (!authenticated_ && n > kPreauthMaxArgs) return Fail("preauth_args", "unauthenticated multibulk length");
      if (n <= 0) continue;  // `*0` and `*-1` are no command, as in Redis
      args_active_ = true;
      args_.clear();
      args_.reserve(static_cast<size_t>(n));
      args_left_ = n;
      arg_bytes_ = 0;
      bulk_len_ = -1;
    }
    while (args_left_ > 0) {
      if (bulk_len_ < 0) {
        if (pos_ >= len_) return NeedMore();
        auto type = static_cast<uint8_t>(buf_[pos_]);
        if (type != '$') {
          // Nested arrays and RESP3 types land here: clients send flat bulk strings only.
          char shown[8];
          if (type >= 0x21 && type <= 0x7e) {
            shown[0] = static_cast<char>(type);
            shown[1] = 0;
          } else {
            static const char* hex = "0123456789abcdef";
            shown[0] = '\\', shown[1] = 'x', shown[2] = hex[type >> 4], shown[3] = hex[type & 15], shown[4] = 0;
          }
          return Fail("expected_bulk", std::string("expected '$', got '") + shown + "'");
        }
        int64_t len = 0;
        Line l = LengthLine(false, &len);
        if (l == kLineFailed) return kFailed;
        if (l == kLineMore) return NeedMore();
        if (len < 0 || static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
          return Fail("bulk_length", "invalid bulk length");
        }
        if (!authenticated_ && len > kPreauthMaxBulkBytes) return Fail("preauth_bulk", "unauthenticated bulk length");
        bulk_len_ = len;
      }
      const auto need = static_cast<uint64_t>(bulk_len_);
      if (len_ - pos_ < need + 2) return NeedMore();
      const size_t end = pos_ + need;
      if (buf_[end] != kCR || buf_[end + 1] != kLF) {
        return Fail("bulk_terminator", "expected CRLF after bulk string");
      }
      args_.emplace_back(buf_.data() + pos_, need);
      arg_bytes_ += need;
      pos_ = end + 2;
      bulk_len_ = -1;
      args_left_--;
    }
    args_active_ = false;
    out.swap(args_);
    args_.clear();
    // Whole before it could be caught incomplete (one packet): a stranger's command is bounded all the same.
    if (!authenticated_ && arg_bytes_ > kPreauthQueryBytes) return FailPreauthTooBig();
    return kCommand;
  }
}

}  // namespace weightcache::resp
