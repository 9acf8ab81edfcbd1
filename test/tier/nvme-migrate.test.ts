/**
 * Version 1 chunk files (one CRC32C per chunk, named by the SHA-256 of the
 * key) left by an older weightcache: indexed at start without reading their
 * data, served on first use after their one CRC is checked, and rewritten as
 * version 2 then, so an upgrade never re-downloads what the cache held.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { decodeChunkHeader } from '../../src/tier/chunk-file.js';
import { until } from '../harness/until.js';
import { chunkOf, keyOf } from './contract.js';
import { writeV1ChunkFile } from './fixtures/chunk-file-v1.js';
import { allFiles, KiB, pathOf, setup, tempDir, total } from './nvme-harness.js';

/** The rewrite to version 2 happens after the read is answered: wait for it (5 s at most). */
const REWRITTEN = { what: 'the version 1 file rewritten as version 2', timeoutMs: 5000, stepMs: 10 };

describe('NvmeTier: version 1 files', () => {
  it('are indexed at start, served byte-exact on first use, then rewritten as version 2', async () => {
    const dir = await tempDir();
    const chunks = Array.from({ length: 5 }, (_, i) => chunkOf(randomBytes(100 * KiB + i)));
    const v1 = await Promise.all(chunks.map((c, i) => writeV1ChunkFile(dir, keyOf('old', i), c.data)));
    const s = await setup({ dir });
    expect(s.tier.stats()).toMatchObject({
      entries: 5,
      usedBytes: chunks.reduce((n, c) => n + c.data.length, 0),
    });
    expect(s.log.infos.find((l) => /index rebuilt/.test(l.msg))?.obj).toMatchObject({ version1Files: 5 });

    const got = await s.tier.get(keyOf('old', 0));
    expect(got?.data.equals(chunks[0]!.data)).toBe(true);
    expect(got?.crc32c).toBe(chunks[0]!.crc32c);
    const part = await s.tier.readRange(keyOf('old', 1), 1000, 50_000);
    expect(part?.equals(chunks[1]!.data.subarray(1000, 51_000))).toBe(true);
    // Rewritten in the background: v2 file in place, v1 file gone.
    await until(() => existsSync(pathOf(dir, keyOf('old', 1))) && !existsSync(v1[1]!), REWRITTEN);
    await until(() => existsSync(pathOf(dir, keyOf('old', 0))) && !existsSync(v1[0]!), REWRITTEN);
    const fh = await open(pathOf(dir, keyOf('old', 0)), 'r');
    const head = Buffer.alloc(8192);
    await fh.read(head, 0, 8192, 0);
    await fh.close();
    expect(decodeChunkHeader(head)).toMatchObject({ ok: true, header: { key: keyOf('old', 0) } });
    expect(s.log.infos.filter((l) => /rewriting version 1/.test(l.msg))).toHaveLength(1);
    expect(s.tier.stats().entries).toBe(5);

    // A restart finds both kinds; nothing is lost or read twice from anywhere else.
    await s.tier.close();
    const again = await s.reopen();
    expect(again.stats().entries).toBe(5);
    for (const [i, c] of chunks.entries())
      expect((await again.get(keyOf('old', i)))?.data.equals(c.data)).toBe(true);
    await until(() => v1.every((p) => !existsSync(p)), REWRITTEN);
    expect((await allFiles(dir)).length).toBe(5);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(0);
  });

  it('a damaged version 1 file is dropped on first use and counted, never served', async () => {
    const dir = await tempDir();
    const c = chunkOf(randomBytes(20 * KiB));
    const path = await writeV1ChunkFile(dir, keyOf('rot'), c.data);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from([c.data[777]! ^ 0x55]), 0, 1, 4096 + 777);
    await fh.close();
    const s = await setup({ dir });
    expect(s.tier.has(keyOf('rot'))).toBe(true); // the header is fine: data is checked on use
    expect(await s.tier.get(keyOf('rot'))).toBeUndefined();
    expect(s.tier.has(keyOf('rot'))).toBe(false);
    expect(existsSync(path)).toBe(false);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
  });

  it('a version 1 file with a damaged header is dropped by the start-up scan', async () => {
    const dir = await tempDir();
    const path = await writeV1ChunkFile(dir, keyOf('h'), randomBytes(5000));
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from([0x7f]), 0, 1, 45); // inside the key
    await fh.close();
    const s = await setup({ dir });
    expect(s.tier.stats().entries).toBe(0);
    expect(existsSync(path)).toBe(false);
    expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(1);
  });
});
