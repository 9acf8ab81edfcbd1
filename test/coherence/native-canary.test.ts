/**
 * The stale-read canary (weightcache_stale_reads_total, docs/coherence.md)
 * sees answers made on the native fast paths: a lone node with the native
 * RESP door answers GETs of a bound name on its I/O threads, never through
 * JavaScript's resolutions, which is where the check ran before. The test
 * breaks coherence on purpose the way a bug would — after an invalidation
 * retired version 1 and was answered, the old binding is installed again
 * (as an unbind that did not happen, or a late grant installed after it) —
 * shows the native door then really serves version 1's bytes, and that the
 * canary counts it. Without the fault, hits of the new version count nothing.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningNode, startNode } from '../../src/node/node.js';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { sumMetric } from '../harness/node-process.js';
import { until } from '../harness/until.js';

const v1 = randomBytes(5000);
const v2 = randomBytes(5000);
let root: string;
let node: RunningNode;
let redis: Redis;

beforeAll(async () => {
  root = seedOrigin({ 'w.bin': v1 });
  const config = configSchema.parse({
    http: { listen: '127.0.0.1:0' },
    resp: { listen: '127.0.0.1:0', door: 'native', threads: 1 },
    origin: { type: 'fs', fs: { root } },
    cache: { chunkSize: '64KiB', nvme: null, dram: { maxBytes: '64MiB' } },
    log: { level: 'silent' },
  });
  node = await startNode(config, createLogger('silent'));
  redis = new Redis({ port: node.resp!.address.port, host: '127.0.0.1' });
});

afterAll(async () => {
  redis?.disconnect();
  await node?.close();
});

const stale = async () => sumMetric(await node.metrics.registry.metrics(), 'weightcache_stale_reads_total');
const hits = () => node.resp!.native!.stats().fastHits ?? 0;

describe('the stale-read canary on the native fast path', () => {
  it('counts a native answer of a version an answered invalidation retired, and nothing otherwise', async () => {
    const name = { container: 'models', key: 'w.bin' };
    expect(node.fastPath).not.toBeNull();
    // Version 1 bound and in DRAM (JavaScript), then answered on the I/O thread.
    expect((await redis.getBuffer('models/w.bin'))!.equals(v1)).toBe(true);
    const old = await node.coherence.resolver.resolve(name);
    const before = hits();
    expect((await redis.getBuffer('models/w.bin'))!.equals(v1)).toBe(true);
    expect(hits()).toBe(before + 1);

    // Version 2 published and invalidated: the binding goes, the next reads get version 2.
    replaceAtOrigin(root, 'w.bin', v2);
    const answered = await node.coherence.invalidate(name, 'http');
    expect(answered.version?.etag).not.toBe(old.etag);
    expect((await redis.getBuffer('models/w.bin'))!.equals(v2)).toBe(true); // JavaScript: fill, bind
    const fresh = hits();
    for (let i = 0; i < 5; i++) expect((await redis.getBuffer('models/w.bin'))!.equals(v2)).toBe(true);
    expect(hits()).toBe(fresh + 5); // on the I/O thread, from version 2's binding
    // The check runs on what the threads reported (every 250 ms; at once here): nothing stale.
    node.fastPath!.checkServed((s) => node.coherence.checkServed(s));
    await new Promise((r) => setTimeout(r, 300));
    expect(await stale()).toBe(0);

    // The fault: version 1's binding back after the invalidation was answered (its chunks are
    // still in DRAM). The native door now serves version 1 — a stale read only the threads see.
    await new Promise((r) => setTimeout(r, 110)); // past the per-binding report period
    node.fastPath!.bind(old, 60_000);
    const faulty = hits();
    expect((await redis.getBuffer('models/w.bin'))!.equals(v1)).toBe(true);
    expect(hits()).toBe(faulty + 1);
    // The canary counts it (the node's own periodic check, no help from the test).
    await until(async () => (await stale()) >= 1, { what: 'the stale read counted', timeoutMs: 5_000 });
    expect(await stale()).toBe(1);
  });
});
