/**
 * NVMe hits on the native doors' fast path (docs/native-http-door.md, "The
 * fast path"; docs/resp.md), with real node processes whose DRAM is empty
 * after a restart, so every chunk is only on NVMe:
 *   - the native HTTP door answers byte for byte (status, headers, body) what
 *     the JavaScript door answers, reading the chunk files on its I/O threads;
 *     the native RESP door answers GETRANGE/GET as the JavaScript RESP door does;
 *   - a block damaged on disk is never served: the answer is the origin's
 *     bytes (JavaScript drops and refetches the chunk) and a metric counts it;
 *   - chunk files deleted or truncated under a stream of reads never yield a
 *     wrong byte;
 *   - an invalidation answered, a read at once sees the new version;
 *   - clients gone mid-body leave no chunk reference and no read buffer behind.
 */
import { randomBytes } from 'node:crypto';
import { truncateSync, unlinkSync, utimesSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { damageChunkFile as damage, findChunkFile } from '../harness/chunk-files.js';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { get, type RawResponse } from '../harness/http-get.js';
import { mergeConfig, type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';

const MiB = 1024 * 1024;
const CHUNK = MiB;
const SIZE = 6 * MiB + 123_457; // 7 chunks, the last one short
const running: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

interface Started {
  node: NodeProcess;
  respPort?: number;
}

/**
 * A node (one door) over `root` whose NVMe tier holds every chunk of models/f.bin
 * and whose DRAM is empty: filled, stopped, started again on the same directory.
 */
async function nvmeOnlyNode(
  root: string,
  door: 'js' | 'native',
  opts: { resp?: boolean; config?: Record<string, unknown> } = {},
): Promise<Started> {
  const respPort = opts.resp ? await freePort() : undefined;
  const config = mergeConfig(
    {
      http: { door, threads: 2 },
      origin: { type: 'fs', fs: { root } },
      ...(respPort ? { resp: { listen: `127.0.0.1:${respPort}`, door } } : {}),
    },
    opts.config ?? {},
  );
  const first = await startNodeProcess({ config });
  running.push(first);
  const whole = await get(first.url, '/v1/objects/models/f.bin');
  expect(whole.status).toBe(200);
  await until(
    async () => JSON.parse((await get(first.url, '/v1/status')).body.toString()).tiers.nvme.entries >= 7,
    { what: 'the NVMe tier holding the 7 chunks', timeoutMs: 10_000, stepMs: 25 },
  );
  expect(await first.stop()).toBe(0);
  running.splice(running.indexOf(first), 1);
  const node = await startNodeProcess({ config, dir: first.dir });
  running.push(node);
  // The first read resolves the name (JavaScript): the binding the fast path needs is published.
  expect((await get(node.url, '/v1/objects/models/f.bin', { Range: 'bytes=0-0' })).status).toBe(206);
  return { node, respPort };
}

function seed(): { root: string; bytes: Buffer } {
  const bytes = randomBytes(SIZE);
  const root = seedOrigin({ 'f.bin': bytes });
  // One modification time for every reader of this origin: the same Last-Modified.
  utimesSync(join(root, 'models', 'f.bin'), 1_700_000_000, 1_700_000_000);
  return { root, bytes };
}

/** Status, headers (Date aside) and body: what must be equal on both doors (a multipart boundary is random). */
function answerOf(r: RawResponse): string {
  const h = Object.entries(r.headers)
    .filter(([k]) => k !== 'date')
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join('\n');
  const text = `${r.status}\n${h}\n${r.body.toString('latin1')}`;
  const boundary = /boundary=([^;\s]+)/.exec(String(r.headers['content-type']))?.[1];
  return boundary ? text.split(boundary).join('BOUNDARY') : text;
}

/** A deterministic generator of integers in [0, n) (mulberry32). */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Requests of every shape a loader sends for NVMe-resident chunks (deterministic). */
function requests(etag: string): Array<{ method: string; headers: Record<string, string> }> {
  const out: Array<{ method: string; headers: Record<string, string> }> = [];
  const rnd = prng(7);
  for (let i = 0; i < 160; i++) {
    // A whole chunk read moves to DRAM on both doors (and stays there): the first 130
    // requests cover no whole chunk, so they are NVMe hits; the rest may.
    const early = i < 130;
    const kind = rnd(10);
    const start = rnd(SIZE - 1);
    const inChunk = CHUNK - (start % CHUNK); // bytes from start to its chunk's end
    let range: string | undefined;
    if (kind === 0) range = `bytes=${start}-${start + rnd(65_536)}`;
    else if (kind === 1) {
      const c = start - (start % CHUNK);
      range = early ? `bytes=${c + 1}-${c + 4096}` : `bytes=${c}-${Math.min(SIZE, c + CHUNK) - 1}`; // a whole chunk
    } else if (kind === 2)
      range = `bytes=${start}-${start + (early ? inChunk + rnd(CHUNK - 1) : 2 * CHUNK)}`; // across chunks
    else if (kind === 3) range = `bytes=-${1 + rnd(early ? 100_000 : 200_000)}`;
    else if (kind === 4) range = early ? `bytes=${SIZE - 1000}-` : `bytes=${start}-`;
    else if (kind === 5)
      range = `bytes=${start}-${start + 10},${start + 100}-${start + 200}`; // JavaScript on both
    else if (kind === 6)
      range = `bytes=${SIZE + 10}-${SIZE + 20}`; // 416
    else if (kind === 7)
      range = early ? `bytes=${start}-${start + 99}` : undefined; // the whole object
    else range = `bytes=${start}-${start + 4095}`;
    const headers: Record<string, string> = range ? { Range: range } : {};
    if (rnd(8) === 0) headers['If-None-Match'] = etag;
    if (rnd(8) === 0) headers['If-Range'] = rnd(2) || early ? etag : '"other"'; // "other": the whole object
    out.push({ method: rnd(12) === 0 ? 'HEAD' : 'GET', headers });
  }
  return out;
}

function chunkFile(node: NodeProcess, index: number): string {
  const f = findChunkFile(node.dir, index);
  if (!f) throw new Error(`no chunk file for chunk ${index}`);
  return f;
}

const nvmeReads = (n: NodeProcess, result: string) =>
  n.metric('weightcache_nvme_native_reads_total', { result });

describe('NVMe hits on the native fast path', () => {
  it('answer byte for byte what the JavaScript door answers, read on the I/O threads', async () => {
    const { root, bytes } = seed();
    const [a, b] = await Promise.all([
      nvmeOnlyNode(root, 'native', { config: { log: { level: 'debug' } } }),
      nvmeOnlyNode(root, 'js'),
    ]);
    const native = a.node;
    const js = b.node;
    const etag = String((await get(js.url, '/v1/objects/models/f.bin', {}, 'HEAD')).headers.etag);
    let nvmeSources = 0;
    for (const r of requests(etag)) {
      const [x, y] = await Promise.all([
        get(native.url, '/v1/objects/models/f.bin', r.headers, r.method),
        get(js.url, '/v1/objects/models/f.bin', r.headers, r.method),
      ]);
      expect(answerOf(x), `${r.method} ${JSON.stringify(r.headers)}`).toBe(answerOf(y));
      if (x.headers['x-cache-source'] === 'nvme') nvmeSources++;
      if (process.env.DEBUG_NVME)
        console.log(r.method, JSON.stringify(r.headers), x.status, x.headers['x-cache-source']);
      if (
        r.method === 'GET' &&
        x.status === 206 &&
        !String(x.headers['content-type']).startsWith('multipart')
      ) {
        const [s, e] = String(x.headers['content-range']).slice(6).split('/')[0]!.split('-').map(Number);
        expect(x.body.equals(bytes.subarray(s!, e! + 1))).toBe(true);
      }
    }
    expect(nvmeSources).toBeGreaterThan(20);
    // Its access lines name the tier as X-Cache-Source does.
    await until(
      () =>
        native.logs.filter((l) => l.includes('"msg":"request"') && l.includes('"source":"nvme"')).length > 20,
      { what: 'access lines with source nvme', timeoutMs: 10_000 },
    );
    // The native door read them itself: ranges verified and sent from its I/O threads.
    expect(await nvmeReads(native, 'ok')).toBeGreaterThan(20);
    expect(await native.metric('weightcache_served_bytes_total', { source: 'nvme' })).toBeGreaterThan(0);
    expect(await nvmeReads(native, 'corrupt')).toBe(0);
    expect(await native.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(0);
    await until(async () => (await native.metric('weightcache_nvme_native_read_buffer_bytes')) === 0, {
      what: 'read buffers released',
    });
  }, 120_000);

  it('the S3 door’s GetObject/HeadObject of NVMe-only chunks: the JavaScript door’s answers, read on the I/O threads', async () => {
    const { root, bytes } = seed();
    const s3 = { config: { s3: {} } };
    const [a, b] = await Promise.all([nvmeOnlyNode(root, 'native', s3), nvmeOnlyNode(root, 'js', s3)]);
    const native = a.node;
    const js = b.node;
    const path = '/s3/models/f.bin';
    const etag = String((await get(js.url, path, {}, 'HEAD')).headers.etag);
    // The request id is random per answer (a header, and in an error's XML): its form is compared.
    const s3AnswerOf = (r: RawResponse) =>
      answerOf(r)
        .replace(/x-amz-request-id: [0-9A-F]{16}/, 'x-amz-request-id: <16 hex>')
        .replace(/<RequestId>[0-9A-F]{16}<\/RequestId>/, '<RequestId><16 hex></RequestId>');
    const hits = await native.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
    let nvmeSources = 0;
    // The early requests (no whole chunk read, so nothing moves to DRAM): NVMe hits on both doors.
    // Not those S3 answers with the whole object (several ranges, none, a failed If-Range): JavaScript
    // reads those on both doors, and its whole-chunk reads move the chunks to DRAM.
    const oneRange = requests(etag).filter(
      (r) => r.headers.Range?.includes(',') === false && (r.headers['If-Range'] ?? etag) === etag,
    );
    for (const r of oneRange.slice(0, 100)) {
      const [x, y] = await Promise.all([
        get(native.url, path, r.headers, r.method),
        get(js.url, path, r.headers, r.method),
      ]);
      expect(s3AnswerOf(x), `${r.method} ${JSON.stringify(r.headers)}`).toBe(s3AnswerOf(y));
      if (x.headers['x-cache-source'] === 'nvme') nvmeSources++;
      if (r.method === 'GET' && x.status === 206) {
        const [s, e] = String(x.headers['content-range']).slice(6).split('/')[0]!.split('-').map(Number);
        expect(x.body.equals(bytes.subarray(s!, e! + 1))).toBe(true);
      }
    }
    expect(nvmeSources, 'answers from NVMe').toBeGreaterThan(40);
    // Answered by the native door itself: fast-path hits, its own NVMe reads, counted as the S3 door's nvme reads.
    expect(
      (await native.metric('weightcache_http_fastpath_requests_total', { result: 'hit' })) - hits,
    ).toBeGreaterThan(20);
    expect(await nvmeReads(native, 'ok'), 'native NVMe reads').toBeGreaterThan(40);
    expect(
      await native.metric('weightcache_object_reads_total', { door: 's3', source: 'nvme' }),
    ).toBeGreaterThan(20);
    expect(await nvmeReads(native, 'corrupt')).toBe(0);
    expect(await native.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(0);
    await until(async () => (await native.metric('weightcache_nvme_native_read_buffer_bytes')) === 0, {
      what: 'read buffers released',
    });
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  }, 120_000);

  it('never serves a damaged block: the answer is the origin’s bytes, the chunk refetched, counted', async () => {
    const { root, bytes } = seed();
    const { node } = await nvmeOnlyNode(root, 'native');
    const path = chunkFile(node, 2);
    damage(path, 300_000);
    const at = 2 * CHUNK + 290_000;
    // A range in an intact block of the same chunk is still served from the disk.
    const fine = await get(node.url, '/v1/objects/models/f.bin', {
      Range: `bytes=${at - 100_000}-${at - 90_000}`,
    });
    expect(fine.body.equals(bytes.subarray(at - 100_000, at - 89_999))).toBe(true);
    expect(await nvmeReads(node, 'ok')).toBeGreaterThanOrEqual(1);
    const origin = await node.metric('weightcache_origin_requests_total', { op: 'read' });
    const r = await get(node.url, '/v1/objects/models/f.bin', { Range: `bytes=${at}-${at + 65_535}` });
    expect(r.status).toBe(206);
    expect(r.body.equals(bytes.subarray(at, at + 65_536))).toBe(true);
    expect(await nvmeReads(node, 'corrupt')).toBe(1);
    expect(await node.metric('weightcache_checksum_failures_total')).toBeGreaterThanOrEqual(1);
    expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBeGreaterThan(origin);
    // And again: the refetched chunk, right.
    const again = await get(node.url, '/v1/objects/models/f.bin', { Range: `bytes=${at}-${at + 65_535}` });
    expect(again.body.equals(bytes.subarray(at, at + 65_536))).toBe(true);
  }, 60_000);

  it('chunk files deleted or truncated under a stream of reads never yield a wrong byte', async () => {
    const { root, bytes } = seed();
    const { node } = await nvmeOnlyNode(root, 'native');
    let stop = false;
    let reads = 0;
    const reader = async (n: number) => {
      let i = n;
      while (!stop) {
        const start = (i++ * 524_309) % (SIZE - 70_000);
        const r = await get(node.url, '/v1/objects/models/f.bin', {
          Range: `bytes=${start}-${start + 65_535}`,
        });
        expect(r.status).toBe(206);
        expect(r.complete).toBe(true);
        expect(r.body.equals(bytes.subarray(start, start + 65_536))).toBe(true);
        reads++;
      }
    };
    const readers = [0, 1, 2, 3].map((n) => reader(n));
    await until(() => reads > 50, { what: 'reads going', timeoutMs: 20_000 });
    const ok = await nvmeReads(node, 'ok');
    expect(ok).toBeGreaterThan(0);
    unlinkSync(chunkFile(node, 3)); // by hand: under the tier's feet
    truncateSync(chunkFile(node, 4), 4096 + 100_000);
    const before = reads;
    await until(() => reads > before + 100, { what: 'reads after the damage', timeoutMs: 30_000 });
    stop = true;
    await Promise.all(readers);
    expect((await nvmeReads(node, 'missing')) + (await nvmeReads(node, 'corrupt'))).toBeGreaterThan(0);
  }, 90_000);

  it('an invalidation answered, a read at once sees the new version', async () => {
    const { root } = seed();
    // DRAM holds two chunks: a new version's first chunk is on NVMe only once the rest is read.
    const { node } = await nvmeOnlyNode(root, 'native', {
      config: { cache: { dram: { maxBytes: '2MiB' } } },
    });
    for (let v = 1; v <= 3; v++) {
      const hits = await nvmeReads(node, 'ok');
      await until(
        async () => {
          await get(node.url, '/v1/objects/models/f.bin', { Range: 'bytes=5000-9000' });
          return (await nvmeReads(node, 'ok')) > hits;
        },
        { what: `version ${v} read from NVMe on the fast path`, timeoutMs: 20_000 },
      );
      const next = Buffer.alloc(SIZE, v + 10);
      replaceAtOrigin(root, 'f.bin', next);
      const res = await fetch(`${node.url}/v1/invalidate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ container: 'models', key: 'f.bin' }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const r = await get(node.url, '/v1/objects/models/f.bin', { Range: 'bytes=5000-9000' });
      expect(r.body.equals(next.subarray(5000, 9001))).toBe(true);
      // The whole new version, so its first chunk leaves DRAM for NVMe (written through) for the next round.
      expect((await get(node.url, '/v1/objects/models/f.bin')).body.equals(next)).toBe(true);
    }
    expect(await node.metric('weightcache_stale_reads_total')).toBe(0);
  }, 120_000);

  it('clients gone mid-body leave no chunk reference and no read buffer behind', async () => {
    const { root } = seed();
    const { node } = await nvmeOnlyNode(root, 'native');
    const { port } = new URL(node.url);
    for (let i = 0; i < 8; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(Number(port), '127.0.0.1');
        let got = 0;
        s.on('connect', () => {
          let req = '';
          for (let k = 0; k < 4; k++) {
            const start = ((i * 4 + k) * 1_000_003) % (SIZE - 3 * MiB);
            req += `GET /v1/objects/models/f.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=${start}-${start + 3 * MiB}\r\n\r\n`;
          }
          s.write(req);
        });
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got > 100_000) {
            s.destroy();
            resolve();
          }
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
    }
    expect(await nvmeReads(node, 'ok')).toBeGreaterThan(0);
    await until(
      async () =>
        (await node.metric('weightcache_nvme_native_read_buffer_bytes')) === 0 &&
        (await node.metric('weightcache_http_fastpath_chunk_references')) === 0,
      { what: 'chunk references and read buffers back to 0', timeoutMs: 10_000 },
    );
  }, 60_000);

  it('the native RESP door answers NVMe-only GETRANGE/GET as the JavaScript RESP door does', async () => {
    const { root, bytes } = seed();
    const [a, b] = await Promise.all([
      nvmeOnlyNode(root, 'native', { resp: true, config: { resp: { maxGetBytes: '16MiB' } } }),
      nvmeOnlyNode(root, 'js', { resp: true, config: { resp: { maxGetBytes: '16MiB' } } }),
    ]);
    const clients = [a, b].map((s) => new Redis({ port: s.respPort!, host: '127.0.0.1', lazyConnect: true }));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const rnd = prng(11);
      for (let i = 0; i < 120; i++) {
        const start = rnd(6 * MiB);
        // No whole chunk (the short last one included): those would move to DRAM.
        const end = Math.min(start + rnd(300_000), 6 * MiB + 100_000);
        const [x, y] = await Promise.all(clients.map((c) => c.getrangeBuffer('models/f.bin', start, end)));
        expect(x!.equals(y!)).toBe(true);
        expect(x!.equals(bytes.subarray(start, end + 1))).toBe(true);
      }
      expect(await nvmeReads(a.node, 'ok')).toBeGreaterThan(20);
      expect(await nvmeReads(b.node, 'ok')).toBe(0);
      expect(await a.node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(0);
      // A damaged block: the origin's bytes, counted.
      damage(chunkFile(a.node, 5), 12_345);
      const at = 5 * CHUNK + 12_000;
      const r = await clients[0]!.getrangeBuffer('models/f.bin', at, at + 1000);
      expect(r.equals(bytes.subarray(at, at + 1001))).toBe(true);
      expect(await nvmeReads(a.node, 'corrupt')).toBe(1);
      // The whole value (whole chunks: read into DRAM), on both doors.
      const [gx, gy] = await Promise.all(clients.map((c) => c.getBuffer('models/f.bin')));
      expect(gx!.equals(bytes)).toBe(true);
      expect(gy!.equals(bytes)).toBe(true);
    } finally {
      for (const c of clients) c.disconnect();
    }
  }, 120_000);
});
