/**
 * RESP fast-path replies are observable as the commands JavaScript runs
 * (docs/resp.md, "The fast path"): a real node process with the native RESP
 * door answers DRAM hits on its I/O threads, and each one is in
 * weightcache_request_duration_seconds{protocol="resp"} (timed on the thread,
 * in the same buckets) and, at debug level, in the access log with the
 * command, its key, status OK, the value bytes, the source and the duration —
 * the same fields JavaScript writes for the commands it answers. Clients:
 * ioredis and redis-cli.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startNodeProcess, sumMetric } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';

const run = promisify(execFile);
const running: NodeProcess[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

const FILE = 300_000;
const KEY = 'models/f.bin';

interface AccessEntry {
  msg: string;
  component?: string;
  method: string;
  target: string;
  status: number | string;
  bytes: number;
  source?: string;
  durationMs: number;
  client: string;
}

function accessLines(node: NodeProcess): AccessEntry[] {
  return node.logs
    .filter((l) => l.includes('"component":"access"'))
    .map((l) => JSON.parse(l) as AccessEntry)
    .filter((l) => l.target === KEY);
}

async function respNode(): Promise<{ node: NodeProcess; port: number }> {
  const root = seedOrigin({ 'f.bin': Buffer.alloc(FILE, 7) });
  const port = await freePort();
  const node = await startNodeProcess({
    config: {
      resp: { listen: `127.0.0.1:${port}`, door: 'native', threads: 2 },
      origin: { type: 'fs', fs: { root } },
      log: { level: 'debug' },
    },
  });
  running.push(node);
  return { node, port };
}

describe('RESP fast-path replies in the metrics and the access log', () => {
  it('times every fast-path hit in request_duration_seconds{protocol="resp"} and logs it at debug level', async () => {
    const { node, port } = await respNode();
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    clients.push(r);
    await r.connect();
    // The first GETRANGE resolves, fills and binds (JavaScript); the rest are the I/O threads'.
    expect((await r.getrangeBuffer(KEY, 0, 99)).length).toBe(100);
    const before = await node.metric('weightcache_resp_fastpath_commands_total', { result: 'hit' });
    const N = 30;
    for (let i = 0; i < N; i++) {
      if (i % 3 === 0) expect((await r.getrangeBuffer(KEY, 1000, 1999)).length).toBe(1000);
      else if (i % 3 === 1) expect((await r.getBuffer(KEY))!.length).toBe(FILE);
      else expect(await r.strlen(KEY)).toBe(FILE);
    }
    // A pipeline: replies written together are each timed.
    const piped = await r.pipeline().getrangeBuffer(KEY, 0, 9).getrangeBuffer(KEY, 10, 19).exists(KEY).exec();
    expect(piped!.map(([err]) => err)).toEqual([null, null, null]);
    // redis-cli, a second client: its GETRANGE is a hit too.
    const cli = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'GETRANGE', KEY, '5', '9']);
    expect(cli.stdout.trim()).toBe('\u0007'.repeat(5));

    const text = await (await fetch(`${node.url}/metrics`)).text();
    const hits = sumMetric(text, 'weightcache_resp_fastpath_commands_total', { result: 'hit' }) - before;
    expect(hits).toBe(N + 4); // every one answered on the I/O threads
    // Every RESP command answered is timed once, whichever side answered it: the histogram's
    // count is the request count (with what the clients send on connecting: INFO, CLIENT SETINFO).
    const requests = sumMetric(text, 'weightcache_requests_total', { protocol: 'resp' });
    const count = sumMetric(text, 'weightcache_request_duration_seconds_count', { protocol: 'resp' });
    expect(count).toBe(requests);
    expect(count).toBeGreaterThanOrEqual(N + 5);
    expect(
      sumMetric(text, 'weightcache_request_duration_seconds_bucket', { protocol: 'resp', le: '+Inf' }),
    ).toBe(count);
    // Loopback replies of at most 300 KB take well under a second each: the 1 s bucket holds them all.
    expect(
      sumMetric(text, 'weightcache_request_duration_seconds_bucket', { protocol: 'resp', le: '1' }),
    ).toBe(count);
    expect(sumMetric(text, 'weightcache_request_duration_seconds_sum', { protocol: 'resp' })).toBeGreaterThan(
      0,
    );

    // The access log: one line per command, the I/O threads' as JavaScript's.
    const total = N + 5;
    await until(() => accessLines(node).length >= total, {
      what: 'an access line for every command',
      timeoutMs: 10_000,
    });
    const lines = accessLines(node);
    expect(lines.length).toBe(total);
    // JavaScript's line of the first (filling) GETRANGE: the shape the native lines must have.
    expect(lines[0]).toMatchObject({ method: 'GETRANGE', status: 'OK', bytes: 100 });
    const ioredisClient = lines[0]!.client; // the session's "address:port"
    expect(ioredisClient).toMatch(/^127\.0\.0\.1:\d+$/);
    const native = lines.slice(1);
    const of = (method: string) => native.filter((l) => l.method === method);
    expect(of('GET').map((l) => [l.status, l.bytes, l.source])).toEqual(
      Array.from({ length: N / 3 }, () => ['OK', FILE, 'dram']),
    );
    expect(of('STRLEN').map((l) => [l.status, l.bytes, l.source])).toEqual(
      Array.from({ length: N / 3 }, () => ['OK', 0, undefined]),
    );
    expect(of('GETRANGE').map((l) => l.bytes)).toEqual([
      ...Array.from({ length: N / 3 }, () => 1000),
      10,
      10,
      5,
    ]);
    expect(of('EXISTS').map((l) => [l.status, l.bytes])).toEqual([['OK', 0]]);
    // ioredis's commands carry its connection's name; redis-cli's (the last) another.
    expect(native.slice(0, -1).every((l) => l.client === ioredisClient)).toBe(true);
    expect(native.at(-1)!.client).not.toBe(ioredisClient);
    for (const l of native) {
      expect(l.client).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(l.durationMs).toBeGreaterThanOrEqual(0);
      expect(l.msg).toBe('request');
    }
    expect(sumMetric(text, 'weightcache_resp_native_access_dropped_total')).toBe(0);
  }, 60_000);
});
