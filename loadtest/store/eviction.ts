/**
 * Eviction policies compared on a trace of several models loading
 * (eviction-trace.ts), by the simulator in addon/bench/eviction_sim.cc:
 * LRU (what the lru-cache DRAM tier did), CLOCK, segmented LRU and S3-FIFO
 * (the store's class), at three DRAM sizes. Rows go to
 * loadtest/results/eviction-rows.json; the runner's `eviction` scenario
 * reads them. Standalone:
 *
 *   node --import tsx loadtest/store/eviction.ts [--loads 300] [--seed 7]
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNativeBench, REPO } from '../native-bench.js';
import { trace } from './eviction-trace.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

const work = process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? join(tmpdir(), 'weightcache-eviction');
mkdirSync(work, { recursive: true });
const traceFile = join(work, 'trace.txt');
const out = createWriteStream(traceFile);
let lines = 0;
for (const line of trace({ loads: arg('loads', 300), seed: arg('seed', 7), gapS: 30 })) {
  if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  lines++;
}
await new Promise<void>((r) => out.end(r));
process.stderr.write(`eviction: ${lines} accesses in ${traceFile}\n`);

const sim = buildNativeBench('eviction_sim', ['addon/bench/eviction_sim.cc'], work);
const rows = execFileSync(sim, [traceFile, '16GiB', '32GiB', '64GiB'], {
  encoding: 'utf8',
  maxBuffer: 1 << 24,
});
mkdirSync(join(REPO, 'loadtest/results'), { recursive: true });
writeFileSync(join(REPO, 'loadtest/results/eviction-rows.json'), rows);
process.stdout.write(rows);
