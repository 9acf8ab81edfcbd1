// Writing answer heads: the status line, the caller's fields, Content-Length
// and Connection, and the door's own refusals (a parse error, a timeout) as
// the JSON error body every weightcache door answers with.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "http/errors.h"

namespace weightcache::http {

const char* ReasonPhrase(int status);

// "HTTP/1.1 <status> <reason>\r\n<fields>Content-Length: n\r\n[Connection: close\r\n]\r\n"
std::string SerializeHead(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          uint64_t content_length, bool close);

// A complete refusal: status, JSON body {"code","message"}, Connection: close.
std::string Refusal(int status, const char* code, const std::string& message);
// The refusal for a parse error (status and code from the error table; BAD_KEY for
// the target errors src/http/target.ts names so: a backslash, a bad escape in the path).
std::string RefusalFor(Error e, uint64_t offset, bool in_path = false);

// A field name the door may send: a token; a value: no CR, LF or NUL (no response splitting).
bool ValidFieldName(const std::string& s);
bool ValidFieldValue(const std::string& s);

}  // namespace weightcache::http
