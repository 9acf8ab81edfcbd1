// The HTTP/1.1 request-head parser of the native HTTP door (RFC 9112), written
// for this project: strict, incremental and zero-copy.
//
// - Incremental: bytes arrive in pieces. The caller keeps every byte of the
//   current request from its first one and calls Parse again with the longer
//   buffer (it may have moved); each byte is examined once, and the result
//   (success, or which error at which byte) is the same for every split.
// - Zero-copy: the parsed head is views into the caller's buffer, built when
//   the head completes; they stay valid while that buffer does.
// - Strict: what RFC 9112 lets a server refuse is refused (errors.h names each
//   rule); nothing is normalised. The target is reported raw, with its path and
//   query split out; percent-decoding and dot segments are the door's job.
//
// The body that follows the head is framed by BodyDecoder (body.h).
// docs/http-parser.md has the rules, the limits and the rejection table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "http/errors.h"

namespace weightcache::http {

// Each limit is a parameter the door sets from its configuration.
struct ParserLimits {
  // The request line, CRLF and any empty lines before it included (414 beyond).
  uint32_t max_request_line_bytes = 8 * 1024;
  // Header fields per request; also trailer fields per chunked body (431 beyond).
  uint32_t max_header_count = 100;
  // The header section after the request line, its CRLFs included (431 beyond);
  // also the chunk extensions and trailers of one chunked body together (413 beyond).
  uint32_t max_header_bytes = 16 * 1024;
  // A request body (Content-Length, or the sum of the chunks; 413 beyond).
  uint64_t max_body_bytes = 2 * 1024 * 1024;
};

enum class TargetForm : uint8_t { kOrigin, kAbsolute, kAsterisk };
enum class Framing : uint8_t { kNone, kContentLength, kChunked };

struct Header {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // leading and trailing SP/HTAB removed, nothing else changed
};

struct RequestHead {
  std::string_view method;  // a token, case-sensitive as sent ("GET", not "get")
  std::string_view target;  // the request target exactly as sent
  TargetForm form = TargetForm::kOrigin;
  std::string_view scheme;  // absolute-form: "http" or "https" in any case; else empty
  // Where the request is addressed: the target's authority in absolute-form
  // (which replaces Host, RFC 9112 section 3.2.2), else the Host field value
  // (empty for an HTTP/1.0 request without Host).
  std::string_view authority;
  std::string_view host;  // the Host field value as sent (empty if absent)
  bool has_host = false;
  // Raw, still percent-encoded. Origin-form: starts with "/". Absolute-form:
  // empty when the target has no path (which means "/"). Asterisk-form: "*".
  std::string_view path;
  std::string_view query;  // after the first "?", raw; see has_query
  bool has_query = false;  // "?" present (the query may still be empty)
  uint8_t version_minor = 1;  // 0 or 1; HTTP/1.2 to 1.9 are served as 1.1 (RFC 9110 section 2.5)
  bool keep_alive = true;     // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "keep-alive"
  bool expect_continue = false;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;  // Framing::kContentLength
  std::vector<Header> headers;  // every field line, in order

  // The first field with this name (ASCII case-insensitive), or nullptr.
  const Header* Find(std::string_view name) const;
  size_t Count(std::string_view name) const;
};

class RequestParser {
 public:
  // Limits above 1 GiB are clamped there (offsets into the head are 32-bit).
  explicit RequestParser(const ParserLimits& limits);

  enum Status { kNeedMore, kDone, kFailed };

  // `data` holds the current request's bytes received so far, from its first
  // byte; only the bytes not yet examined are read. kDone: head() is ready and
  // head_bytes() says where the body (or the next request) starts. kFailed is
  // final until Reset(): error() and error_offset() say why and where.
  Status Parse(const char* data, size_t len);

  const RequestHead& head() const { return head_; }
  size_t head_bytes() const { return pos_; }
  Error error() const { return error_; }
  size_t error_offset() const { return error_offset_; }  // from the request's first byte
  // The error was found in the target's path (not its authority or query).
  bool error_in_path() const { return error_in_path_; }
  const ParserLimits& limits() const { return limits_; }

  // Ready for the next request on the connection (keeps allocated capacity).
  void Reset();

 private:
  enum State : uint8_t {
    kStart, kStartLF, kMethod, kTargetStart, kScheme, kSchemeSlash1, kSchemeSlash2, kAuthority, kPath,
    kQuery, kAsterisk, kVersion, kRequestLineCR, kRequestLineLF, kLineStart, kName, kValueOWS, kValue,
    kValueLF, kEndLF, kDoneState, kFailedState,
  };
  struct Span {
    uint32_t off = 0;
    uint32_t len = 0;
  };
  struct FieldSpan {
    Span name;
    Span value;
  };

  Status Fail(Error e, size_t at);
  bool EndTarget(const char* data, size_t at);
  bool EndAuthority(const char* data, size_t at);
  bool OnRequestLine();
  bool OnHeader(const char* data);
  bool OnHeadEnd();
  void Build(const char* data);

  ParserLimits limits_;
  State state_ = kStart;
  size_t pos_ = 0;
  Error error_ = Error::kNone;
  size_t error_offset_ = 0;
  bool error_in_path_ = false;

  // Request line.
  uint32_t method_start_ = 0, method_end_ = 0;
  uint32_t target_start_ = 0, target_end_ = 0;
  uint32_t scheme_end_ = 0;
  uint32_t authority_start_ = 0, authority_end_ = 0;
  uint32_t path_start_ = 0, path_end_ = 0;
  uint32_t query_start_ = 0;
  bool has_query_ = false;
  TargetForm form_ = TargetForm::kOrigin;
  uint8_t pct_left_ = 0;  // hex digits still owed by a '%' in the target
  uint8_t version_index_ = 0;
  uint8_t version_major_ = 0, version_minor_ = 0;
  uint32_t request_line_end_ = 0;

  // Header section.
  uint32_t name_start_ = 0, name_end_ = 0;
  uint32_t value_start_ = 0, value_end_ = 0;
  std::vector<FieldSpan> fields_;
  Span host_;
  uint32_t host_count_ = 0;
  bool cl_seen_ = false;
  bool cl_too_large_ = false;
  uint64_t content_length_ = 0;
  bool te_seen_ = false;
  bool te_chunked_last_ = false;
  bool te_unknown_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool expect_continue_ = false;

  RequestHead head_;
};

// host[":" port] as RFC 3986 defines uri-host (reg-name, IPv4 or an IP-literal
// in brackets) and port (at most 65535). Used for Host and absolute-form targets.
bool ValidHostPort(std::string_view s);

}  // namespace weightcache::http
