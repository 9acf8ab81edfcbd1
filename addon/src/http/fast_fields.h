// Field readings every native fast path shares (the objects path, fastpath.h,
// and the front doors', doors/door_fastpath.h): what a value, a path segment
// or a Host must look like for the native side to be sure the JavaScript door
// would read it the same way. Anything else goes to JavaScript.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace weightcache::http {

// Printable ASCII and HTAB only: JavaScript's trim() and \s know more white
// space than SP and HTAB (NBSP among them), so anything else goes to JavaScript.
bool PlainValue(std::string_view v);

// An RFC 3986 pchar other than '%': a path segment needing no decoding (target.ts ALL_PCHAR_RE).
bool PlainPchar(char c);

// A Host value that the JavaScript door's URL parse surely accepts (else: JavaScript answers).
bool PlainHost(std::string_view h);

// What node's ServerResponse adds after a door's own headers: Date, then
// Connection (and Keep-Alive with its timeout), and the blank line.
void AppendNodeTail(std::string& s, std::string_view date, uint32_t keep_alive_timeout_s, bool close);

}  // namespace weightcache::http
