// Field readings every native fast path shares (the objects path, fastpath.h,
// and the front doors', doors/door_fastpath.h): what a value, a path segment
// or a Host must look like for the native side to be sure the JavaScript door
// would read it the same way. Anything else goes to JavaScript.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/parser.h"

namespace weightcache::http {

// The fields a fast-path read may carry: what the JavaScript doors read
// (Host, Authorization, Range, If-Match, If-None-Match, If-Range), each at
// most once with a plain value.
struct ReadFields {
  const Header* host = nullptr;
  const Header* authorization = nullptr;
  const Header* range = nullptr;
  const Header* if_match = nullptr;
  const Header* if_none_match = nullptr;
  const Header* if_range = nullptr;
};

// Sorts the request's fields into `f`; false for a repeated one, one whose
// value is not plain, or any field not known to be without effect on the
// answer: Connection (keep-alive or close), User-Agent, Accept and
// Accept-Encoding (no door compresses) pass, and with `extensions` also
// fields named X-... or amz-sdk-... (a front door's clients send them:
// huggingface_hub X-Amzn-Trace-Id and X-HF-Download-Counter, boto3
// X-Amz-Date, X-Amz-Content-SHA256, amz-sdk-invocation-id; no door reads
// them for a read). Date conditions, Expect and the rest go to JavaScript.
bool SortReadFields(const RequestHead& h, ReadFields& f, bool extensions);

// Printable ASCII and HTAB only: JavaScript's trim() and \s know more white
// space than SP and HTAB (NBSP among them), so anything else goes to JavaScript.
bool PlainValue(std::string_view v);

// An RFC 3986 pchar other than '%': a path segment needing no decoding (target.ts ALL_PCHAR_RE).
bool PlainPchar(char c);

// Most bytes of a container name (src/origin/names.ts MAX_CONTAINER_LENGTH).
inline constexpr size_t kMaxContainerBytes = 255;
// Most bytes of a key (MAX_KEY_LENGTH): a longer one is JavaScript's to refuse.
inline constexpr size_t kMaxKeyBytes = 1024;

// validateContainer: a letter or digit, then letters, digits, '.', '_', '-'.
bool ValidContainerName(std::string_view b);

// Plain segments ("a/b/c"): none empty, '.' or '..', every byte a plain pchar
// (so the JavaScript door's decodeSegments leaves them as they are).
bool PlainSegments(std::string_view s);

// A Host value that the JavaScript door's URL parse surely accepts (else: JavaScript answers).
bool PlainHost(std::string_view h);

// What node's ServerResponse adds after a door's own headers: Date, then
// Connection (and Keep-Alive with its timeout), and the blank line.
void AppendNodeTail(std::string& s, std::string_view date, uint32_t keep_alive_timeout_s, bool close);

}  // namespace weightcache::http
