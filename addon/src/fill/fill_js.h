// FillFiles: the fill path's file jobs (fill/file_jobs.h) for JavaScript —
// versioned reads of fs origin files and atomic NVMe chunk-file writes, each
// one job on a thread pool of its own, results delivered on the JS thread.
#pragma once
#include <napi.h>

namespace weightcache {
void RegisterFill(Napi::Env env, Napi::Object exports);
}
