/**
 * ReadPath over real parts: an fs origin on a temp directory, the DRAM tier and
 * the NVMe tier (a real chunk directory). What a read holds is the chunks it
 * has asked for and not yet handed on: at most `readAhead + 1` (the one out
 * with the consumer and readAhead behind it), which is what docs/configuration.md
 * promises for memory per read. The count is taken at ReadPath.chunk(), the
 * read path's own unit of a chunk in flight or buffered.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { Limiter } from '../../src/fill/limiter.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics, type Source } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import type { ObjectInfo } from '../../src/origin/origin.js';
import { type Located, ReadPath, type ReadPathOptions, type Versioned } from '../../src/read/read-path.js';
import { DramTier } from '../../src/tier/dram.js';
import { NvmeTier } from '../../src/tier/nvme.js';

const CHUNK = 64 * 1024;
const CHUNKS = 10;
// Ten whole chunks and a short last one.
const SIZE = CHUNKS * CHUNK + 1234;

/** A ReadPath that records every chunk a read asks for, in order. */
class CountingReadPath extends ReadPath {
  readonly requested: number[] = [];
  override chunk(info: Versioned, index: number, signal?: AbortSignal): Promise<Located> {
    this.requested.push(index);
    return super.chunk(info, index, signal);
  }
}

const dirs: string[] = [];
const tiers: NvmeTier[] = [];
afterEach(async () => {
  await Promise.all(tiers.splice(0).map((t) => t.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'wc-readpath-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'origin', 'models'), { recursive: true });
  const bytes = randomBytes(SIZE);
  writeFileSync(join(dir, 'origin', 'models', 'w.bin'), bytes);
  const origin = new FsOrigin({ root: join(dir, 'origin') });
  return { dir, bytes, origin };
}

async function readPath(
  f: ReturnType<typeof fixture>,
  readAhead: number,
  extra: Partial<ReadPathOptions> = {},
): Promise<CountingReadPath> {
  const metrics = new Metrics();
  const nvme = await NvmeTier.open({ dir: join(f.dir, 'chunks'), maxBytes: 64 * CHUNK, metrics });
  tiers.push(nvme);
  return new CountingReadPath({
    origin: f.origin,
    leases: new LeaseTable({ origin: f.origin, termMs: 30_000, metrics }),
    dram: new DramTier({ maxBytes: 64 * CHUNK, metrics }),
    nvme,
    chunkSize: CHUNK,
    readAhead,
    originLimiter: new Limiter(4, 256, 'origin reads'),
    metrics,
    log: createLogger('silent'),
    ...extra,
  });
}

/**
 * Reads [start, end] one slice at a time, like a door whose client is slow, and
 * records at each slice how many chunks the read was holding (asked for, minus
 * those already handed on before this one).
 */
async function readSlowly(rp: CountingReadPath, info: ObjectInfo, start: number, end: number) {
  const held: number[] = [];
  const sources: Source[] = [];
  const parts: Buffer[] = [];
  let handedOn = 0;
  for await (const slice of rp.read(info, start, end)) {
    held.push(rp.requested.length - handedOn);
    handedOn++;
    sources.push(slice.source);
    parts.push(Buffer.from(slice.data));
  }
  return { held, sources, data: Buffer.concat(parts) };
}

describe('ReadPath.read', () => {
  for (const readAhead of [0, 1, 4]) {
    it(`holds at most readAhead + 1 chunks (readAhead ${readAhead}) and returns the origin's bytes`, async () => {
      const f = fixture();
      const rp = await readPath(f, readAhead);
      const info = await rp.resolve({ container: 'models', key: 'w.bin' });
      const r = await readSlowly(rp, info, 0, SIZE - 1);

      expect(r.data.equals(f.bytes)).toBe(true);
      expect(r.held.length).toBe(CHUNKS + 1);
      // The bound, at every slice; and the window is used (it is not just small).
      expect(Math.max(...r.held)).toBe(readAhead + 1);
      for (const [i, h] of r.held.entries()) {
        expect(h, `slice ${i}`).toBe(Math.min(readAhead + 1, CHUNKS + 1 - i));
      }
      // Each chunk asked for once, in order.
      expect(rp.requested).toEqual([...Array(CHUNKS + 1).keys()]);
      expect(r.sources.every((s) => s === 'origin')).toBe(true);
    });
  }

  it('a range inside the object asks only for its chunks, within the same bound', async () => {
    const f = fixture();
    const rp = await readPath(f, 2);
    const info = await rp.resolve({ container: 'models', key: 'w.bin' });
    const start = 3 * CHUNK + 100;
    const end = 8 * CHUNK + 5; // chunks 3..8, both ends partial
    const r = await readSlowly(rp, info, start, end);

    expect(r.data.equals(f.bytes.subarray(start, end + 1))).toBe(true);
    expect(rp.requested).toEqual([3, 4, 5, 6, 7, 8]);
    expect(r.held).toEqual([3, 3, 3, 3, 2, 1]);
  });

  it('serves a second read from DRAM, and a new process over the same chunk directory from NVMe', async () => {
    const f = fixture();
    const first = await readPath(f, 4);
    const info = await first.resolve({ container: 'models', key: 'w.bin' });
    await readSlowly(first, info, 0, SIZE - 1);
    const again = await readSlowly(first, info, 0, SIZE - 1);
    expect(again.sources.every((s) => s === 'dram')).toBe(true);
    expect(again.data.equals(f.bytes)).toBe(true);

    // Write-through: every chunk reached NVMe without the reader waiting; let the writes land.
    await Promise.all(tiers.splice(0).map((t) => t.close()));
    const restarted = await readPath(f, 4);
    const warm = await readSlowly(restarted, info, 0, SIZE - 1);
    expect(warm.sources.every((s) => s === 'nvme')).toBe(true);
    expect(warm.data.equals(f.bytes)).toBe(true);
  });
});
