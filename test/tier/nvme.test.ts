import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { chunkFileName, dataOffsetFor, encodeChunkHeader } from '../../src/tier/chunk-file.js';
import { NvmeTier } from '../../src/tier/nvme.js';
import { chunkOf, keyOf, tierContract } from './contract.js';
import { allFiles, gauge, KiB, pathOf, setup, tempDir, total } from './nvme-harness.js';

tierContract('nvme', async () => {
  const dir = await tempDir();
  const opts = { dir, maxBytes: 256 * KiB };
  return {
    tier: await NvmeTier.open(opts),
    reopen: () => NvmeTier.open(opts),
    cleanup: async () => {}, // tempDir() is removed after each test
  };
});

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
    const at = dataOffsetFor(key, 50 * KiB) + 12_345;
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
    await truncate(pathOf(s.dir, k1), dataOffsetFor(k1, 40 * KiB) + 20 * KiB);
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

    const n = chunkFileName(c)!;
    // c's bytes under a chunk file name in the right subdir that is not c's
    await rename(pathOf(s.dir, c), join(s.dir, n.subdir, `${'f'.repeat(32)}-${n.index}`));
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
    const torn = chunkFileName(keyOf('torn'))!;
    const sub = join(s.dir, torn.subdir);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `${torn.name}.tmp-4242-0`), randomBytes(5000)); // a write cut short by a crash
    await writeFile(join(s.dir, 'README'), 'not a chunk');
    await writeFile(join(sub, 'notes.txt'), 'not a chunk');
    await writeFile(join(sub, torn.name), Buffer.alloc(0)); // empty file under a chunk name
    const id = torn.name.slice(0, 31); // one hex digit short: not a chunk file name
    await writeFile(join(sub, id), randomBytes(100));
    const fake = chunkFileName(keyOf('fake'))!;
    await mkdir(join(s.dir, fake.subdir), { recursive: true });
    await writeFile(join(s.dir, fake.subdir, fake.name), randomBytes(9000)); // garbage under a chunk name
    await mkdir(join(s.dir, 'zz', 'deeper'), { recursive: true });

    const again = await s.reopen();
    expect(again.stats().entries).toBe(1);
    expect((await again.get(good))?.data.equals(c.data)).toBe(true);
    const left = (await allFiles(s.dir)).map((p) => p.slice(s.dir.length + 1)).sort();
    expect(left).toEqual(
      [
        `${torn.subdir}/${id}`,
        `${torn.subdir}/notes.txt`,
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
    expect(() => encodeChunkHeader(keyOf('k'.repeat(4097)), Buffer.alloc(1))).toThrow(/4096/);
  });

  it('rejects bad options at construction, naming them', () => {
    expect(() => new NvmeTier({ dir: '', maxBytes: 1 })).toThrow(/dir/);
    expect(() => new NvmeTier({ dir: '/x', maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => new NvmeTier({ dir: '/x', maxBytes: 1, maxPendingWrites: 0 })).toThrow(/maxPendingWrites/);
  });
});
