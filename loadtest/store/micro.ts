/**
 * Store microbenchmark: the native store's lookups/s from 1 and 2 threads
 * and the cost of taking and dropping a reference (addon/bench/store_bench.cc,
 * built here with -O2), then the same lookups through the JS binding as the
 * read path makes them (DramStore.peek: one Buffer per chunk, so a hit
 * allocates none). Rows go to loadtest/results/store-micro-rows.json.
 *
 *   node --import tsx loadtest/store/micro.ts [--seconds 1]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkAddress } from '../../src/store/address.js';
import { DramStore } from '../../src/store/dram.js';
import { buildNativeBench, REPO } from '../native-bench.js';

const i = process.argv.indexOf('--seconds');
const seconds = i > 0 ? Number(process.argv[i + 1]) : 1;

interface Row {
  case: string;
  server: string;
  metric: string;
  unit: string;
  median: number;
  min?: number;
  max?: number;
  runs?: number[];
}

const work = process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? join(tmpdir(), 'weightcache-store-micro');
mkdirSync(work, { recursive: true });
const bin = buildNativeBench(
  'store_bench',
  ['addon/bench/store_bench.cc', 'addon/src/store/arena.cc', 'addon/src/store/store.cc'],
  work,
);
// Three runs each; the runner takes medians.
const runs = [0, 1, 2].map(
  () => JSON.parse(execFileSync(bin, [String(seconds)], { encoding: 'utf8' })) as Row[],
);
const rows: Row[] = runs[0]!.map((r, k) => {
  const vs = runs.map((run) => run[k]!.median);
  const sorted = [...vs].sort((a, b) => a - b);
  return { ...r, median: sorted[1]!, min: sorted[0]!, max: sorted[2]!, runs: vs };
});

// Through the JS binding, as the read path looks chunks up.
const KEYS = 16 * 1024;
const store = new DramStore({ maxBytes: KEYS * 4096 });
const info = { container: 'models', key: 'm/model.safetensors', etag: 'v1', size: KEYS * 4096 };
const addrs = Array.from({ length: KEYS }, (_, k) => chunkAddress('fs:/o', info, 4096, k));
for (const a of addrs) store.store(a, { data: Buffer.alloc(4096, 1), crc32c: 0 });
const jsRuns: number[] = [];
const jsCpu: number[] = [];
for (let r = 0; r < 3; r++) {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    for (let k = 0; k < 1024; k++) if (store.peek(addrs[(n + k * 7919) % KEYS]!)) n++;
  }
  const cpu = process.cpuUsage(cpu0);
  jsRuns.push(n / seconds);
  jsCpu.push(((cpu.user + cpu.system) * 1000) / n);
}
const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
const c = `store · ${KEYS} chunks · JS binding (DramStore.peek)`;
rows.push({
  case: c,
  server: 'weightcache',
  metric: 'lookups/s',
  unit: 'ops/s',
  median: mid(jsRuns),
  runs: jsRuns,
});
rows.push({
  case: c,
  server: 'weightcache',
  metric: 'CPU per lookup',
  unit: 'ns',
  median: mid(jsCpu),
  runs: jsCpu,
});
await store.close();

mkdirSync(join(REPO, 'loadtest/results'), { recursive: true });
writeFileSync(join(REPO, 'loadtest/results/store-micro-rows.json'), `${JSON.stringify(rows, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
