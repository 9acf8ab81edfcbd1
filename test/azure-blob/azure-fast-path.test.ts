/**
 * The Azure Blob door's Get Blob / Get Blob Properties on the native door's
 * fast path (docs/native-http-door.md "The front doors on the fast path"):
 * two real nodes without auth over one Azure origin (Azurite, so that one
 * blob keeps a Content-MD5 and one does not), one with the JavaScript door,
 * one with the native door. azure-storage-blob reads the same blobs from
 * both (byte-exact, same properties and MD5s), the second time on the native
 * node answered by its I/O threads; then the same raw requests — chosen
 * cases and a few hundred generated ones (Range and x-ms-range of every
 * form, both at once, conditionals, x-ms-version, the range-MD5 flag,
 * queries, HEAD, missing blobs, other accounts, container operations) — get
 * the same status, the same headers in the same order (Date aside; the
 * request id differs but has the same form) and the same bytes from both.
 * With auth on: azure-fast-path-auth.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzuriteHandle, seedMd5Blobs, startAzurite } from '../harness/azurite.js';
import { type NodeProcess, startBothDoors } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { fastHits, raw } from './exchange.js';

const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;
const CHUNK = 256 * 1024;
/** Two chunks and a bit: reads cross chunks. */
const withBytes = randomBytes(2 * CHUNK + 4321);
const withoutBytes = randomBytes(280_000);
const md5 = createHash('md5').update(withBytes).digest('base64');

