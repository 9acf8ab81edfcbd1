#!/usr/bin/env node
// Entry point: the compiled CLI (npm install builds dist/).
//
// libuv's thread pool runs the fs calls: origin reads of an fs origin and NVMe
// chunk writes (NVMe reads have their own io_uring loop or thread pool). Its default of 4 threads would cap a cold fill at
// 4 origin reads at once whatever origin.maxConcurrency says; 16 lets reads
// and the (bounded) NVMe write-through proceed side by side. It is read when
// the pool starts, so it is set before anything is imported; an explicit
// UV_THREADPOOL_SIZE in the environment wins.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/src/cli/main.js');

await main(process.argv);
