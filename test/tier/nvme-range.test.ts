/**
 * The NVMe tier's block-wise reads (format v2): a range reads only the 4 KiB
 * blocks it covers, verifies each, and a damaged block fails exactly the
 * reads that would serve it. The native counters (bytes read from files,
 * bytes returned) are what /metrics exports.
 */
import { randomBytes } from 'node:crypto';
import { open, truncate } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { dataOffsetFor } from '../../src/tier/chunk-file.js';
import { chunkOf, keyOf } from './contract.js';
import { allFiles, KiB, pathOf, setup, total } from './nvme-harness.js';

const MiB = 1024 * KiB;

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0]! ^= 0x40;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

async function metric(s: Awaited<ReturnType<typeof setup>>, name: string): Promise<number> {
  const text = await s.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('NvmeTier: range reads by block', () => {
  it('returns exactly the bytes asked for, at every offset and length, across block boundaries', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    const c = chunkOf(randomBytes(MiB + 1234)); // a short last block
    await s.tier.put(keyOf('r'), c);
    const cases = [
      [0, 1],
      [0, 4096],
      [4095, 2],
      [4096, 4096],
      [5000, 65_536],
      [c.data.length - 1, 1],
      [c.data.length - 5000, 5000],
      [0, c.data.length],
      [123_456, 0],
    ];
    for (let i = 0; i < 40; i++) {
      const off = Math.floor(Math.random() * c.data.length);
      cases.push([off, Math.floor(Math.random() * (c.data.length - off))]);
    }
    for (const [off, len] of cases) {
      const got = await s.tier.readRange(keyOf('r'), off!, len!);
      expect(got?.equals(c.data.subarray(off!, off! + len!)), `${off}+${len}`).toBe(true);
    }
    await expect(s.tier.readRange(keyOf('r'), c.data.length - 1, 2)).rejects.toThrow(/bytes/);
    expect(await s.tier.readRange(keyOf('none'), 0, 1)).toBeUndefined();
  });

  it('reads only the covered blocks: 64 KiB aligned reads 64 KiB, unaligned one block more, header once', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    const c = chunkOf(randomBytes(4 * MiB));
    await s.tier.put(keyOf('amp'), c);
    const read0 = await metric(s, 'weightcache_nvme_disk_read_bytes_total');
    await s.tier.readRange(keyOf('amp'), 0, 4096); // opens the file: header (8 KiB) + one block
    const afterOpen = await metric(s, 'weightcache_nvme_disk_read_bytes_total');
    expect(afterOpen - read0).toBe(dataOffsetFor(keyOf('amp'), 4 * MiB) + 4096);
    for (let i = 0; i < 20; i++) await s.tier.readRange(keyOf('amp'), 65_536 * (i + 3), 65_536);
    const aligned = await metric(s, 'weightcache_nvme_disk_read_bytes_total');
    expect(aligned - afterOpen).toBe(20 * 65_536); // ratio 1.0: nothing but the bytes served
    for (let i = 0; i < 20; i++) await s.tier.readRange(keyOf('amp'), 65_536 * (i + 3) + 100, 65_536);
    const unaligned = await metric(s, 'weightcache_nvme_disk_read_bytes_total');
    expect(unaligned - aligned).toBe(20 * (65_536 + 4096)); // one partial block at each end
    expect(await metric(s, 'weightcache_nvme_header_reads_total')).toBe(1);
    expect(await metric(s, 'weightcache_nvme_returned_bytes_total')).toBe(4096 + 40 * 65_536);
    expect(await metric(s, 'weightcache_nvme_open_files')).toBe(1);
  });

  it('a damaged block fails the reads that cover it (file dropped, counted) and never the bytes', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    const c = chunkOf(randomBytes(MiB));
    await s.tier.put(keyOf('bad'), c);
    const path = pathOf(s.dir, keyOf('bad'));
    await flipByte(path, dataOffsetFor(keyOf('bad'), MiB) + 10 * 4096 + 17); // block 10
    // Blocks 0..9 still verify: served (their CRCs prove them).
    expect((await s.tier.readRange(keyOf('bad'), 0, 10 * 4096))?.equals(c.data.subarray(0, 40_960))).toBe(
      true,
    );
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(0);
    // A range touching block 10, even by one byte: a miss, the file dropped, a checksum failure.
    expect(await s.tier.readRange(keyOf('bad'), 10 * 4096 + 4095, 1)).toBeUndefined();
    expect(s.tier.has(keyOf('bad'))).toBe(false);
    expect(await allFiles(s.dir)).toEqual([]);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
    expect(await metric(s, 'weightcache_nvme_reads_total{result="corrupt"}')).toBe(1);
    expect(s.log.count(/corrupt chunk dropped/)).toBe(1);
    expect(s.log.warns.find((w) => /corrupt/.test(w.msg))?.obj).toMatchObject({
      reason: 'block 10 fails its crc32c',
    });
  });

  it('a whole-chunk get verifies every block: one flipped byte anywhere is a miss', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    for (const at of [0, 4095, 4096, 300_000, MiB - 1]) {
      const key = keyOf(`g${at}`);
      await s.tier.put(key, chunkOf(randomBytes(MiB)));
      await flipByte(pathOf(s.dir, key), dataOffsetFor(key, MiB) + at);
      expect(await s.tier.get(key), `byte ${at}`).toBeUndefined();
    }
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(5);
  });

  it('a truncated file is refused before a byte of it is served, wherever the cut is', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    for (const [i, cut] of [100, 5000, 8192 + 4096 * 3 + 5].entries()) {
      const key = keyOf('cut', i);
      const c = chunkOf(randomBytes(64 * KiB));
      await s.tier.put(key, c);
      await truncate(pathOf(s.dir, key), cut);
      expect(await s.tier.readRange(key, 0, 100)).toBeUndefined();
    }
    // Cut after it was opened (its header kept): the short read of the missing blocks is caught.
    const key = keyOf('cut-late');
    await s.tier.put(key, chunkOf(randomBytes(64 * KiB)));
    expect(await s.tier.readRange(key, 0, 100)).toBeDefined();
    await truncate(pathOf(s.dir, key), dataOffsetFor(key, 64 * KiB) + 10_000);
    expect(await s.tier.readRange(key, 0, 100)).toBeDefined(); // blocks 0..1 are whole and verify
    expect(await s.tier.readRange(key, 9000, 2000)).toBeUndefined(); // block 2 is cut
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(4);
    expect(await allFiles(s.dir)).toEqual([]);
  });

  it('a file replaced on disk after it was opened is read from the new file, never the old one', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    const a = chunkOf(randomBytes(64 * KiB));
    const b = chunkOf(randomBytes(64 * KiB));
    await s.tier.put(keyOf('x'), a);
    expect((await s.tier.readRange(keyOf('x'), 0, 100))?.equals(a.data.subarray(0, 100))).toBe(true);
    await s.tier.put(keyOf('x'), b); // an overwrite (tests only: a name's bytes never change)
    expect((await s.tier.readRange(keyOf('x'), 0, 100))?.equals(b.data.subarray(0, 100))).toBe(true);
    expect((await s.tier.get(keyOf('x')))?.data.equals(b.data)).toBe(true);
  });

  it('deleting or evicting a chunk closes its open file, so its space is freed', async () => {
    const s = await setup({ maxBytes: 3 * MiB });
    for (let i = 0; i < 3; i++) {
      await s.tier.put(keyOf('e', i), chunkOf(randomBytes(MiB)));
      await s.tier.readRange(keyOf('e', i), 0, 10);
    }
    expect(await metric(s, 'weightcache_nvme_open_files')).toBe(3);
    await s.tier.put(keyOf('e', 3), chunkOf(randomBytes(MiB))); // evicts e0
    await s.tier.delete(keyOf('e', 1));
    expect(await metric(s, 'weightcache_nvme_open_files')).toBe(1);
  });

  it('many concurrent reads of one cold chunk open it and read its header once', async () => {
    const s = await setup({ maxBytes: 64 * MiB });
    const c = chunkOf(randomBytes(MiB));
    await s.tier.put(keyOf('burst'), c);
    const reads = await Promise.all(
      Array.from({ length: 64 }, (_, i) => s.tier.readRange(keyOf('burst'), i * 8192, 8192)),
    );
    for (const [i, r] of reads.entries())
      expect(r?.equals(c.data.subarray(i * 8192, (i + 1) * 8192))).toBe(true);
    expect(await metric(s, 'weightcache_nvme_header_reads_total')).toBe(1);
  });
});

