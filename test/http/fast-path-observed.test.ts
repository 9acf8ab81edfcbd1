/**
 * Fast-path answers are observable as JavaScript's are (docs/native-http-door.md,
 * "What a fast-path answer leaves behind"): a real node process with the native
 * door answers DRAM hits on its I/O threads, and each one is in
 * weightcache_request_duration_seconds{protocol="http"} (timed on the thread,
 * in the same buckets) and, at debug level, in the access log with method,
 * target, status, bytes, source and duration.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seedOrigin } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess, sumMetric } from '../harness/node-process.js';
import { until } from '../harness/until.js';

const running: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

const FILE = 300_000;

interface AccessEntry {
  msg: string;
  method: string;
  target: string;
  status: number;
  bytes: number;
  source?: string;
  durationMs: number;
  client: string;
}

function accessLines(node: NodeProcess): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const line of node.logs) {
    if (!line.includes('"msg":"request"')) continue;
    out.push(JSON.parse(line) as AccessEntry);
  }
  return out;
}

describe('fast-path answers in the metrics and the access log', () => {
  it('times every fast-path hit in request_duration_seconds and logs it at debug level', async () => {
    const root = seedOrigin({ 'f.bin': Buffer.alloc(FILE, 7) });
    const node = await startNodeProcess({
      config: {
        http: { door: 'native', threads: 2 },
        origin: { type: 'fs', fs: { root } },
        log: { level: 'debug' },
      },
    });
    running.push(node);
    const path = '/v1/objects/models/f.bin';
    expect((await get(node.url, path)).status).toBe(200); // resolves, fills, binds (JavaScript)
    const hitsBefore = await node.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
    const N = 30;
    for (let i = 0; i < N; i++) {
      const r = await get(node.url, path, i % 3 === 0 ? { Range: 'bytes=100-1099' } : {});
      expect(r.status).toBe(i % 3 === 0 ? 206 : 200);
    }
    const head = await fetch(`${node.url}${path}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    await head.arrayBuffer();

    const text = await (await fetch(`${node.url}/metrics`)).text();
    const hits = sumMetric(text, 'weightcache_http_fastpath_requests_total', { result: 'hit' }) - hitsBefore;
    expect(hits).toBeGreaterThanOrEqual(N); // answered on the I/O threads
    // Every answered HTTP request is timed once, whichever side answered it: the histogram's count is
    // the request count (the scrape itself is in neither yet).
    const requests = sumMetric(text, 'weightcache_requests_total', { protocol: 'http' });
    const count = sumMetric(text, 'weightcache_request_duration_seconds_count', { protocol: 'http' });
    expect(count).toBe(requests);
    expect(
      sumMetric(text, 'weightcache_request_duration_seconds_bucket', { protocol: 'http', le: '+Inf' }),
    ).toBe(count);
    // Loopback hits of 300 KB take well under a second each: the 1 s bucket holds them all.
    expect(
      sumMetric(text, 'weightcache_request_duration_seconds_bucket', { protocol: 'http', le: '1' }),
    ).toBe(count);
    expect(sumMetric(text, 'weightcache_request_duration_seconds_sum', { protocol: 'http' })).toBeGreaterThan(
      0,
    );

    // The access log: one line per fast-path answer, as JavaScript writes its own.
    await until(() => accessLines(node).filter((l) => l.target === path).length >= N + 2, {
      what: 'an access line for every request',
      timeoutMs: 10_000,
    });
    // The first line is JavaScript's (the fill); the rest are the I/O threads'.
    const lines = accessLines(node)
      .filter((l) => l.target === path)
      .slice(1);
    const full = lines.filter((l) => l.status === 200 && l.method === 'GET');
    const ranged = lines.filter((l) => l.status === 206);
    expect(full.length).toBe(N - Math.ceil(N / 3));
    expect(ranged.length).toBe(Math.ceil(N / 3));
    for (const l of full)
      expect({ bytes: l.bytes, source: l.source, client: l.client }).toEqual({
        bytes: FILE,
        source: 'dram',
        client: '127.0.0.1',
      });
    for (const l of ranged)
      expect({ bytes: l.bytes, source: l.source }).toEqual({ bytes: 1000, source: 'dram' });
    for (const l of lines) expect(l.durationMs).toBeGreaterThanOrEqual(0);
    const heads = lines.filter((l) => l.method === 'HEAD');
    expect(heads.map((l) => ({ status: l.status, bytes: l.bytes }))).toEqual([{ status: 200, bytes: 0 }]);
    const stats = await (await fetch(`${node.url}/metrics`)).text();
    expect(sumMetric(stats, 'weightcache_http_native_access_dropped_total')).toBe(0);
  }, 60_000);
});
