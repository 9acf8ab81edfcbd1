/**
 * The S3 door's GetObject / HeadObject on the native door's fast path
 * (docs/native-http-door.md "The front doors on the fast path"): two real
 * nodes without auth over one origin, one with the JavaScript door, one with
 * the native door. boto3 reads the same objects from both (byte-exact, same
 * ETags and ranges), the second time on the native node answered by its I/O
 * threads; then the same raw requests (path- and virtual-host style, ranges,
 * conditionals, queries, missing keys, unknown buckets, listings) get the
 * same status, the same headers in the same order (Date aside; the request
 * id differs but has the same form) and the same bytes from both.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startBothDoors } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { exchangeLines, type SentAnswer } from '../harness/raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CHUNK = 256 * 1024;
const files: Record<string, Buffer> = {
  'llama/model-00001.safetensors': randomBytes(3 * 1024 * 1024 + 4321),
  'llama/config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
  'llama/tokenizer.model': randomBytes(200_000),
};
const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;

type Answer = SentAnswer;

/** One request on its own connection; header lines in order, Date left out, request ids masked. */
function raw(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return exchangeLines(url, method, target, headers, (l) =>
    l.replace(/^(x-amz-request-id): [0-9A-F]{16}$/i, '$1: <16 hex>'),
  );
}

const s3Hits = (n: NodeProcess) => n.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });

describe.skipIf(!run)('S3 door on the native fast path', { timeout: CLIENT_TEST_MS }, () => {
  let js: NodeProcess;
  let native: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(files);
    const config = (door: 'js' | 'native') => ({
      http: { door, threads: 1 },
      origin: { type: 'fs', fs: { root } },
      cache: { chunkSize: '256KiB' },
      s3: { baseDomain: 's3.test' },
    });
    [js, native] = await startBothDoors(config);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([js?.kill(), native?.kill()]);
  });

  it('boto3 reads the same objects from both; once filled, its GETs and HEADs are answered natively', async () => {
    const keys = Object.keys(files);
    const reads = (n: NodeProcess) =>
      runPythonJson<ClientOutput>('main', join(here, 'boto3_gets.py'), [`${n.url}/s3`, ...keys], {
        timeoutMs: 300_000,
      });
    const fromJs = await reads(js);
    const first = await reads(native); // fills (misses go to JavaScript)
    const hits = await s3Hits(native);
    const s3Reads = await native.metric('weightcache_object_reads_total', { door: 's3', source: 'dram' });
    const second = await reads(native);
    expect(first).toEqual(fromJs);
    expect(second).toEqual(fromJs);
    for (const k of keys) {
      expect(second[k].whole, k).toBe(sha(files[k]!));
      expect(second[k].download, k).toBe(sha(files[k]!));
      expect(second[k].range, k).toBe(sha(files[k]!.subarray(10, 70010)));
    }
    // Per key: a HEAD, 3 GetObjects and download_file's ranged GETs (4 parts for the 3 MiB shard; s3transfer
    // may HEAD first): every one answered natively now.
    const gets = keys.length * 3 + 4 + 2;
    expect((await s3Hits(native)) - hits).toBeGreaterThanOrEqual(keys.length + gets);
    expect(
      (await native.metric('weightcache_object_reads_total', { door: 's3', source: 'dram' })) - s3Reads,
    ).toBeGreaterThanOrEqual(gets);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('the same raw requests get the same answers from both doors, object reads natively', async () => {
    const key = 'llama/model-00001.safetensors';
    const path = `/s3/models/${key}`;
    const etag = (await raw(js.url, 'HEAD', path)).head.find((l) => l.startsWith('ETag:'))!.slice(6);
    const vhost = (u: string) => `models.s3.test:${new URL(u).port}`;
    // [method, path, headers, answered natively once warm]; a Host of 'vhost' is the node's virtual host.
    const cases: [string, string, Record<string, string>, boolean][] = [
      ['GET', path, {}, true],
      ['HEAD', path, {}, true],
      ['GET', `${path}?x-id=GetObject`, {}, true],
      ['GET', path, { Range: 'bytes=1000-70999' }, true],
      ['GET', path, { Range: `bytes=${CHUNK - 10}-${2 * CHUNK + 9}` }, true],
      ['GET', path, { Range: 'bytes=-100' }, true],
      ['GET', path, { Range: 'bytes=0-0,5-9' }, true], // S3 answers one range: the whole object
      ['GET', path, { 'If-None-Match': etag }, true],
      ['GET', path, { 'If-Match': etag, Range: 'bytes=0-9' }, true],
      ['GET', path, { Range: 'bytes=0-99', 'If-Range': etag }, true],
      [
        'GET',
        path,
        { 'X-Amz-Date': '20260101T000000Z', 'amz-sdk-invocation-id': 'x', 'User-Agent': 'Boto3' },
        true,
      ],
      ['GET', `/s3/models/llama/config.json`, {}, true],
      ['GET', `/s3/${key}`, { Host: 'vhost' }, true],
      ['GET', path, { 'If-Match': '"other"' }, false], // 412
      ['GET', path, { Range: 'bytes=99999999-' }, false], // 416 InvalidRange
      ['GET', path, { 'If-Modified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, false],
      ['GET', `${path}?response-content-type=text/plain`, {}, false],
      ['GET', `${path}?versionId=1`, {}, false], // 501
      ['GET', '/s3/models/llama/missing.bin', {}, false], // NoSuchKey
      ['GET', '/s3/Bad_Bucket!/x', {}, false],
      ['GET', '/s3/models?list-type=2&prefix=llama/', {}, false],
      ['GET', '/s3/models/llama/', {}, false],
      ['DELETE', path, {}, false],
    ];
    const hostFor = (u: string, h: Record<string, string>) =>
      h.Host === 'vhost' ? { ...h, Host: vhost(u) } : h;
    for (const [m, p, h] of cases) {
      await raw(js.url, m, p, hostFor(js.url, h));
      await raw(native.url, m, p, hostFor(native.url, h));
    }
    for (const [m, p, h, fast] of cases) {
      const before = await s3Hits(native);
      const a = await raw(js.url, m, p, hostFor(js.url, h));
      const b = await raw(native.url, m, p, hostFor(native.url, h));
      const what = `${m} ${p} ${JSON.stringify(h)}`;
      expect(b.head, what).toEqual(a.head);
      // Error documents carry the request id: the same form, another value.
      const mask = (x: Buffer) => x.toString('latin1').replace(/<RequestId>[0-9A-F]{16}</g, '<RequestId>_<');
      expect(mask(b.body), what).toBe(mask(a.body));
      expect((await s3Hits(native)) - before, what).toBe(fast ? 1 : 0);
    }
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });
});