describe('NvmeTier: the I/O backends', () => {
  for (const io of ['auto', 'threads'] as const) {
    it(`${io}: serves gets and ranges byte-exact, with O_DIRECT on and off`, async () => {
      for (const directIo of [true, false]) {
        const s = await setup({ maxBytes: 64 * MiB, io, directIo });
        const chunks = Array.from({ length: 6 }, (_, i) => chunkOf(randomBytes(300 * KiB + i * 777)));
        for (const [i, c] of chunks.entries()) await s.tier.put(keyOf(io, i), c);
        const gets = await Promise.all(chunks.map((_, i) => s.tier.get(keyOf(io, i))));
        for (const [i, g] of gets.entries()) expect(g?.data.equals(chunks[i]!.data)).toBe(true);
        const part = await s.tier.readRange(keyOf(io, 2), 70_000, 100_000);
        expect(part?.equals(chunks[2]!.data.subarray(70_000, 170_000))).toBe(true);
        const line = (await s.metrics.registry.metrics())
          .split('\n')
          .find((l) => l.startsWith('weightcache_nvme_io_info'));
        expect(line).toContain(`backend="${io === 'threads' ? 'threads' : 'io_uring'}"`);
        expect(line).toContain(`direct="${directIo}"`);
        await s.tier.close();
      }
    });
  }

  it('logs how it reads, once', async () => {
    const s = await setup({ io: 'threads', ioThreads: 2 });
    expect(s.log.infos.filter((i) => /thread pool/.test(i.msg))).toHaveLength(1);
    const u = await setup();
    expect(u.log.infos.filter((i) => /reads through io_uring/.test(i.msg))).toHaveLength(1);
  });
});
