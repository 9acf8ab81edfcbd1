// The Azure Blob door's Get Blob / Get Blob Properties on the native fast
// path (src/azure-blob/door.ts): `GET|HEAD {path}/{account}/{container}/{blob…}`
// mapped to (container, blob) exactly as the JavaScript door maps it and
// answered with its headers (x-ms-request-id, x-ms-version, ETag,
// Last-Modified, Accept-Ranges, x-ms-blob-type, ...), `x-ms-range` winning
// over `Range` as in the service.
//
// With auth off (where the JavaScript door verifies nothing either) any
// request; with auth on, SharedKey or a SAS verified natively (azure_auth.h)
// or a bearer token, whose grant may read the container.
// So do a query of any other kind than `timeout` (comp, snapshot, versionid, restype: another
// operation or JavaScript's error), x-ms-range-get-content-md5: true (the
// range's MD5 is computed by JavaScript), a repeated or unplain x-ms-range or
// x-ms-version, and whatever the shared read plan declines (read_plan.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "http/fast_fields.h"
#include "http/parser.h"

namespace weightcache::http::doors {

struct AzureRoute {
  std::string path;     // azure.path, e.g. "/azure"
  std::string account;  // azure.account; empty: any account name is answered
  int64_t max_clock_skew_ms = 15 * 60 * 1000;  // azure.maxClockSkew
  int64_t (*clock_ms)() = nullptr;             // the wall clock SAS times are checked at; null: the system's (tests fix it)
};

struct AzureTarget {
  std::string_view account;
  std::string_view container;
  std::string_view blob;
};

// The account, container and blob of a blob request: `rest` is the path after
// "{path}/". False for anything but a blob with plain segments (no '%', none
// empty, '.' or '..') under the route's account in a valid container name.
bool ParseAzureTarget(const AzureRoute& route, std::string_view rest, AzureTarget& out);

// The Azure fields a Get Blob reads besides the shared ones (fast_fields.h).
struct AzureFields {
  const Header* ms_range = nullptr;    // x-ms-range (wins over Range)
  const Header* ms_version = nullptr;  // x-ms-version, echoed
  bool range_md5 = false;              // x-ms-range-get-content-md5: true
};

// Reads them from the request; false when one is repeated or its value is not
// plain (or an x-ms-version is empty): JavaScript answers.
bool ReadAzureFields(const RequestHead& h, AzureFields& f);

// A query of exactly `timeout={1 to 10 digits}`, the one parameter the SDKs add to a Get Blob (their
// `timeout=` argument) and the JavaScript door ignores; its value in `seconds`.
bool TimeoutQuery(std::string_view query, std::string_view& seconds);

// x-ms-request-id: a random (version 4) UUID in lower case, as the JavaScript door makes them.
std::string AzureRequestId();

// The service version the JavaScript door speaks when a client names none (door.ts AZURE_API_VERSION).
inline constexpr std::string_view kAzureApiVersion = "2025-11-05";

}  // namespace weightcache::http::doors
