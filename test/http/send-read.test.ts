/**
 * src/http/send-read.ts's admission, against a real node process (on the
 * door WEIGHTCACHE_TEST_HTTP_DOOR names): a request waiting for room in the
 * send budget (http.maxInFlightBytes) has read nothing yet. Before, every
 * waiting request had already fetched its first chunk and its read-ahead, so
 * a flood of pipelined requests held far more than the budget while queued.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess, sumMetric } from '../harness/node-process.js';

const MiB = 2 ** 20;
const SIZE = 80 * MiB;
let node: NodeProcess;
let port: number;

/** The origin's bytes: byte i of MiB m is (m + i) & 0xff, so a wrong offset shows. */
function expected(start: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const at = start + i;
    b[i] = (Math.floor(at / MiB) + (at % MiB)) & 0xff;
  }
  return b;
}

function get(path: string, range?: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent: false, headers: range ? { Range: range } : {} },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function originReads(): Promise<number> {
  const text = (await get('/metrics')).body.toString();
  return sumMetric(text, 'weightcache_origin_requests_total', { op: 'read' });
}

/** Origin reads once they stop changing (a reader's window filled), polled every 300 ms. */
async function settledOriginReads(): Promise<number> {
  let last = await originReads();
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await originReads();
    if (now === last) return now;
    last = now;
  }
  throw new Error('origin reads never settled');
}

beforeAll(async () => {
  node = await startNodeProcess({
    config: {
      cache: { chunkSize: '1MiB', readAhead: 1, dram: { maxBytes: '16MiB' }, nvme: null },
      // One response's reservation (readAhead + 1 chunks) fills the budget.
      http: {
        maxInFlightBytes: '2MiB',
        maxSlowClientBytes: '2MiB',
        queueTimeout: '30s',
        slowClientAfter: '60s',
      },
    },
    timeoutMs: 60_000,
  });
  port = Number(new URL(node.url).port);
  const dir = join(node.dir, 'origin', 'm');
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'w.bin'), 'w');
  ftruncateSync(fd, SIZE);
  for (let m = 0; m < SIZE / MiB; m++) writeSync(fd, expected(m * MiB, MiB), 0, MiB, m * MiB);
  closeSync(fd);
});
afterAll(async () => {
  await node?.kill();
});

describe('send budget admission', { timeout: 120_000 }, () => {
  it('a request waiting for room in http.maxInFlightBytes reads nothing until admitted, then is answered whole', async () => {
    // A client that takes the whole budget and never reads its answer.
    const hog: Socket = connect(port, '127.0.0.1');
    hog.on('error', () => {});
    hog.pause();
    hog.write(`GET /v1/objects/m/w.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-${32 * MiB - 1}\r\n\r\n`);
    const before = await settledOriginReads();
    expect(before).toBeGreaterThan(0);

    // Eight readers of other ranges queue behind it (3 MiB each: more than the native door
    // parks and fills ahead of its answer, 1/8 of the DRAM budget, so both doors send them
    // through the application).
    const ranges = Array.from({ length: 8 }, (_, i) => [
      40 * MiB + i * 4 * MiB + 100,
      40 * MiB + i * 4 * MiB + 3 * MiB,
    ]);
    const answers = ranges.map(([s, e]) => get('/v1/objects/m/w.bin', `bytes=${s}-${e}`));
    await new Promise((r) => setTimeout(r, 1500));
    const waiting = sumMetric((await get('/metrics')).body.toString(), 'weightcache_http_inflight_bytes');
    expect(waiting).toBeLessThanOrEqual(2 * MiB);
    // Queued, they have fetched nothing (each would have read 2 chunks ahead of its answer).
    expect(await originReads()).toBe(before);

    hog.destroy();
    const got = await Promise.all(answers);
    got.forEach((g, i) => {
      const [s, e] = ranges[i]!;
      expect(g.status).toBe(206);
      expect(g.body.equals(expected(s!, e! - s! + 1))).toBe(true);
    });
  });
});
