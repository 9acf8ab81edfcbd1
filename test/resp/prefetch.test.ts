/**
 * WC.PREFETCH runs the same prefetch jobs as HTTP's /v1/prefetch
 * (src/prefetch/): the same limits (here the capacity check RESP once
 * lacked), counts by where each chunk was found, and the answer once done.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    dramBytes: 16 * CHUNK,
    seed: { 'p/small/a.bin': 3 * CHUNK, 'p/small/b.json': 352, 'p/big/x.bin': 20 * CHUNK },
  });
});
afterAll(() => h?.close());

function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, protocol: 2 });
  r.on('error', () => {});
  return r;
}

const field = (a: Array<string | number>, k: string) => a[a.indexOf(k) + 1];

describe('WC.PREFETCH', () => {
  it('warms a prefix and says where each chunk was found; a second run finds them in DRAM', async () => {
    const r = client(h.port);
    await r.connect();
    const first = (await r.call('WC.PREFETCH', 'p/small/')) as Array<string | number>;
    expect(field(first, 'objects')).toBe(2);
    expect(field(first, 'chunks')).toBe(4);
    expect(field(first, 'bytes')).toBe(3 * CHUNK + 352);
    expect(field(first, 'from-origin')).toBe(4);
    const second = (await r.call('WC.PREFETCH', 'p/small/')) as Array<string | number>;
    expect(field(second, 'from-dram')).toBe(4);
    expect(field(second, 'from-origin')).toBe(0);
    r.disconnect();
  });

  it('refuses a prefix larger than the cache, as /v1/prefetch does', async () => {
    const r = client(h.port);
    await r.connect();
    await expect(r.call('WC.PREFETCH', 'p/big/')).rejects.toThrow(/^ERR .*it would evict itself/);
    await expect(r.call('WC.PREFETCH', 'p/none/')).rejects.toThrow(/^ERR no files under p\/none\//);
    await expect(r.call('WC.PREFETCH', 'nocontainer')).rejects.toThrow(/container\/prefix/);
    r.disconnect();
  });
});
