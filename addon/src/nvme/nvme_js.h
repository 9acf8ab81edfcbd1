// The NVMe tier's native side as JavaScript sees it (typed in
// src/transport/binding.ts, used by src/tier/chunk-file.ts, nvme-reader.ts
// and nvme.ts): the v2 chunk header codec, the directory lock,
// and NvmeReader, verified chunk-file reads on an io::Loop driven by the JS
// thread's libuv loop (completions arrive with no thread hop; the reads
// themselves never block it).
#pragma once
#include <napi.h>

namespace weightcache {

void RegisterNvme(Napi::Env env, Napi::Object exports);

}  // namespace weightcache
