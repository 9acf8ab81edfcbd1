/**
 * Clients that pipeline requests and never read the answers (issue 12 items
 * 2 and 3), against a real node process: memory stays bounded (VmHWM from
 * the kernel, with generous margins), the attackers are cut, and a client on
 * another address keeps being served. Before the fix, 100 connections × 50
 * pipelined 8 MiB ranges grew the node by gigabytes; 200 × 500 pipelined
 * scrapes of /metrics kept it busy long after the attackers left.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess, sumMetric } from '../harness/node-process.js';

const MiB = 2 ** 20;
/**
 * What the floods below may add to the node's peak RSS: the send budget
 * (http.maxInFlightBytes, 96 MiB), the DRAM store (16 MiB), and headroom for
 * what the process holds beside them (origin fills in flight, 32 × 1 MiB;
 * spent fill buffers and request objects awaiting GC; allocator slack).
 * Unbounded, a flood grew it by +490 MiB to GiBs; with reads started before
 * the budget admitted them it sat at 146–317 MiB (docs/native-http-door.md,
 * "Bytes the application's answers hold").
 */
const GROWTH_BOUND = (96 + 16 + 144) * MiB;
const SIZE = 512 * MiB; // sparse: the origin reads zeros from the page cache
let node: NodeProcess;
let port: number;

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(s)?.[1]) * 1024;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** GET on a connection of its own (Connection: close): the test leaves no keep-alive connection behind. */
function get(path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function metrics(): Promise<string> {
  return (await get('/metrics')).text;
}

/** Opens `conns` connections that each write `depth` requests at once and then never read. */
async function flood(conns: number, depth: number, request: (i: number) => string): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < conns; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.pause();
    s.write(Array.from({ length: depth }, (_, j) => request(i * depth + j)).join(''));
    socks.push(s);
  }
  await Promise.all(socks.map((s) => new Promise((r) => (s.connecting ? s.once('connect', r) : r(null)))));
  return socks;
}

/**
 * Waits until the node holds at most `n` connections besides the one asking
 * (a deadline, not a measurement). A connection a flood left within its
 * bounds may stay until http.idleTimeout; the slow-client bound leaves at
 * most maxSlowClientBytes / 6 MiB = 4 of them.
 */
async function openAtMost(n: number, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (sumMetric(await metrics(), 'weightcache_http_connections') <= n + 1) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Keeps the flood's sockets open 10 s longer before memory is read: whatever
 * the node still serves them in that time shows in VmHWM (unbounded, 10 s of
 * a flood grew it by gigabytes).
 */
async function holdOn(socks: Socket[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 10_000));
  expect(socks.length).toBeGreaterThan(0);
}

/** One 1 MiB range from another client address (127.0.0.2): its status and byte count. */
function goodRead(offset: number, timeoutMs = 180_000): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress: '127.0.0.2',
        path: '/v1/objects/big/sparse.bin',
        headers: { Range: `bytes=${offset}-${offset + MiB - 1}` },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('good reader timed out')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  node = await startNodeProcess({
    config: {
      cache: { chunkSize: '1MiB', readAhead: 4, dram: { maxBytes: '16MiB' }, nvme: null },
      http: {
        // A response pins up to (readAhead + 1) × 1 MiB = 5 MiB.
        maxInFlightBytes: '96MiB',
        maxSlowClientBytes: '24MiB',
        slowClientAfter: '200ms',
        metricsCache: '1s',
      },
    },
    timeoutMs: 60_000,
  });
  port = Number(new URL(node.url).port);
  const dir = join(node.dir, 'origin', 'big');
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'sparse.bin'), 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  expect((await goodRead(0)).bytes).toBe(MiB); // warm the lease and the code paths
});
afterAll(async () => {
  await node?.kill();
});

const rangeRequest = (n: number) => {
  const start = (n * 37 * MiB) % (SIZE - 8 * MiB);
  return `GET /v1/objects/big/sparse.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=${start}-${start + 8 * MiB - 1}\r\n\r\n`;
};

// Generous: the flood, and the cuts it waits for, are slow on a loaded machine.
describe('pipelined requests that are never read', { timeout: 240_000 }, () => {
  it('100 connections × 50 pipelined 8 MiB ranges: cut at the pipelining bound, memory stays bounded', async () => {
    const pid = node.proc.pid!;
    const before = status(pid, 'VmHWM');
    const socks = await flood(100, 50, rangeRequest);
    try {
      // A connection whose 50 requests arrived in one read is cut at once; one that TCP split
      // was held at 16 and is one of the slow clients below.
      expect(await openAtMost(4, 120_000)).toBe(true);
      await holdOn(socks);
      const grown = status(pid, 'VmHWM') - before;
      // Unbounded, this grew by gigabytes; bounded, it is the in-flight budget and change.
      expect(grown).toBeLessThan(GROWTH_BOUND);
      const text = await metrics();
      expect(
        sumMetric(text, 'weightcache_http_rejected_connections_total', { reason: 'pipeline_limit' }),
      ).toBeGreaterThan(0);
      expect(sumMetric(text, 'weightcache_http_slow_client_bytes')).toBeLessThanOrEqual(24 * MiB);
      expect(await goodRead(3 * MiB)).toEqual({ status: 206, bytes: MiB });
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  it('100 connections × 16 pipelined 8 MiB ranges (at the bound): slow clients are cut, memory stays bounded, others are served', async () => {
    const pid = node.proc.pid!;
    const before = status(pid, 'VmHWM');
    const socks = await flood(100, 16, rangeRequest);
    try {
      // A client on another address is served while the flood runs (it gets the next room in the budget).
      expect(await goodRead(5 * MiB)).toEqual({ status: 206, bytes: MiB });
      expect(await openAtMost(4, 120_000)).toBe(true);
      await holdOn(socks);
      const grown = status(pid, 'VmHWM') - before;
      expect(grown).toBeLessThan(GROWTH_BOUND);
      const text = await metrics();
      expect(
        sumMetric(text, 'weightcache_http_rejected_connections_total', { reason: 'slow_client' }),
      ).toBeGreaterThan(0);
      expect(sumMetric(text, 'weightcache_http_slow_client_bytes')).toBeLessThanOrEqual(24 * MiB);
      expect(sumMetric(text, 'weightcache_http_inflight_bytes')).toBeLessThanOrEqual(96 * MiB);
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  it('100 connections × 500 pipelined /metrics scrapes: cut at once, the node is not left busy', async () => {
    const pid = node.proc.pid!;
    const cutBefore = sumMetric(await metrics(), 'weightcache_http_rejected_connections_total', {
      reason: 'pipeline_limit',
    });
    const socks = await flood(100, 500, () => 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    try {
      expect((await get('/healthz')).status).toBe(200);
      // Cut at once when 500 requests arrive in one read; a connection TCP split is held at 16.
      const end = Date.now() + 120_000;
      let cut = 0;
      while (Date.now() < end && cut < 90) {
        cut =
          sumMetric(await metrics(), 'weightcache_http_rejected_connections_total', {
            reason: 'pipeline_limit',
          }) - cutBefore;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(cut).toBeGreaterThanOrEqual(90);
    } finally {
      for (const s of socks) s.destroy();
    }
    // Unbounded, 50,000 queued renders kept the node at 100% CPU long after the attackers left.
    const cpu0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 3000));
    expect(cpuSeconds(pid) - cpu0).toBeLessThan(1.5);
  });
});
