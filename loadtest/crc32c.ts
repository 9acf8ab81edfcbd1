/**
 * Scenario kind "crc32c": the checksum every chunk carries, per
 * implementation (table, SSE4.2, AVX-512 VPCLMULQDQ), against memcpy of the
 * same bytes on the same core, in buffers that fit the caches and buffers
 * that do not, and checking a 4 MiB chunk block by block as a v2 NVMe read
 * does (addon/bench/crc32c_bench.cc, compiled against addon/src here).
 */
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import type { Ctx } from './ctx.js';
import { buildNativeBench } from './native-bench.js';
import type { Samples } from './results.js';
import type { Crc32cScenario } from './scenario.js';

const SOURCES = ['addon/bench/crc32c_bench.cc', 'addon/src/crc32c.cc'];

export function runCrc32c(s: Crc32cScenario, ctx: Ctx, samples: Samples): void {
  const bin = buildNativeBench('crc32c_bench', SOURCES, dirname(ctx.clientBin));
  for (let rep = 0; rep < s.repeats; rep++) {
    const r = spawnSync(bin, [String(s.seconds), s.bufferBytes.join(','), s.blockBytes.join(',')], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (r.status !== 0) throw new Error(`crc32c_bench failed: ${r.stderr || r.error?.message}`);
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const m = JSON.parse(line) as { case: string; server: string; gbps: number };
      samples.add(m.case, m.server, 'GB/s', 'GB/s', m.gbps);
    }
    ctx.log(`run ${rep + 1}/${s.repeats} done`);
  }
  ctx.notes.push(
    'one core, the buffer reused: sizes that fit the caches measure the instructions, 4 MiB and up measure memory too; ' +
      'the ratio is against memcpy of the same bytes in the same run',
  );
}
