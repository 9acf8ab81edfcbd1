/**
 * TieredStore: the native DRAM store in front of a real NVMe tier (a temp
 * directory). Fills land in DRAM without a copy and are written through to
 * NVMe; NVMe hits are verified and kept in DRAM; what DRAM evicts and NVMe
 * lacks is demoted; locate() says where the bytes are.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { chunkAddress } from '../../src/store/address.js';
import { TieredStore } from '../../src/store/tiered.js';
import { NvmeTier } from '../../src/tier/nvme.js';
import { until } from '../harness/until.js';

const KiB = 1024;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(dramBytes: number, dir?: string) {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'wc-store-')));
  if (!dir) dirs.push(d);
  const metrics = new Metrics();
  const nvme = await NvmeTier.open({ dir: d, maxBytes: 16 << 20 });
  const store = new TieredStore({ dramBytes, nvme, metrics, log: createLogger('silent'), correlatedMs: 0 });
  return { dir: d, nvme, store, metrics };
}

const info = { container: 'models', key: 'm/shard.bin', etag: 'v1', size: 64 << 20 };
const at = (i: number) => chunkAddress('fs:/origin', info, 256 * KiB, i);

function fill(store: TieredStore, i: number, bytes = 64 * KiB) {
  const data = store.allocate(bytes);
  data.set(randomBytes(bytes));
  return store.put(at(i), { data, crc32c: crc32c(data) });
}

/**
 * NVMe writes are not awaited by put(): wait until the tier holds `n` chunks (as long as the test
 * may take: a chunk file's write and rename can take seconds on a loaded machine, under ASan).
 */
async function written(nvme: NvmeTier, n: number) {
  await until(() => nvme.stats().entries >= n, { what: `${n} chunks written to NVMe` });
  expect(nvme.stats().entries).toBe(n);
}

describe('TieredStore', () => {
  it('keeps a fill in DRAM without a copy and writes it through to NVMe', async () => {
    const { store, nvme } = await open(1 << 20);
    const data = store.allocate(64 * KiB);
    data.set(randomBytes(64 * KiB));
    const stored = store.put(at(0), { data, crc32c: crc32c(data) });
    expect(stored.data).toBe(data);
    expect(store.where(at(0))).toBe('dram');
    expect(store.peek(at(0))?.data).toBe(data);
    const loc = store.locate(at(0));
    expect(loc?.tier).toBe('dram');
    await written(nvme, 1);
    expect(nvme.has(at(0).key)).toBe(true);
    expect((await store.readRange(at(0), 100, 50))?.equals(data.subarray(100, 150))).toBe(true);
    await store.close();
  });

  it('after a restart, serves from NVMe (verified), then from DRAM; locate gives the file for sendfile', async () => {
    const first = await open(1 << 20);
    const put = fill(first.store, 3);
    const bytes = Buffer.from(put.data);
    await written(first.nvme, 1);
    await first.store.close();

    const { store } = await open(1 << 20, first.dir);
    expect(store.where(at(3))).toBe('nvme');
    const loc = store.locate(at(3));
    expect(loc).toMatchObject({ tier: 'nvme', length: 64 * KiB, crc32c: crc32c(bytes) });
    const got = await store.get(at(3));
    expect(got?.tier).toBe('nvme');
    expect(got?.chunk.data.equals(bytes)).toBe(true);
    expect(store.where(at(3))).toBe('dram'); // promoted
    expect((await store.get(at(3)))?.tier).toBe('dram');
    expect(await store.get(at(4))).toBeUndefined();
    await store.close();
  });

  it('demotes a chunk DRAM evicts to NVMe when NVMe no longer holds it', async () => {
    const { store, nvme } = await open(256 * KiB);
    const first = Buffer.from(fill(store, 0).data);
    await written(nvme, 1);
    await nvme.delete(at(0).key); // say NVMe evicted it
    expect(nvme.has(at(0).key)).toBe(false);
    for (let i = 1; i <= 4; i++) fill(store, i); // DRAM holds 4: chunk 0 goes
    await written(nvme, 5); // 1..4 written through, 0 demoted
    expect(store.where(at(0))).toBe('nvme');
    const back = await store.get(at(0));
    expect(back?.tier).toBe('nvme');
    expect(back?.chunk.data.equals(first)).toBe(true);
    await store.close();
  });

  it('writes through every fill of a burst that DRAM cannot hold, each chunk once', async () => {
    // 1 MiB of DRAM and 200 fills of 64 KiB: DRAM evicts almost every fill at
    // once and hands it to demotion while its write-through is still queued.
    // Counted by entries, the queue (64) overflowed, half of it taken by
    // second copies of the same chunks, and NVMe never held them all.
    const { store, nvme, metrics } = await open(1 << 20);
    for (let i = 0; i < 200; i++) fill(store, i);
    await written(nvme, 200);
    const overload = await metrics.tierErrors.get();
    expect(overload.values.filter((v) => v.labels.op === 'overload')).toEqual([]);
    for (let i = 0; i < 200; i += 37) expect(store.where(at(i))).not.toBeUndefined();
    await store.close();
  });
});
