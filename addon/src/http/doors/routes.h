// The front doors (S3, Azure Blob, the Hugging Face Hub; src/http/door.ts)
// on the native fast path: the doors mounted under paths of the shared HTTP
// port whose object reads the I/O threads may answer themselves. The objects
// fast path (http/fastpath.h) hands every request outside /v1/objects/ here;
// a door that is not configured, a route a door does not answer natively, or
// anything the native side is unsure of goes to JavaScript unchanged.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/doors/azure.h"
#include "http/doors/hub.h"
#include "http/doors/s3.h"
#include "http/fastpath.h"

namespace weightcache::http::doors {

struct DoorStats {
  std::atomic<uint64_t> hub_hits{0};       // Hub answers on the fast path (200, 206, 304)
  std::atomic<uint64_t> hub_body_hits{0};  // of them: GETs with a body (the Hub door's object reads)
  std::atomic<uint64_t> hub_nvme_body_hits{0};  // of those: the first chunk read from NVMe (source nvme)
  std::atomic<uint64_t> s3_hits{0};        // S3 GetObject / HeadObject answers on the fast path (200, 206, 304)
  std::atomic<uint64_t> s3_body_hits{0};   // of them: GETs with a body (the S3 door's object reads)
  std::atomic<uint64_t> s3_signed_hits{0};      // of s3_hits: signed requests verified natively (auth on)
  std::atomic<uint64_t> s3_signed_declined{0};  // signed S3 reads left to JavaScript: not verified or out of scope
  std::atomic<uint64_t> s3_nvme_body_hits{0};   // of those: the first chunk read from NVMe (source nvme)
  std::atomic<uint64_t> azure_hits{0};          // Azure Get Blob / Get Blob Properties on the fast path (200, 206, 304)
  std::atomic<uint64_t> azure_body_hits{0};     // of them: GETs with a body (the Azure door's object reads)
  std::atomic<uint64_t> azure_nvme_body_hits{0};  // of those: the first chunk read from NVMe (source nvme)
  std::atomic<uint64_t> azure_signed_hits{0};      // of azure_hits: SharedKey, SAS or bearer reads verified natively (auth on)
  std::atomic<uint64_t> azure_signed_declined{0};  // Azure reads of a node with auth left to JavaScript
};

struct HubRoute {
  std::string path;       // hub.path, e.g. "/hf"
  std::string container;  // hub.container
  HubRevisions revisions;
  HubRoute(std::string p, std::string c, size_t max_files)
      : path(std::move(p)), container(std::move(c)), revisions(max_files) {}
};

struct DoorRoutes {
  std::unique_ptr<HubRoute> hub;  // null: the Hub door is not configured
  std::unique_ptr<S3Route> s3;    // null: the S3 door is not configured
  std::unique_ptr<AzureRoute> azure;  // null: the Azure Blob door is not configured
  DoorStats stats;
};

// A request outside /v1/objects/: answered on the fast path by the door
// mounted at its path, or left to JavaScript (kNo, `out` untouched), as
// StartFastPath answers: with a `disk` reader, NVMe-only chunks are read
// (kPending; the reader's callback gets the pieces for `token`). Counts into
// fp.stats as the objects path does (hits, body bytes, the reasons for
// JavaScript), and into routes.stats per door (through NoteFastHit: a
// pending answer once its bytes are there).
FastResult TryDoorFastPath(FastPath& fp, DoorRoutes& routes, const RequestHead& h, std::string_view date,
                           FastAnswer& out, store::DiskReader* disk, uint64_t token);

}  // namespace weightcache::http::doors
