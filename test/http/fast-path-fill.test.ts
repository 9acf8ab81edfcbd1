/**
 * Misses on the native door's fast path (docs/native-http-door.md, "Misses"):
 * a cold GET is parked on its I/O thread while JavaScript's read path fills
 * it, then answered natively. Real node processes, real origins (fs, and a
 * node:http origin whose requests are counted), raw sockets as clients.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, replaceAtOrigin, seedOrigin, startMember } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type HttpOriginServer, startHttpOriginServer } from '../harness/http-origin-server.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { RawConnection, rawRequest } from '../harness/raw-http.js';
import { until } from '../harness/until.js';

const running: NodeProcess[] = [];
const origins: HttpOriginServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await Promise.all(origins.splice(0).map((o) => o.stop()));
});

const MiB = 2 ** 20;
/** Bytes that differ at every offset (a misplaced slice shows). */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(Math.ceil(size / 4) * 4);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < b.length; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, size);
}
const fastMetric = (n: NodeProcess, result: string) =>
  n.metric('weightcache_http_fastpath_requests_total', { result });

async function nativeNode(origin: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const node = await startNodeProcess({
    config: { http: { door: 'native', threads: 2 }, origin, ...extra },
  });
  running.push(node);
  return node;
}

async function rangeGet(port: number, path: string, range?: string) {
  const c = await RawConnection.open(port);
  try {
    c.send(rawRequest('GET', path, range ? { Range: range } : {}));
    return await c.read({ timeoutMs: 60_000 });
  } finally {
    c.close();
  }
}

