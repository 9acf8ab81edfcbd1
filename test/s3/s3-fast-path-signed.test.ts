/**
 * Signed S3 reads on the native door's fast path (docs/native-http-door.md
 * "Signed S3 reads"): two real nodes with auth over one origin, one with the
 * JavaScript door, one with the native door. boto3 with a token as its secret
 * reads the same objects from both (HeadObject, GetObject whole and ranged, a
 * presigned SigV4 URL whole and ranged) and gets the same failures (a wrong
 * secret, an expired presigned URL, a bucket out of the token's scope); once
 * filled, the native node verifies the signed reads on its I/O threads
 * (weightcache_s3_signed_fastpath_total{result="verified"} moves) and leaves
 * every failure to JavaScript ({result="declined"}). Then raw requests signed
 * by the project's own signer get the same status, headers in the same order
 * (Date aside, the request id masked to its form) and bytes from both doors,
 * each asserted native or not.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../src/auth/tokens.js';
import { presignedQuery, signedHeaders, UNSIGNED_PAYLOAD } from '../../src/s3/sigv4.js';
import { seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startBothDoors } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { exchangeLines, type SentAnswer } from '../harness/raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const files: Record<string, Buffer> = {
  'llama/model-00001.safetensors': randomBytes(3 * 1024 * 1024 + 4321),
  'llama/config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
};
const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;
const token = `signed-${randomBytes(16).toString('hex')}`;
const scoped = `scoped-${randomBytes(16).toString('hex')}`;

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

const signed = (n: NodeProcess, result: string) =>
  n.metric('weightcache_s3_signed_fastpath_total', { result });
const hits = (n: NodeProcess) => n.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });

describe.skipIf(!run)('signed S3 reads on the native fast path', { timeout: CLIENT_TEST_MS }, () => {
  let js: NodeProcess;
  let native: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(files);
    const dir = mkdtempSync(join(tmpdir(), 'wc-s3-signed-'));
    writeFileSync(join(dir, 'tokens'), `${token}\n${scoped} datasets\n`);
    const config = (door: 'js' | 'native') => ({
      http: { door, threads: 1 },
      origin: { type: 'fs', fs: { root } },
      cache: { chunkSize: '256KiB' },
      auth: { tokensFile: join(dir, 'tokens') },
    });
    [js, native] = await startBothDoors(config);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([js?.kill(), native?.kill()]);
  });

  it('boto3 gets the same reads and failures from both; once filled, signed reads are verified natively', async () => {
    const keys = Object.keys(files);
    const reads = (n: NodeProcess) =>
      runPythonJson<ClientOutput>(
        'main',
        join(here, 'boto3_signed.py'),
        [`${n.url}/s3`, keyIdOf(token), token, keyIdOf(scoped), scoped, ...keys],
        { timeoutMs: 300_000 },
      );
    const fromJs = await reads(js);
    const first = await reads(native); // fills (misses go to JavaScript)
    const verified = await signed(native, 'verified');
    const declined = await signed(native, 'declined');
    const second = await reads(native);
    expect(first).toEqual(fromJs);
    expect(second).toEqual(fromJs);
    for (const k of keys) {
      expect(second[k].whole, k).toBe(sha(files[k]!));
      expect(second[k].range, k).toBe(sha(files[k]!.subarray(10, 70010)));
      expect(second[k].presigned, k).toMatchObject({ status: 200, sha: sha(files[k]!) });
      expect(second[k].presigned_range, k).toMatchObject({
        status: 206,
        sha: sha(files[k]!.subarray(0, 100)),
      });
    }
    expect(second.wrong_secret).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(second.wrong_secret_head).toMatchObject({ status: 403 });
    expect(second.out_of_scope).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect(second.expired_presigned.status).toBe(403);
    expect(second.expired_presigned.body).toContain('request has expired');
    // Per key a HEAD, 2 GetObjects and 2 presigned GETs: all verified and answered on the I/O thread now;
    // the 4 failures (wrong secret twice, out of scope, expired) were each left to JavaScript.
    expect((await signed(native, 'verified')) - verified).toBeGreaterThanOrEqual(keys.length * 5);
    expect((await signed(native, 'declined')) - declined).toBe(4);
    expect(await signed(js, 'verified')).toBe(0);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('raw signed requests get the same answers from both doors, verified ones natively', async () => {
    const key = 'llama/model-00001.safetensors';
    const path = `/s3/models/${key}`;
    // A request signed for a node's Host (the port differs between the two nodes).
    type Case = {
      what: string;
      method?: string;
      path?: string;
      secret?: string;
      keyId?: string;
      headers?: Record<string, string>;
      query?: Array<[string, string]>;
      presign?: { expires: number; ageS?: number; extra?: Array<[string, string]> };
      ageS?: number;
      native: boolean;
    };
    const request = (url: string, c: Case): [string, string, Record<string, string>] => {
      const host = new URL(url).host;
      const method = c.method ?? 'GET';
      const p = c.path ?? path;
      const credentials = { accessKeyId: c.keyId ?? keyIdOf(token), secretAccessKey: c.secret ?? token };
      if (c.presign) {
        const q = presignedQuery({
          method,
          host,
          uri: p,
          query: c.presign.extra ?? [],
          region: 'us-east-1',
          service: 's3',
          credentials,
          now: new Date(Date.now() - (c.presign.ageS ?? 0) * 1000),
          expiresSeconds: c.presign.expires,
        });
        const qs = q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        return [method, `${p}?${qs}`, { Host: host, ...c.headers }];
      }
      const query = c.query ?? [];
      const h = signedHeaders({
        method,
        host,
        uri: p,
        query,
        headers: Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
        payloadHash: UNSIGNED_PAYLOAD,
        region: 'us-east-1',
        service: 's3',
        credentials,
        now: new Date(Date.now() - (c.ageS ?? 0) * 1000),
      });
      const qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      return [method, qs ? `${p}?${qs}` : p, { Host: host, ...h }];
    };
    const cases: Case[] = [
      { what: 'GET whole', native: true },
      { what: 'HEAD', method: 'HEAD', native: true },
      { what: 'GET x-id', query: [['x-id', 'GetObject']], native: true },
      { what: 'GET range', headers: { Range: 'bytes=1000-70999' }, native: true },
      { what: 'GET small file', path: '/s3/models/llama/config.json', native: true },
      { what: 'presigned', presign: { expires: 300 }, native: true },
      { what: 'presigned range', presign: { expires: 300 }, headers: { Range: 'bytes=5-9' }, native: true },
      { what: 'wrong secret', secret: `${token}x`, native: false },
      { what: 'unknown key', keyId: '0123456789abcdef0123', native: false },
      { what: 'out of scope', keyId: keyIdOf(scoped), secret: scoped, native: false },
      { what: 'expired presigned', presign: { expires: 60, ageS: 3600 }, native: false },
      { what: 'presigned wrong secret', presign: { expires: 60 }, secret: `${token}x`, native: false },
      {
        what: 'presigned response-content-type',
        presign: { expires: 60, extra: [['response-content-type', 'text/plain']] },
        native: false,
      },
      { what: 'versionId', query: [['versionId', '1']], native: false },
      { what: 'missing key', path: '/s3/models/llama/missing.bin', native: false },
    ];
    const mask = (x: Buffer) =>
      x
        .toString('latin1')
        .replace(/<RequestId>[0-9A-F]{16}</g, '<RequestId>_<')
        .replace(/<ServerTime>[^<]*</g, '<ServerTime>_<');
    // Warm: the objects filled on both nodes.
    for (const c of cases) {
      await raw(js.url, ...request(js.url, c));
      await raw(native.url, ...request(native.url, c));
    }
    for (const c of cases) {
      const before = await hits(native);
      const a = await raw(js.url, ...request(js.url, c));
      const b = await raw(native.url, ...request(native.url, c));
      expect(b.status, c.what).toBe(a.status);
      expect(b.head, c.what).toEqual(a.head);
      expect(mask(b.body), c.what).toBe(mask(a.body));
      expect((await hits(native)) - before, c.what).toBe(c.native ? 1 : 0);
    }
    // Generated: both forms × GET/HEAD × every Range form × a conditional, compared whole; each
    // GET or HEAD of a range the S3 door answers (not a 416) is verified and answered natively.
    const etag = (await raw(js.url, ...request(js.url, { what: 'etag', method: 'HEAD', native: true }))).head
      .find((l) => l.startsWith('ETag:'))!
      .slice(6);
    const ranges = [undefined, 'bytes=0-0', 'bytes=100-', 'bytes=-100', 'bytes=0-0,5-9', 'bytes=99999999-'];
    const generated: Case[] = [];
    for (const method of ['GET', 'HEAD'])
      for (const presign of [undefined, { expires: 120 }])
        for (const range of ranges)
          for (const cond of [{}, { 'If-None-Match': etag }] as Array<Record<string, string>>) {
            const headers: Record<string, string> = { ...cond, ...(range ? { Range: range } : {}) };
            generated.push({
              what: `${method} ${presign ? 'presigned' : 'header'} ${JSON.stringify(headers)}`,
              method,
              headers,
              ...(presign ? { presign } : {}),
              native: range !== 'bytes=99999999-' || 'If-None-Match' in cond,
            });
          }
    const before = await hits(native);
    let expected = 0;
    for (const c of generated) {
      const a = await raw(js.url, ...request(js.url, c));
      const b = await raw(native.url, ...request(native.url, c));
      expect(b.status, c.what).toBe(a.status);
      expect(b.head, c.what).toEqual(a.head);
      expect(mask(b.body), c.what).toBe(mask(a.body));
      if (c.native && c.method === 'GET') expected++;
    }
    expect((await hits(native)) - before).toBeGreaterThanOrEqual(expected);
    const unsigned = await raw(native.url, 'GET', path, { Host: new URL(native.url).host });
    expect(unsigned.status).toBe(403);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });
});