/** A deterministic generator (the same requests every run, so a failure reproduces). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Case = [method: string, target: string, headers: Record<string, string>];

function generate(n: number, etag: string): Case[] {
  const r = rng(1515);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (max: number) => Math.floor(r() * max);
  const size = withBytes.length;
  const ranges = () =>
    pick([
      `bytes=${int(size)}-${int(size)}`,
      `bytes=0-${int(size)}`,
      `bytes=${int(size)}-`,
      `bytes=-${int(2 * size)}`,
      `bytes=${CHUNK - 5}-${CHUNK + 5}`,
      'bytes=0-33554431',
      'bytes=0-0,5-9',
      `bytes=${2 * size}-`,
      'bytes=5-1',
      'bytes=abc',
      '',
    ]);
  const targets = [
    '/azure/acct/models/md5/with.bin',
    '/azure/acct/models/md5/with.bin',
    '/azure/acct/models/md5/with.bin',
    '/azure/acct/models/md5/without.bin',
    '/azure/acct/models/md5/without.bin',
    '/azure/acct/models/md5/missing.bin',
    '/azure/acct/models/md5/%77ith.bin',
    '/azure/acct/models/md5/with.bin?timeout=30',
    '/azure/acct/models/md5/with.bin?snapshot=2025-01-01T00:00:00.0000000Z',
    '/azure/acct/models/md5/with.bin?comp=metadata',
    '/azure/acct/models/md5/with.bin?',
    '/azure/acct/models?restype=container',
    '/azure/acct/Bad_Container!/x',
    '/azure/acct/models/md5//with.bin',
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const h: Record<string, string> = {};
    const k = r();
    if (k < 0.3) h['x-ms-range'] = ranges();
    else if (k < 0.55) h.Range = ranges();
    else if (k < 0.65) {
      h.Range = ranges();
      h['x-ms-range'] = ranges();
    }
    const c = r();
    if (c < 0.1) h['If-None-Match'] = pick([etag, '"other"', '*']);
    else if (c < 0.17) h['If-Match'] = pick([etag, '"other"', '*']);
    else if (c < 0.25) h['If-Range'] = pick([etag, '"other"', 'Thu, 01 Jan 2026 00:00:00 GMT']);
    else if (c < 0.28) h['If-Modified-Since'] = 'Thu, 01 Jan 2026 00:00:00 GMT';
    const v = r();
    if (v < 0.5) h['x-ms-version'] = pick(['2025-01-05', '2021-08-06', '2025-11-05']);
    else if (v < 0.55) Object.assign(h, { 'x-ms-version': '2025-01-05', 'X-Ms-Version': '2021-08-06' });
    if (r() < 0.1) h['x-ms-range-get-content-md5'] = pick(['true', 'false', 'TRUE']);
    if (r() < 0.3)
      Object.assign(h, { 'x-ms-date': 'Thu, 01 Jan 2026 00:00:00 GMT', 'x-ms-client-request-id': 'c1' });
    out.push([r() < 0.7 ? 'GET' : 'HEAD', pick(targets), h]);
  }
  return out;
}

describe.skipIf(!run)('Azure Blob door on the native fast path', { timeout: CLIENT_TEST_MS }, () => {
  let az: AzuriteHandle;
  let js: NodeProcess;
  let native: NodeProcess;
  beforeAll(async () => {
    az = await startAzurite();
    await seedMd5Blobs(az, withBytes, withoutBytes);
    [js, native] = await startBothDoors((door) => ({
      http: { door, threads: 1 },
      origin: { type: 'azure', azure: { connectionString: az.connectionString } },
      cache: { chunkSize: '256KiB' },
    }));
  }, 300_000);
  afterAll(async () => {
    await Promise.all([js?.kill(), native?.kill()]);
    await az?.stop();
  });

  it('azure-storage-blob reads the same blobs from both; once filled, its reads are answered natively', async () => {
    const reads = (n: NodeProcess) =>
      runPythonJson<ClientOutput>(
        'main',
        join(here, 'azure_client.py'),
        [
          'md5',
          `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${'a'.repeat(88)};BlobEndpoint=${n.url}/azure/acct`,
        ],
        { timeoutMs: CLIENT_TEST_MS },
      );
    const fromJs = await reads(js);
    expect(fromJs['md5/with.bin']).toMatchObject({ props_md5: md5 });
    const first = await reads(native); // fills (misses go to JavaScript)
    const hits = await fastHits(native);
    const azureReads = await native.metric('weightcache_object_reads_total', {
      door: 'azure',
      source: 'dram',
    });
    const second = await reads(native);
    expect(first).toEqual(fromJs);
    expect(second).toEqual(fromJs);
    // Per blob: Get Blob Properties (a HEAD) and two Get Blobs (the whole, a range): natively now.
    expect((await fastHits(native)) - hits).toBeGreaterThanOrEqual(6);
    expect(
      (await native.metric('weightcache_object_reads_total', { door: 'azure', source: 'dram' })) - azureReads,
    ).toBeGreaterThanOrEqual(4);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('the same raw requests get the same answers from both doors, blob reads natively', async () => {
    const blob = '/azure/acct/models/md5/with.bin';
    const etag = (await raw(js.url, 'HEAD', blob)).head.find((l) => l.startsWith('ETag:'))!.slice(6);
    // [method, target, headers, answered natively once warm]
    const cases: [...Case, boolean][] = [
      ['GET', blob, {}, true],
      ['HEAD', blob, {}, true],
      ['GET', '/azure/acct/models/md5/without.bin', {}, true],
      ['HEAD', '/azure/acct/models/md5/without.bin', { 'x-ms-range': 'bytes=0-9' }, true],
      ['GET', blob, { 'x-ms-range': 'bytes=0-33554431', 'x-ms-version': '2025-01-05' }, true],
      ['GET', blob, { Range: 'bytes=1000-70999' }, true],
      ['GET', blob, { Range: 'bytes=0-0', 'x-ms-range': `bytes=${CHUNK - 10}-${CHUNK + 9}` }, true],
      ['HEAD', blob, { 'x-ms-range': 'bytes=0-9' }, true],
      ['GET', blob, { 'x-ms-range': 'bytes=0-0,5-9' }, true], // one range at most: the whole blob
      ['GET', blob, { 'If-None-Match': etag }, true],
      ['GET', blob, { 'If-Match': etag, 'x-ms-range': 'bytes=0-9' }, true],
      ['GET', blob, { Range: 'bytes=0-99', 'If-Range': '"other"' }, true],
      ['GET', blob, { 'x-ms-range-get-content-md5': 'false', 'x-ms-range': 'bytes=0-9' }, true],
      ['GET', blob, { 'x-ms-range-get-content-md5': 'true', 'x-ms-range': 'bytes=0-9' }, false],
      ['HEAD', blob, { 'x-ms-range-get-content-md5': 'true' }, false], // 400 OutOfRangeInput
      ['GET', blob, { 'If-Match': '"other"' }, false], // 412
      ['GET', blob, { 'x-ms-range': 'bytes=99999999-' }, false], // 416 InvalidRange
      ['GET', blob, { 'If-Modified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, false],
      ['GET', `${blob}?snapshot=2025-01-01T00:00:00.0000000Z`, {}, false], // UnsupportedQueryParameter
      ['GET', `${blob}?timeout=30`, {}, true], // the SDKs' timeout: ignored by the door
      ['GET', '/azure/acct/models/md5/missing.bin', {}, false], // BlobNotFound
      ['GET', '/azure/acct/models?restype=container&comp=list&prefix=md5/', {}, false],
      ['GET', '/azure/acct/models/md5/', {}, false],
      ['DELETE', blob, {}, false],
    ];
    for (const [m, p, h] of cases) {
      await raw(js.url, m, p, h);
      await raw(native.url, m, p, h);
    }
    for (const [m, p, h, fast] of cases) {
      const before = await fastHits(native);
      const a = await raw(js.url, m, p, h);
      const b = await raw(native.url, m, p, h);
      const what = `${m} ${p} ${JSON.stringify(h)}`;
      expect(b.head, what).toEqual(a.head);
      expect(b.body, what).toBe(a.body);
      expect((await fastHits(native)) - before, what).toBe(fast ? 1 : 0);
    }

    // Generated requests: the same answers; most of the blob reads among them answered natively.
    const generated = generate(400, etag);
    const before = await fastHits(native);
    for (const [m, p, h] of generated) {
      const a = await raw(js.url, m, p, h);
      const b = await raw(native.url, m, p, h);
      const what = `${m} ${p} ${JSON.stringify(h)}`;
      expect(b.head, what).toEqual(a.head);
      expect(b.body, what).toBe(a.body);
    }
    expect((await fastHits(native)) - before).toBeGreaterThan(100);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });
});
