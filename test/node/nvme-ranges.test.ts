/**
 * The read path serves part of a chunk that only NVMe holds by reading just
 * the 4 KiB blocks it covers (NvmeTier.readRange), not the whole chunk: a
 * node whose DRAM cannot hold the object answers 64 KiB ranges with about
 * 64 KiB read from disk each, byte-exact, and keeps DRAM for whole chunks.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { get } from '../harness/http-get.js';
import { startNodeProcess } from '../harness/node-process.js';
import { until } from '../harness/until.js';

const MiB = 1024 * 1024;

describe('ranges of chunks on NVMe', () => {
  it('read only the blocks they cover: disk bytes / served bytes ≤ 1.1, every byte exact', async () => {
    const bytes = randomBytes(8 * MiB);
    const config = { cache: { chunkSize: '1MiB', dram: { maxBytes: '1MiB' } } };
    let node = await startNodeProcess({ config });
    const p = join(node.dir, 'origin', 'models', 'r.bin');
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, bytes);
    const whole = await get(node.url, '/v1/objects/models/r.bin');
    expect(whole.body.equals(bytes)).toBe(true);
    // NVMe writes are asynchronous to the response.
    await until(
      async () => JSON.parse((await get(node.url, '/v1/status')).body.toString()).tiers.nvme.entries >= 8,
      {
        what: 'the NVMe tier holding the 8 chunks',
        timeoutMs: 5000,
        stepMs: 25,
      },
    );
    expect(await node.stop()).toBe(0);
    node = await startNodeProcess({ config, dir: node.dir }); // DRAM empty: everything is on NVMe
    try {
      let served = 0;
      for (let i = 0; i < 40; i++) {
        const start = (i * 197_123) % (bytes.length - 65_536); // unaligned, spread over all chunks
        const res = await get(node.url, '/v1/objects/models/r.bin', {
          Range: `bytes=${start}-${start + 65_535}`,
        });
        expect(res.status).toBe(206);
        expect(res.headers['x-cache-source']).toBe('nvme');
        expect(res.body.equals(bytes.subarray(start, start + 65_536))).toBe(true);
        served += 65_536;
      }
      // Read by the tier's reader (JavaScript door) or by the native door's I/O threads (its fast path).
      const disk =
        (await node.metric('weightcache_nvme_disk_read_bytes_total')) +
        (await node.metric('weightcache_nvme_native_read_bytes_total'));
      const headers = (await node.metric('weightcache_nvme_header_reads_total')) * 8192 + 8 * 4096;
      expect(disk - headers).toBeLessThanOrEqual(served * 1.1);
      expect(disk).toBeGreaterThanOrEqual(served);
      expect(await node.metric('weightcache_served_bytes_total', { source: 'nvme' })).toBe(served);
      expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(0);
    } finally {
      await node.kill();
    }
  });
});
