/**
 * ReadPath over real parts: an fs origin on a temp directory and the native
 * DRAM store. What one read holds is the chunks it has started and not yet
 * handed on: at most `readAhead + 1` (the slice out with the consumer and
 * readAhead behind it), which is what docs/configuration.md promises for memory
 * per read and what the HTTP send budget and RESP reply memory reserve. The
 * count is taken at ReadPath's per-chunk step (`slice`), the read path's own
 * unit of a chunk in flight or buffered.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { Limiter } from '../../src/fill/limiter.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { ReadPath } from '../../src/read/read-path.js';
import { TieredStore } from '../../src/store/tiered.js';

const CHUNK = 64 * 1024;
const CHUNKS = 10;
// Ten whole chunks and a short last one.
const SIZE = CHUNKS * CHUNK + 1234;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Fixture {
  readonly bytes: Buffer;
  readonly readPath: ReadPath;
  /** Chunk indexes the read path started, in order. */
  readonly started: number[];
}

function fixture(readAhead: number): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'wc-readpath-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'models'), { recursive: true });
  const bytes = randomBytes(SIZE);
  writeFileSync(join(dir, 'models', 'w.bin'), bytes);
  const metrics = new Metrics();
  const log = createLogger('silent');
  const origin = new FsOrigin({ root: dir });
  const readPath = new ReadPath({
    origin,
    leases: new LeaseTable({ origin, termMs: 30_000, metrics }),
    store: new TieredStore({ dramBytes: 64 * CHUNK, nvme: null, metrics, log }),
    chunkSize: CHUNK,
    readAhead,
    originLimiter: new Limiter(4, 256, 'origin reads'),
    metrics,
    log,
  });
  const started: number[] = [];
  // The per-chunk step is private; wrapping it is how the test sees what a read has started.
  const rp = readPath as unknown as { slice: (...a: unknown[]) => Promise<unknown> };
  const slice = rp.slice.bind(readPath);
  rp.slice = (info: unknown, index: unknown, ...rest: unknown[]) => {
    started.push(index as number);
    return slice(info, index, ...rest);
  };
  return { bytes, readPath, started };
}

/**
 * Reads [start, end] one slice at a time, like a door whose client is slow
 * (a pause while each slice is "out"), and records at each slice how many
 * chunks the read was holding: started, minus those handed on before it.
 */
async function readHolding(
  f: Fixture,
  start: number,
  end: number,
): Promise<{ held: number[]; data: Buffer }> {
  const info = await f.readPath.resolve({ container: 'models', key: 'w.bin' });
  f.started.length = 0;
  const held: number[] = [];
  const parts: Buffer[] = [];
  let handedOn = 0;
  for await (const s of f.readPath.read(info, start, end)) {
    // Let every fill the read started settle before counting, as a slow client would.
    await new Promise((r) => setTimeout(r, 5));
    held.push(f.started.length - handedOn);
    parts.push(Buffer.from(s.data));
    handedOn++;
  }
  return { held, data: Buffer.concat(parts) };
}

describe('ReadPath.read', () => {
  for (const readAhead of [0, 1, 4]) {
    it(`holds at most readAhead + 1 chunks per read (readAhead ${readAhead}), bytes equal the origin's`, async () => {
      const f = fixture(readAhead);
      const { held, data } = await readHolding(f, 0, SIZE - 1);
      expect(data.equals(f.bytes)).toBe(true);
      expect(held).toHaveLength(CHUNKS + 1);
      expect(Math.max(...held)).toBe(Math.min(readAhead + 1, CHUNKS + 1));
      // Every chunk was started once, in order.
      expect(f.started).toEqual([...Array(CHUNKS + 1).keys()]);
      // Warm: the same bound, the same bytes.
      const warm = await readHolding(f, 0, SIZE - 1);
      expect(warm.data.equals(f.bytes)).toBe(true);
      expect(Math.max(...warm.held)).toBe(Math.min(readAhead + 1, CHUNKS + 1));
    });
  }

  it('holds the bound for an inner range that starts and ends inside chunks', async () => {
    const f = fixture(2);
    const start = CHUNK + 100;
    const end = 7 * CHUNK + 5000;
    const { held, data } = await readHolding(f, start, end);
    expect(data.equals(f.bytes.subarray(start, end + 1))).toBe(true);
    expect(held).toHaveLength(7);
    expect(Math.max(...held)).toBe(3);
    expect(f.started).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('starts no chunk past the end of the range', async () => {
    const f = fixture(4);
    const { data } = await readHolding(f, 0, CHUNK - 1);
    expect(data.equals(f.bytes.subarray(0, CHUNK))).toBe(true);
    expect(f.started).toEqual([0]);
  });
});
