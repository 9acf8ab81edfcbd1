// Why the HTTP/1.1 request parser refused a request: one code per rule, each
// with the status the door answers and a sentence naming what was wrong. The
// table is the single source for docs/http-parser.md's rejection table and for
// the JavaScript test binding, so the three cannot drift apart.
#pragma once
#include <cstdint>

namespace weightcache::http {

// X(enumerator, status, stable name, description)
#define WEIGHTCACHE_HTTP_ERRORS(X)                                                                                  \
  X(kNone, 0, "none", "no error")                                                                                   \
  /* request line */                                                                                                \
  X(kBadRequestLine, 400, "bad_request_line", "the request line is not 'method SP target SP HTTP-version CRLF'")   \
  X(kBadMethod, 400, "bad_method", "the method contains a character that is not a token character")                \
  X(kBadTarget, 400, "bad_target", "the request target contains a character not allowed there, or is malformed")   \
  X(kBadPercentEncoding, 400, "bad_percent_encoding", "a '%' in the request target is not followed by two hex digits") \
  X(kBackslashInTarget, 400, "backslash_in_target", "the request target contains a backslash")                       \
  X(kFragmentInTarget, 400, "fragment_in_target", "the request target contains a fragment ('#'), which HTTP/1.1 never sends") \
  X(kBadScheme, 400, "bad_scheme", "an absolute-form target must use the http or https scheme")                    \
  X(kUserinfoInTarget, 400, "userinfo_in_target", "the target's authority contains userinfo ('user@'), which http(s) URIs must not carry") \
  X(kBadAuthority, 400, "bad_authority", "the target's authority is not a valid host[:port]")                      \
  X(kAsteriskNotOptions, 400, "asterisk_not_options", "the '*' target is only valid with OPTIONS")                   \
  X(kBadVersion, 400, "bad_version", "the HTTP-version is not 'HTTP/' DIGIT '.' DIGIT")                            \
  X(kUnsupportedVersion, 505, "unsupported_version", "only HTTP/1.x is served on this port")                        \
  X(kConnectNotSupported, 400, "connect_not_supported", "CONNECT (authority-form targets) is not served: this is not a proxy") \
  X(kRequestLineTooLong, 414, "request_line_too_long", "the request line is longer than the limit")                 \
  /* line structure, anywhere in the head, chunk lines and trailers */                                              \
  X(kBareCR, 400, "bare_cr", "a CR not followed by LF")                                                             \
  X(kBareLF, 400, "bare_lf", "a line ends in LF without CR (this server requires CRLF)")                           \
  /* header fields */                                                                                               \
  X(kWhitespaceBeforeHeader, 400, "whitespace_before_header", "whitespace between the request line and the first header field") \
  X(kObsFold, 400, "obs_fold", "a header field value continued on the next line (obs-fold), which is obsolete")     \
  X(kBadHeaderName, 400, "bad_header_name", "a header field name is empty or contains a non-token character")        \
  X(kWhitespaceBeforeColon, 400, "whitespace_before_colon", "whitespace between a header field name and its colon") \
  X(kBadHeaderValue, 400, "bad_header_value", "a header field value contains a control character (NUL, DEL, ...)")  \
  X(kTooManyHeaders, 431, "too_many_headers", "more header fields than the limit")                                  \
  X(kHeadersTooLarge, 431, "headers_too_large", "the header section is larger than the limit")                      \
  X(kMissingHost, 400, "missing_host", "an HTTP/1.1 request without a Host header field")                          \
  X(kDuplicateHost, 400, "duplicate_host", "more than one Host header field")                                       \
  X(kBadHost, 400, "bad_host", "the Host header field is not a valid host[:port]")                                 \
  X(kUnsupportedExpectation, 417, "unsupported_expectation", "an Expect header field other than 100-continue")      \
  /* message framing (RFC 9112 section 6) */                                                                        \
  X(kBadContentLength, 400, "bad_content_length", "Content-Length is not a single decimal number")                  \
  X(kDuplicateContentLength, 400, "duplicate_content_length", "more than one Content-Length header field")          \
  X(kContentLengthWithTransferEncoding, 400, "content_length_with_transfer_encoding", "both Content-Length and Transfer-Encoding") \
  X(kBadTransferEncoding, 400, "bad_transfer_encoding", "Transfer-Encoding is empty or not a list of transfer-coding names") \
  X(kChunkedNotFinal, 400, "chunked_not_final", "Transfer-Encoding does not end in exactly one 'chunked'")          \
  X(kTransferEncodingInHttp10, 400, "transfer_encoding_in_http10", "Transfer-Encoding in an HTTP/1.0 request")      \
  X(kUnsupportedTransferCoding, 501, "unsupported_transfer_coding", "a transfer coding other than chunked (gzip, ...)") \
  X(kBodyTooLarge, 413, "body_too_large", "the request body is larger than the limit")                              \
  X(kBadChunkSize, 400, "bad_chunk_size", "a chunk size is not 1 to 16 hex digits")                                 \
  X(kBadChunkExtension, 400, "bad_chunk_extension", "a chunk extension is not ';name' or ';name=value'")            \
  X(kChunkExtensionsTooLarge, 413, "chunk_extensions_too_large", "chunk extensions and trailers are larger than the limit") \
  X(kBadChunkTerminator, 400, "bad_chunk_terminator", "chunk data is not followed by CRLF")

enum class Error : uint8_t {
#define WEIGHTCACHE_HTTP_ENUM(e, status, name, desc) e,
  WEIGHTCACHE_HTTP_ERRORS(WEIGHTCACHE_HTTP_ENUM)
#undef WEIGHTCACHE_HTTP_ENUM
};

// The HTTP status the door answers with (0 for kNone).
int StatusOf(Error e);
// A stable snake_case name (for logs, metrics labels and tests).
const char* NameOf(Error e);
// One sentence saying what was wrong.
const char* DescribeError(Error e);
// Every code, in table order (for the docs and tests).
int ErrorCount();

}  // namespace weightcache::http
