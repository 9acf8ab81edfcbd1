import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { chunkFileId } from '../../src/chunk/name.js';
import type { Logger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { dataOffsetFor, encodeChunkHeader } from '../../src/tier/chunk-file.js';
import { NvmeTier, type NvmeTierOptions, type TierLogger } from '../../src/tier/nvme.js';
import { chunkOf, keyOf, tierContract } from './contract.js';
import { chunkBytes, writerKey } from './fixtures/nvme-writer.js';

const KiB = 1024;
const dirs: string[] = [];
const mounts: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wc-nvme-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

tierContract('nvme', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wc-nvme-contract-'));
  const opts = { dir, maxBytes: 256 * KiB };
  return {
    tier: await NvmeTier.open(opts),
    reopen: () => NvmeTier.open(opts),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// The tier's logger type is structural: a pino Logger must fit it.
const pinoFits: Logger extends TierLogger ? true : false = true;
void pinoFits;

class RecordingLogger implements TierLogger {
  readonly warns: { obj: object; msg: string }[] = [];
  readonly infos: { obj: object; msg: string }[] = [];
  warn(obj: object, msg: string): void {
    this.warns.push({ obj, msg });
  }
  info(obj: object, msg: string): void {
    this.infos.push({ obj, msg });
  }
  count(re: RegExp): number {
    return this.warns.filter((w) => re.test(w.msg)).length;
  }
}

interface Setup {
  dir: string;
  tier: NvmeTier;
  metrics: Metrics;
  log: RecordingLogger;
  clock: { t: number };
  reopen(extra?: Partial<NvmeTierOptions>): Promise<NvmeTier>;
}

async function setup(extra: Partial<NvmeTierOptions> & { dir?: string } = {}): Promise<Setup> {
  const dir = extra.dir ?? (await tempDir());
  const metrics = new Metrics();
  const log = new RecordingLogger();
  const clock = { t: 1_000_000 };
  const base = { dir, maxBytes: 4 * 1024 * KiB, metrics, logger: log, now: () => clock.t, ...extra };
  const tier = await NvmeTier.open(base);
  return { dir, tier, metrics, log, clock, reopen: (more = {}) => NvmeTier.open({ ...base, ...more }) };
}

function pathOf(dir: string, key: string): string {
  const id = chunkFileId(key);
  return join(dir, id.slice(0, 2), id);
}

async function allFiles(dir: string): Promise<string[]> {
  const out = await readdir(dir, { recursive: true, withFileTypes: true });
  return out.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

const total = (m: Metrics, c: Metrics['tierErrors'] | Metrics['checksumFailures'], labels = {}) =>
  m.total(c, { tier: 'nvme', ...labels });
const gauge = async (g: Metrics['tierDegraded']) =>
  (await g.get()).values.find((v) => v.labels.tier === 'nvme')?.value;

describe('NvmeTier: warm restart', () => {
  it('serves the same chunks byte-exact from a new instance, with the index and metrics rebuilt', async () => {
    const s = await setup();
    const chunks = Array.from({ length: 12 }, (_, i) => chunkOf(randomBytes(10 * KiB + i)));
    for (const [i, c] of chunks.entries()) await s.tier.put(keyOf('w', i), c);
    await s.tier.close();

    const metrics = new Metrics();
    const again = await s.reopen({ metrics });
    const bytes = chunks.reduce((n, c) => n + c.data.length, 0);
    expect(again.stats()).toMatchObject({ entries: 12, usedBytes: bytes });
    expect(await gauge(metrics.tierEntries)).toBe(12);
    expect(await gauge(metrics.tierUsedBytes)).toBe(bytes);
    for (const [i, c] of chunks.entries()) {
      const got = await again.get(keyOf('w', i));
      expect(got?.crc32c).toBe(c.crc32c);
      expect(got?.data.equals(c.data)).toBe(true);
    }
  });

  it('rebuilds LRU order from file times and evicts the oldest down to maxBytes', async () => {
    const s = await setup();
    for (const k of ['a', 'b', 'c']) await s.tier.put(keyOf(k), chunkOf(randomBytes(10 * KiB)));
    await s.tier.close();
    const at = (sec: number) => new Date(1_700_000_000_000 + sec * 1000);
    await utimes(pathOf(s.dir, keyOf('a')), at(3), at(3));
    await utimes(pathOf(s.dir, keyOf('b')), at(1), at(1));
    await utimes(pathOf(s.dir, keyOf('c')), at(2), at(2));
    const metrics = new Metrics();
    const small = await s.reopen({ maxBytes: 20 * KiB, metrics });
    expect(small.has(keyOf('b'))).toBe(false); // the oldest went
    expect(small.has(keyOf('a')) && small.has(keyOf('c'))).toBe(true);
    expect(await metrics.total(metrics.evictions, { tier: 'nvme' })).toBe(1);
    expect((await allFiles(s.dir)).length).toBe(2);
  });
});

describe('NvmeTier: damaged files are misses, dropped and counted', () => {
  it('a flipped data byte: get returns undefined, deletes the file, counts a checksum failure', async () => {
    const s = await setup();
    const key = keyOf('flip');
    await s.tier.put(key, chunkOf(randomBytes(50 * KiB)));
    const path = pathOf(s.dir, key);
    const fh = await open(path, 'r+');
    const at = dataOffsetFor(key) + 12_345;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0x01;
    await fh.write(b, 0, 1, at);
    await fh.close();

    expect(await s.tier.get(key)).toBeUndefined();
    expect(s.tier.has(key)).toBe(false);
    expect(await allFiles(s.dir)).toEqual([]);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
    expect(s.log.count(/corrupt chunk dropped/)).toBe(1);
    expect(s.tier.stats()).toMatchObject({ entries: 0, usedBytes: 0 });
  });

  it('a truncated file: a miss while running, and dropped by the scan at start', async () => {
    const s = await setup();
    const [k1, k2] = [keyOf('t1'), keyOf('t2')];
    await s.tier.put(k1, chunkOf(randomBytes(40 * KiB)));
    await s.tier.put(k2, chunkOf(randomBytes(40 * KiB)));
    await truncate(pathOf(s.dir, k1), dataOffsetFor(k1) + 20 * KiB);
    expect(await s.tier.get(k1)).toBeUndefined();
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);

    await s.tier.close();
    await truncate(pathOf(s.dir, k2), 100); // inside the header
    const metrics = new Metrics();
    const again = await s.reopen({ metrics });
    expect(again.stats().entries).toBe(0);
    expect(await allFiles(s.dir)).toEqual([]);
    expect(await total(metrics, metrics.tierErrors, { op: 'scan' })).toBe(1);
  });

  it("a file renamed to another chunk's name: the header key decides, the file is dropped", async () => {
    const s = await setup();
    const [a, b, c] = [keyOf('a'), keyOf('b'), keyOf('c')];
    for (const k of [a, b, c]) await s.tier.put(k, chunkOf(randomBytes(8 * KiB)));
    await rename(pathOf(s.dir, a), pathOf(s.dir, b)); // b's name now holds a's bytes
    expect(await s.tier.get(b)).toBeUndefined();
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
    expect(await s.tier.get(a)).toBeUndefined(); // its file is gone: a miss
    await s.tier.close();

    const id = chunkFileId(c);
    // c's bytes under a name in the right subdir that is not chunkFileId(c)
    await rename(pathOf(s.dir, c), join(s.dir, id.slice(0, 2), `${id.slice(0, 2)}${'f'.repeat(62)}`));
    const again = await s.reopen();
    expect(again.stats().entries).toBe(0);
    expect(s.log.count(/dropped at start/)).toBe(1);
  });

  it('a flipped header byte is caught by the header crc at start', async () => {
    const s = await setup();
    const key = keyOf('h');
    await s.tier.put(key, chunkOf(randomBytes(8 * KiB)));
    await s.tier.close();
    const fh = await open(pathOf(s.dir, key), 'r+');
    await fh.write(Buffer.from([0x7f]), 0, 1, 45); // inside the key
    await fh.close();
    const metrics = new Metrics();
    const again = await s.reopen({ metrics });
    expect(again.has(key)).toBe(false);
    expect(await total(metrics, metrics.checksumFailures)).toBe(1);
  });
});

describe('NvmeTier: start-up scan', () => {
  it('removes leftover temp files and survives garbage without deleting files that are not its own', async () => {
    const s = await setup();
    const good = keyOf('good');
    const c = chunkOf(randomBytes(16 * KiB));
    await s.tier.put(good, c);
    await s.tier.close();
    const id = chunkFileId(keyOf('torn'));
    const sub = join(s.dir, id.slice(0, 2));
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `${id}.tmp-4242-0`), randomBytes(5000)); // a write cut short by a crash
    await writeFile(join(s.dir, 'README'), 'not a chunk');
    await writeFile(join(sub, 'notes.txt'), 'not a chunk');
    await writeFile(join(sub, id), Buffer.alloc(0)); // empty file under a chunk name
    await writeFile(join(sub, `${id.slice(0, 63)}`), randomBytes(100));
    const fake = keyOf('fake');
    const fid = chunkFileId(fake);
    await mkdir(join(s.dir, fid.slice(0, 2)), { recursive: true });
    await writeFile(join(s.dir, fid.slice(0, 2), fid), randomBytes(9000)); // garbage under a chunk name
    await mkdir(join(s.dir, 'zz', 'deeper'), { recursive: true });

    const again = await s.reopen();
    expect(again.stats().entries).toBe(1);
    expect((await again.get(good))?.data.equals(c.data)).toBe(true);
    const left = (await allFiles(s.dir)).map((p) => p.slice(s.dir.length + 1)).sort();
    expect(left).toEqual(
      [
        `${id.slice(0, 2)}/${id.slice(0, 63)}`,
        `${id.slice(0, 2)}/notes.txt`,
        'README',
        pathOf(s.dir, good).slice(s.dir.length + 1),
      ].sort(),
    );
  });
});

describe('NvmeTier: start-up scan, fuzzed', () => {
  it('any bytes under a chunk name (cut or altered real files, random junk) never crash open or get served', async () => {
    const s = await setup();
    const real = chunkOf(randomBytes(6000));
    await s.tier.put(keyOf('real'), real);
    await s.tier.close();
    const file = await readFile(pathOf(s.dir, keyOf('real')));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 9000 }).map((b) => Buffer.from(b)),
          fc.nat(file.length - 1).map((n) => file.subarray(0, n)),
          fc.tuple(fc.nat(file.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const b = Buffer.from(file);
            b[at]! ^= x;
            return b;
          }),
        ),
        async (bytes) => {
          await writeFile(pathOf(s.dir, keyOf('real')), bytes);
          const t = await s.reopen();
          const got = await t.get(keyOf('real'));
          if (got)
            expect(got.data.equals(real.data)).toBe(true); // only the true bytes, ever
          else expect(t.has(keyOf('real'))).toBe(false);
          await t.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('NvmeTier: put', () => {
  it('refuses to persist a chunk whose bytes do not match its crc32c', async () => {
    const s = await setup();
    const c = chunkOf(randomBytes(1000));
    await s.tier.put(keyOf('bad'), { data: c.data, crc32c: (c.crc32c ^ 1) >>> 0 });
    expect(s.tier.has(keyOf('bad'))).toBe(false);
    expect(await allFiles(s.dir)).toEqual([]);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
  });

  it('concurrent puts of one key write it once, intact, with no temp files left', async () => {
    const s = await setup();
    const c = chunkOf(randomBytes(300 * KiB));
    await Promise.all(Array.from({ length: 8 }, () => s.tier.put(keyOf('same'), c)));
    expect(s.tier.stats()).toMatchObject({ entries: 1, usedBytes: c.data.length });
    expect((await s.tier.get(keyOf('same')))?.data.equals(c.data)).toBe(true);
    expect(await allFiles(s.dir)).toEqual([pathOf(s.dir, keyOf('same'))]);
  });

  it('drops puts past maxPendingWrites instead of queueing them, and logs once', async () => {
    const s = await setup({ maxPendingWrites: 2 });
    const puts = Array.from({ length: 20 }, (_, i) =>
      s.tier.put(keyOf('p', i), chunkOf(randomBytes(4 * KiB))),
    );
    const settled = await Promise.allSettled(puts);
    expect(settled.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(s.tier.stats().entries).toBe(2);
    expect(s.tier.droppedWrites).toBe(18);
    expect(await total(s.metrics, s.metrics.tierErrors, { op: 'overload' })).toBe(18);
    expect(s.log.count(/write queue full/)).toBe(1);
  });

  it('concurrent puts of different keys never reserve more than maxBytes', async () => {
    const s = await setup({ maxBytes: 256 * KiB });
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => s.tier.put(keyOf('c', i), chunkOf(randomBytes(100 * KiB)))),
    );
    expect(s.tier.stats().usedBytes).toBeLessThanOrEqual(256 * KiB);
    expect(s.tier.stats().entries).toBe(2);
    expect(s.tier.droppedWrites).toBe(4);
  });

  it('a put of a chunk it already holds is a use, not a rewrite', async () => {
    const s = await setup({ maxBytes: 30 * KiB });
    const a = chunkOf(randomBytes(10 * KiB));
    await s.tier.put(keyOf('a'), a);
    await s.tier.put(keyOf('b'), chunkOf(randomBytes(10 * KiB)));
    await s.tier.put(keyOf('c'), chunkOf(randomBytes(10 * KiB)));
    await utimes(pathOf(s.dir, keyOf('a')), new Date(0), new Date(0));
    await s.tier.put(keyOf('a'), a); // refreshes a: b is now the oldest
    expect((await stat(pathOf(s.dir, keyOf('a')))).mtimeMs).toBe(0); // not rewritten
    await s.tier.put(keyOf('d'), chunkOf(randomBytes(10 * KiB)));
    expect(s.tier.has(keyOf('a'))).toBe(true);
    expect(s.tier.has(keyOf('b'))).toBe(false);
  });

  it('concurrent gets, puts, overwrites and evictions never serve wrong bytes', async () => {
    const s = await setup({ maxBytes: 64 * KiB });
    const latest = new Map<string, Set<string>>(); // key -> every crc ever put under it
    const op = async (i: number): Promise<void> => {
      const key = keyOf('r', i % 7);
      if (i % 3 === 0) {
        const c = chunkOf(randomBytes(4 * KiB + (i % 5) * 3000));
        latest.set(key, (latest.get(key) ?? new Set()).add(String(c.crc32c)));
        await s.tier.put(key, c);
      } else if (i % 11 === 0) {
        await s.tier.delete(key);
      } else {
        const got = await s.tier.get(key);
        if (got) expect(latest.get(key)?.has(String(crc32c(got.data)))).toBe(true);
      }
    };
    for (let round = 0; round < 40; round++)
      await Promise.all(Array.from({ length: 12 }, (_, j) => op(round * 12 + j)));
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(0);
    expect(s.tier.stats().usedBytes).toBeLessThanOrEqual(64 * KiB);
    const files = (await allFiles(s.dir)).filter((f) => !f.includes('.tmp-'));
    expect(files.length).toBe(s.tier.stats().entries); // index and disk agree
  });

  it('close() waits for writes in flight', async () => {
    const s = await setup();
    const c = chunkOf(randomBytes(512 * KiB));
    void s.tier.put(keyOf('late'), c);
    await s.tier.close();
    expect(s.tier.has(keyOf('late'))).toBe(true);
    const again = await s.reopen();
    expect((await again.get(keyOf('late')))?.data.equals(c.data)).toBe(true);
  });

  it('delete waits for an in-flight write of the same key', async () => {
    const s = await setup();
    const p = s.tier.put(keyOf('x'), chunkOf(randomBytes(200 * KiB)));
    expect(await s.tier.delete(keyOf('x'))).toBe(true);
    await p;
    expect(s.tier.has(keyOf('x'))).toBe(false);
    expect(await allFiles(s.dir)).toEqual([]);
  });

  it('locate() gives the file range holding exactly the data', async () => {
    const s = await setup();
    const c = chunkOf(randomBytes(33 * KiB));
    await s.tier.put(keyOf('l'), c);
    const loc = s.tier.locate(keyOf('l'))!;
    expect(loc).toMatchObject({ path: pathOf(s.dir, keyOf('l')), length: c.data.length, crc32c: c.crc32c });
    expect(loc.dataOffset % 4096).toBe(0);
    const file = await readFile(loc.path);
    expect(file.subarray(loc.dataOffset, loc.dataOffset + loc.length).equals(c.data)).toBe(true);
    expect(s.tier.locate(keyOf('none'))).toBeUndefined();
  });

  it('a header is rejected for a key longer than the format allows', () => {
    expect(() => encodeChunkHeader('k'.repeat(4097), 1, 0)).toThrow(/4096/);
  });

  it('rejects bad options at construction, naming them', () => {
    expect(() => new NvmeTier({ dir: '', maxBytes: 1 })).toThrow(/dir/);
    expect(() => new NvmeTier({ dir: '/x', maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => new NvmeTier({ dir: '/x', maxBytes: 1, maxPendingWrites: 0 })).toThrow(/maxPendingWrites/);
  });
});

/**
 * Full and read-only devices are tested on a real tmpfs, which needs mount
 * (root here). Where mount is not permitted those tests show as skipped; the
 * ENOTDIR test still covers an unwritable directory.
 */
function canMount(): boolean {
  const probe = mkdtempSync(join(tmpdir(), 'wc-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const MOUNT_OK = canMount();

async function tmpfs(size: string): Promise<string> {
  const d = await tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d]);
  mounts.push(d);
  return d;
}

describe('NvmeTier: a failing device degrades the tier, never the caller', () => {
  it('an unwritable dir (parent is a file, ENOTDIR): open and puts do not throw; recovers after backoff', async () => {
    const earlier = await setup();
    const kept = chunkOf(randomBytes(2000));
    await earlier.tier.put(keyOf('kept'), kept);
    await earlier.tier.close();
    const base = await tempDir();
    await writeFile(join(base, 'file'), 'x');
    const s = await setup({ dir: join(base, 'file', 'chunks'), retryAfterMs: 30_000 });
    expect(s.tier.degraded).toBe(true);
    for (let i = 0; i < 5; i++) await s.tier.put(keyOf('u', i), chunkOf(randomBytes(1000)));
    s.clock.t += 31_000;
    await s.tier.put(keyOf('u', 9), chunkOf(randomBytes(1000))); // the retry fails too
    expect(s.tier.stats().entries).toBe(0);
    expect(await gauge(s.metrics.tierDegraded)).toBe(1);
    expect(s.log.count(/degraded/)).toBe(1);

    // The device comes back, holding chunks from before (a late mount).
    await rm(join(base, 'file'));
    await mkdir(join(base, 'file'));
    await rename(earlier.dir, join(base, 'file', 'chunks'));
    await s.tier.put(keyOf('u', 10), chunkOf(randomBytes(1000))); // still inside the backoff: not tried
    expect(s.tier.has(keyOf('u', 10))).toBe(false);
    s.clock.t += 31_000;
    await s.tier.put(keyOf('u', 11), chunkOf(randomBytes(1000)));
    expect(s.tier.has(keyOf('u', 11))).toBe(true);
    expect((await s.tier.get(keyOf('kept')))?.data.equals(kept.data)).toBe(true); // indexed by the late scan
    expect(s.tier.stats()).toMatchObject({ entries: 2, usedBytes: 3000 });
    expect(await gauge(s.metrics.tierDegraded)).toBe(0);
    expect(s.tier.degraded).toBe(false);
  });

  it.skipIf(!MOUNT_OK)(
    'a device smaller than maxBytes (2 MiB tmpfs): the budget is lowered at open',
    async () => {
      const dir = await tmpfs('2m');
      const s = await setup({ dir, maxBytes: 64 * 1024 * KiB });
      const cap = s.tier.stats().capacityBytes;
      expect(cap).toBeLessThan(2 * 1024 * KiB);
      expect(await gauge(s.metrics.tierCapacityBytes)).toBe(cap);
      expect(s.log.count(/budget lowered/)).toBe(1);
      for (let i = 0; i < 20; i++) await s.tier.put(keyOf('s', i), chunkOf(randomBytes(256 * KiB)));
      expect(s.tier.degraded).toBe(false); // turned over its LRU inside the device instead
      expect(s.tier.has(keyOf('s', 19))).toBe(true);
      expect(s.tier.stats().usedBytes).toBeLessThanOrEqual(cap);
    },
  );

  it.skipIf(!MOUNT_OK)(
    'a full device (another writer fills the tmpfs, ENOSPC): degrades once, cleans temp files, serves gets, recovers',
    async () => {
      const dir = await tmpfs('2m');
      const s = await setup({ dir, maxBytes: 64 * 1024 * KiB, retryAfterMs: 1000 });
      const written: [string, ReturnType<typeof chunkOf>][] = [];
      for (let i = 0; i < 3; i++) {
        const c = chunkOf(randomBytes(256 * KiB));
        await s.tier.put(keyOf('f', i), c);
        written.push([keyOf('f', i), c]);
      }
      const { bavail, bsize } = await statfs(dir);
      await writeFile(join(dir, 'other-tenant'), Buffer.alloc(bavail * bsize)); // the device is now full

      for (let i = 3; i < 8; i++) await s.tier.put(keyOf('f', i), chunkOf(randomBytes(256 * KiB))); // never throws
      expect(s.tier.degraded).toBe(true);
      // The budget shrank to what the device holds (5% under): the oldest chunk made room.
      expect(s.tier.stats().capacityBytes).toBeLessThan(3 * 256 * KiB);
      expect(s.tier.stats().entries).toBe(2);
      expect(s.tier.has(keyOf('f', 0))).toBe(false);
      expect(await gauge(s.metrics.tierDegraded)).toBe(1);
      expect(s.log.count(/degraded/)).toBe(1);
      expect(s.log.warns.find((w) => /degraded/.test(w.msg))?.obj).toMatchObject({ code: 'ENOSPC' });
      expect(await total(s.metrics, s.metrics.tierErrors, { op: 'write' })).toBe(1); // later puts wait out the backoff
      expect((await allFiles(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      for (const [k, c] of written.slice(1)) expect((await s.tier.get(k))?.data.equals(c.data)).toBe(true);

      // After the backoff the tier writes again, inside the space it really has: the oldest chunks make room.
      s.clock.t += 1001;
      const c = chunkOf(randomBytes(256 * KiB));
      await s.tier.put(keyOf('after'), c);
      expect((await s.tier.get(keyOf('after')))?.data.equals(c.data)).toBe(true);
      expect(s.tier.has(keyOf('f', 1))).toBe(false);
      expect(await gauge(s.metrics.tierDegraded)).toBe(0);
      expect(s.log.infos.some((i) => /no longer degraded/.test(i.msg))).toBe(true);
    },
  );

  it.skipIf(!MOUNT_OK)(
    'a read-only device (tmpfs remounted ro, EROFS): gets keep working, writes resume after rw',
    async () => {
      const dir = await tmpfs('4m');
      const s = await setup({ dir, retryAfterMs: 1000 });
      const c = chunkOf(randomBytes(64 * KiB));
      await s.tier.put(keyOf('r'), c);
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      for (let i = 0; i < 3; i++) await s.tier.put(keyOf('ro', i), chunkOf(randomBytes(1000)));
      expect(s.tier.degraded).toBe(true);
      expect(s.log.warns.find((w) => /degraded/.test(w.msg))?.obj).toMatchObject({ code: 'EROFS' });
      expect((await s.tier.get(keyOf('r')))?.data.equals(c.data)).toBe(true);
      execFileSync('mount', ['-o', 'remount,rw', dir]);
      s.clock.t += 1001;
      await s.tier.put(keyOf('rw'), c);
      expect(s.tier.has(keyOf('rw'))).toBe(true);
      expect(s.log.count(/degraded/)).toBe(1);
    },
  );
});

describe('NvmeTier: kill -9 while writing', () => {
  const fixture = fileURLToPath(new URL('./fixtures/nvme-writer.ts', import.meta.url));

  async function runAndKill(dir: string, acksBeforeKill: number): Promise<number[]> {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)), // where `tsx` resolves
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked: number[] = [];
    let buf = '';
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      buf += s;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      // Only acks read before the kill count: they were renamed before it.
      if (acked.length >= acksBeforeKill) return;
      for (const l of lines) acked.push(Number(l.slice(3)));
      if (acked.length >= acksBeforeKill) child.kill('SIGKILL');
    });
    await exited;
    expect(child.signalCode).toBe('SIGKILL');
    return acked;
  }

  it('leaves only whole chunks: every acked chunk is served byte-exact, nothing torn, temp files removed', async () => {
    const dir = await tempDir();
    for (const acks of [15, 40]) {
      const acked = await runAndKill(dir, acks);
      const s = await setup({ dir, maxBytes: 256 * 1024 * KiB });
      expect((await allFiles(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      const top = Math.max(...acked) + 64;
      let found = 0;
      for (let i = 0; i <= top; i++) {
        const got = await s.tier.get(writerKey(i));
        if (acked.includes(i)) expect(got).toBeDefined();
        if (!got) continue;
        found++;
        expect(got.data.equals(chunkBytes(i))).toBe(true);
      }
      expect(s.tier.stats().entries).toBe(found);
      expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(0);
      await s.tier.close();
    }
  });
});