describe('fast-path misses, filled by JavaScript and answered natively', () => {
  it('cold reads from an fs origin are the origin’s bytes, answered on the fast path', async () => {
    const file = pattern(5 * MiB + 12345, 1);
    const root = seedOrigin({ 'm.bin': file, 'n.bin': pattern(3 * MiB, 2), 'o.bin': pattern(MiB, 5) });
    const node = await nativeNode({ type: 'fs', fs: { root } });
    const port = Number(new URL(node.url).port);
    // Whole, a range across chunks: each the first read of what it covers.
    const whole = await rangeGet(port, '/v1/objects/models/m.bin');
    expect(whole.status).toBe(200);
    // Where its fill got the first chunk, as the JavaScript door reports a miss (not the DRAM it was sent from).
    expect(whole.headers['x-cache-source']).toBe('origin');
    expect(whole.body.equals(file)).toBe(true);
    const part = await rangeGet(port, '/v1/objects/models/n.bin', 'bytes=1000000-2200000');
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000000-2200000/${3 * MiB}`);
    expect(part.body.equals(pattern(3 * MiB, 2).subarray(1000000, 2200001))).toBe(true);
    expect(part.headers['x-cache-source']).toBe('origin');
    expect(await fastMetric(node, 'resumed')).toBe(2);
    expect(await fastMetric(node, 'fallback')).toBe(0);
    // Counted as misses, as the JavaScript door counts them; a second read is a DRAM hit.
    expect(await node.metric('weightcache_object_reads_total', { door: 'objects', source: 'origin' })).toBe(
      2,
    );
    expect(await node.metric('weightcache_served_bytes_total', { source: 'origin' })).toBe(
      file.length + 2200001 - 1000000,
    );
    const again = await rangeGet(port, '/v1/objects/models/m.bin', 'bytes=0-99');
    expect(again.headers['x-cache-source']).toBe('dram');
    expect(
      await node.metric('weightcache_object_reads_total', { door: 'objects', source: 'dram' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await node.metric('weightcache_object_reads_total', { door: 'objects', source: 'origin' })).toBe(
      2,
    );
    // A HEAD of a name whose chunks are in no tier fetches nothing (JavaScript answers it, source origin).
    const originReads = await node.metric('weightcache_origin_requests_total', { op: 'read' });
    const c = await RawConnection.open(port);
    try {
      c.send(rawRequest('HEAD', '/v1/objects/models/o.bin', { Range: 'bytes=0-9' }));
      const head = await c.read({ timeoutMs: 60_000, head: true });
      expect(head.status).toBe(206);
      expect(head.headers['x-cache-source']).toBe('origin');
    } finally {
      c.close();
    }
    expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(originReads);
    // A name that does not exist: JavaScript's own 404 after the failed fill.
    const fallbacks = await fastMetric(node, 'fallback'); // the HEAD above: resolved, then JavaScript's
    const missing = await rangeGet(port, '/v1/objects/models/nope.bin');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).code).toBe('NOT_FOUND');
    expect(await fastMetric(node, 'fallback')).toBe(fallbacks + 1);
    expect(await node.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  }, 60_000);

  it('concurrent cold reads of the same chunks through an HTTP origin fill each chunk once', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    const file = pattern(4 * MiB, 3);
    origin.put('models', 'w.bin', file);
    const node = await nativeNode({ type: 'http', http: { baseUrl: origin.baseUrl } });
    const port = Number(new URL(node.url).port);
    origin.setFault({ mode: 'ok', delayMs: 300 }); // the readers all arrive while the fill is out
    origin.resetRequests();
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => rangeGet(port, '/v1/objects/models/w.bin', 'bytes=0-4194303')),
    );
    const want = createHash('sha256').update(file).digest('hex');
    for (const a of answers) {
      expect(a.status).toBe(206);
      expect(createHash('sha256').update(a.body).digest('hex')).toBe(want);
    }
    // One HEAD (the name resolved once) and one GET per chunk, however many readers.
    expect(origin.requests.GET).toBe(4);
    expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(4);
    expect(await fastMetric(node, 'resumed')).toBe(12);
  }, 60_000);

  it('a fill that fails is the answer: JavaScript answers its error without asking the origin again', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    const file = pattern(MiB / 2, 6); // one chunk: no read-ahead takes the one faulty GET
    origin.put('models', 'f.bin', file);
    const node = await nativeNode({ type: 'http', http: { baseUrl: origin.baseUrl } });
    const port = Number(new URL(node.url).port);
    expect((await get(node.url, '/v1/objects/models/f.bin', {}, 'HEAD')).status).toBe(200); // bound
    origin.resetRequests();
    origin.setFault({ mode: 'short-body', methods: ['GET'], times: 1 });
    const fallbacks = await fastMetric(node, 'fallback');
    const failed = await rangeGet(port, '/v1/objects/models/f.bin', 'bytes=0-99');
    expect(failed.status).toBe(502);
    expect(JSON.parse(failed.body.toString()).code).toBe('ORIGIN_BAD_RESPONSE');
    // The fill's one read, not a second one by JavaScript (the fault was for one GET only).
    expect(origin.requests.GET).toBe(1);
    expect((await fastMetric(node, 'fallback')) - fallbacks).toBe(1);
    // Nothing of it was kept: the next read fills again, right.
    const next = await rangeGet(port, '/v1/objects/models/f.bin', 'bytes=0-99');
    expect(next.status).toBe(206);
    expect(next.body.equals(file.subarray(0, 100))).toBe(true);
  }, 60_000);

  it('a missing name costs one origin stat: JavaScript answers 404 with the fill’s result', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    origin.put('models', 'here.bin', pattern(MiB, 9));
    const node = await nativeNode({ type: 'http', http: { baseUrl: origin.baseUrl } });
    const port = Number(new URL(node.url).port);
    origin.resetRequests();
    const fallbacks = await fastMetric(node, 'fallback');
    for (const target of ['/v1/objects/models/nope.bin', '/v1/objects/models/nope.bin?version=abc']) {
      const before = origin.requests.HEAD;
      const r = await rangeGet(port, target);
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body.toString()).code).toBe('NOT_FOUND');
      // The fill's stat, and no second one for JavaScript's answer.
      expect(origin.requests.HEAD - before).toBe(1);
    }
    expect(origin.requests.GET).toBe(0);
    expect(await fastMetric(node, 'fallback')).toBe(fallbacks + 2);
    expect(await node.metric('weightcache_origin_requests_total', { op: 'stat', result: 'not_found' })).toBe(
      2,
    );
    // The name exists once the origin has it: nothing remembered past the request.
    origin.put('models', 'nope.bin', pattern(MiB, 10));
    const found = await rangeGet(port, '/v1/objects/models/nope.bin');
    expect(found.status).toBe(200);
    expect(found.body.equals(pattern(MiB, 10))).toBe(true);
  }, 60_000);

  it('a request pipelined behind a parked miss reaches JavaScript after it, in order', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    const big = pattern(12 * MiB, 6); // past an eighth of the DRAM budget: JavaScript streams it
    origin.put('models', 'big.bin', big);
    const node = await nativeNode({ type: 'http', http: { baseUrl: origin.baseUrl } });
    const port = Number(new URL(node.url).port);
    // B's name resolved (a HEAD: JavaScript's), so B goes to JavaScript at once rather than being parked.
    expect((await get(node.url, '/v1/objects/models/big.bin', {}, 'HEAD')).status).toBe(200);
    origin.setFault({ mode: 'ok', delayMs: 400 }); // the missing name's fill is still out when B arrives
    const c = await RawConnection.open(port);
    try {
      // A: parked, then handed to JavaScript (no such name). B: JavaScript's from the start, 12 MiB.
      // B reaching JavaScript first left it streaming behind A's unanswered place, and A queued
      // behind B: neither answered.
      c.send(
        rawRequest('GET', '/v1/objects/models/nope.bin') + rawRequest('GET', '/v1/objects/models/big.bin'),
      );
      const a = await c.read({ timeoutMs: 30_000 });
      expect(a.status).toBe(404);
      const b = await c.read({ timeoutMs: 30_000 });
      expect(b.status).toBe(200);
      expect(b.body.equals(big)).toBe(true);
    } finally {
      c.close();
    }
    // The HEAD's (resolved, then JavaScript's: its chunk is in no tier) and A's failed fill.
    expect(await fastMetric(node, 'fallback')).toBe(2);
  }, 90_000);

  it('a client that goes away while parked leaves nothing behind', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    origin.put('models', 'g.bin', pattern(2 * MiB, 4));
    const node = await nativeNode({ type: 'http', http: { baseUrl: origin.baseUrl } });
    const port = Number(new URL(node.url).port);
    // The name bound and its last chunk read (nothing past it to read ahead); chunk 0's fill is slow.
    expect((await rangeGet(port, '/v1/objects/models/g.bin', 'bytes=-1')).status).toBe(206);
    const parked = await fastMetric(node, 'parked');
    const resumed = await fastMetric(node, 'resumed');
    origin.setFault({ mode: 'ok', delayMs: 1500 });
    const c = await RawConnection.open(port);
    c.send(rawRequest('GET', '/v1/objects/models/g.bin', { Range: 'bytes=0-9' }));
    await until(async () => (await fastMetric(node, 'parked')) > parked, { what: 'the request parked' });
    c.socket.destroy();
    // The fill completes for nobody; then a reader gets the bytes on the fast path.
    origin.setFault({ mode: 'ok' });
    await until(async () => (await node.metric('weightcache_origin_requests_total', { op: 'read' })) >= 2, {
      what: 'the fill done',
      timeoutMs: 20_000,
    });
    const r = await get(node.url, '/v1/objects/models/g.bin');
    expect(r.status).toBe(200);
    expect(r.body.equals(pattern(2 * MiB, 4))).toBe(true);
    expect(await node.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
    // The gone client's request was never answered; the last GET was a hit.
    expect(await fastMetric(node, 'resumed')).toBe(resumed);
  }, 60_000);

  it('a client that leaves while parked stops its fill; a reader sharing the fill still gets every byte', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    const size = 16 * MiB; // 16 chunks: the largest parked range (kMaxFillChunks)
    origin.put('models', 'alone.bin', pattern(size, 7));
    origin.put('models', 'shared.bin', pattern(size, 8));
    // DRAM for a 16-chunk range to be parked (at most an eighth of it per range).
    const node = await nativeNode(
      { type: 'http', http: { baseUrl: origin.baseUrl } },
      { cache: { dram: { maxBytes: '256MiB' } } },
    );
    const port = Number(new URL(node.url).port);
    const whole = `bytes=0-${size - 1}`;
    const fills = () => node.metric('weightcache_http_fastpath_fills_in_progress');
    origin.setFault({ mode: 'ok', delayMs: 600 }); // each origin read takes a while
    origin.resetRequests();

    // Alone: once the client leaves, no chunk not yet started is fetched.
    const parked = await fastMetric(node, 'parked');
    const c = await RawConnection.open(port);
    c.send(rawRequest('GET', '/v1/objects/models/alone.bin', { Range: whole }));
    await until(async () => (await fastMetric(node, 'parked')) > parked && origin.requests.GET >= 1, {
      what: 'the request parked and its fill reading the origin',
    });
    c.socket.destroy();
    await until(async () => (await fastMetric(node, 'fill_cancelled')) === 1, { what: 'the fill cancelled' });
    await until(async () => (await fills()) === 0, { what: 'the cancelled fill settled', timeoutMs: 20_000 });
    const readAlone = origin.requests.GET;
    // At most the chunks in progress when it left (readAhead + 1 = 5) and those started before the cancel arrived.
    expect(readAlone).toBeGreaterThanOrEqual(1);
    expect(readAlone).toBeLessThan(16);
    await new Promise((r) => setTimeout(r, 1500)); // nothing more comes later either
    expect(origin.requests.GET).toBe(readAlone);
    expect(await node.metric('weightcache_http_fastpath_chunk_references')).toBe(0);

    // Shared: two readers parked on the same chunks, one leaves; the other still gets them all, each read once.
    origin.resetRequests();
    const leaving = await RawConnection.open(port);
    const staying = await RawConnection.open(port);
    const parked2 = await fastMetric(node, 'parked');
    leaving.send(rawRequest('GET', '/v1/objects/models/shared.bin', { Range: whole }));
    staying.send(rawRequest('GET', '/v1/objects/models/shared.bin', { Range: whole }));
    await until(async () => (await fastMetric(node, 'parked')) >= parked2 + 2 && origin.requests.GET >= 1, {
      what: 'both parked',
    });
    leaving.socket.destroy();
    try {
      const a = await staying.read({ timeoutMs: 60_000 });
      expect(a.status).toBe(206);
      expect(a.body.equals(pattern(size, 8))).toBe(true);
    } finally {
      staying.close();
    }
    expect(origin.requests.GET).toBe(16);
    expect(await fastMetric(node, 'fill_cancelled')).toBe(2);
    await until(async () => (await fills()) === 0, { what: 'no fill left' });
  }, 90_000);

  it('an invalidation while a request is parked: never the old bytes after it is answered', async () => {
    const v1 = pattern(2 * MiB, 5);
    const v2 = pattern(2 * MiB, 6);
    const root = seedOrigin({ 'i.bin': v1 });
    const node = await nativeNode({ type: 'fs', fs: { root } });
    const port = Number(new URL(node.url).port);
    for (let round = 0; round < 3; round++) {
      const cur = round % 2 === 0 ? v1 : v2;
      const next = round % 2 === 0 ? v2 : v1;
      // Warm the name (its binding), evict nothing: a range of a chunk not yet read parks.
      const reading = rangeGet(port, '/v1/objects/models/i.bin');
      replaceAtOrigin(root, 'i.bin', next);
      const inv = await fetch(`${node.url}/v1/invalidate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ container: 'models', key: 'i.bin' }),
      });
      expect(inv.status).toBe(200);
      await inv.arrayBuffer();
      const raced = await reading;
      // Either version whole, or JavaScript's error for a version that changed mid-read: never a mix.
      if (raced.status === 200) expect(raced.body.equals(cur) || raced.body.equals(next)).toBe(true);
      else expect([409, 412, 502, 503]).toContain(raced.status);
      const after = await rangeGet(port, '/v1/objects/models/i.bin');
      expect(after.status).toBe(200);
      expect(after.body.equals(next)).toBe(true);
    }
    expect(await node.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  }, 60_000);

  it('in a cluster, a chunk another member owns is not filled here: JavaScript reads it, once', async () => {
    const file = pattern(16 * 256 * 1024, 7); // 16 chunks of the cluster tests' 256 KiB
    const root = seedOrigin({ 'c.bin': file });
    const members = addresses(2, await freePort(), 71);
    const config = { http: { door: 'native', threads: 1 } };
    const [a, b] = await Promise.all(
      members.map((self) => startMember({ root, self, members, config, running, timeoutMs: 60_000 })),
    );
    const port = Number(new URL(a!.url).port);
    // One chunk per request: some owned by a, filled here and answered natively; the rest b's.
    for (let i = 0; i < 16; i++) {
      const from = i * 256 * 1024;
      const r = await rangeGet(port, '/v1/objects/models/c.bin', `bytes=${from}-${from + 256 * 1024 - 1}`);
      expect(r.status).toBe(206);
      expect(r.body.equals(file.subarray(from, from + 256 * 1024))).toBe(true);
    }
    // a's chunks answered natively (after a fill, or read ahead by then: a hit); b's by JavaScript.
    expect((await fastMetric(a!, 'resumed')) + (await fastMetric(a!, 'hit'))).toBeGreaterThan(0);
    expect(await fastMetric(a!, 'fallback')).toBeGreaterThan(0);
    // At most one fill per request (plus the first one's resolve): b's chunks are handed to
    // JavaScript at the first fill, not fetched by fills that could not keep them and asked again.
    expect(await fastMetric(a!, 'parked')).toBeLessThanOrEqual(17);
    // Each chunk pulled from the origin once, by its owner.
    const originReads =
      (await a!.metric('weightcache_origin_requests_total', { op: 'read' })) +
      (await b!.metric('weightcache_origin_requests_total', { op: 'read' }));
    expect(originReads).toBe(16);
  }, 120_000);

  it('past the parked limit a miss is answered by JavaScript, every answer right', async () => {
    const origin = await startHttpOriginServer();
    origins.push(origin);
    const files: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      files.push(pattern(64 * 1024, 100 + i));
      origin.put('models', `p${i}.bin`, files[i]!);
    }
    // One I/O thread: 20 connections × 16 pipelined misses pass its 256 parked requests.
    const node = await startNodeProcess({
      config: {
        http: { door: 'native', threads: 1, maxPipelined: 16 },
        origin: { type: 'http', http: { baseUrl: origin.baseUrl } },
      },
    });
    running.push(node);
    const port = Number(new URL(node.url).port);
    origin.setFault({ mode: 'ok', delayMs: 500 });
    const conns = await Promise.all(Array.from({ length: 20 }, () => RawConnection.open(port)));
    try {
      for (let c = 0; c < 20; c++) {
        let bytes = '';
        for (let j = 0; j < 15; j++) bytes += rawRequest('GET', `/v1/objects/models/p${c * 15 + j}.bin`);
        conns[c]!.send(bytes);
      }
      await Promise.all(
        conns.map(async (conn, c) => {
          for (let j = 0; j < 15; j++) {
            const a = await conn.read({ timeoutMs: 60_000 });
            expect(a.status).toBe(200);
            expect(a.body.equals(files[c * 15 + j]!)).toBe(true);
          }
        }),
      );
    } finally {
      for (const c of conns) c.close();
    }
    expect(await fastMetric(node, 'park_overflow')).toBeGreaterThan(0);
    expect(await fastMetric(node, 'resumed')).toBeGreaterThan(0);
    expect(await node.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  }, 90_000);
});
