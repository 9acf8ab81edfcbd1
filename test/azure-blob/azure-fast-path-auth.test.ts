/**
 * The Azure Blob door's reads on the native door's fast path with auth on
 * (docs/native-http-door.md "Azure SAS and SharedKey reads"): two real nodes
 * with one tokens file over one origin, one with the JavaScript door, one
 * with the native door. SharedKey, service, container and account SAS and
 * bearer reads are verified and answered natively, and every failure — a
 * wrong key, expired, a skewed clock, a missing permission, spr=https, sip, a
 * token scoped elsewhere, no credentials — gets the same status, headers in
 * the same order and bytes from both (the JavaScript door's answer);
 * azure-storage-blob's own SharedKey reads are answered natively once filled.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedKeyString } from '../../src/azure-blob/shared-key.js';
import { seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startBothDoors } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { fastHits, raw } from './exchange.js';

const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;
const CHUNK = 256 * 1024;

const TOKEN = 'azure-fast-sas-token-0123456789abcdef';
const SCOPED = 'azure-fast-scoped-token-0123456789abcdef';

/** A SAS query as azure-storage-blob signs one (string-to-sign of src/azure-blob/shared-key.ts), for account `acct`. */
function sas(
  kind: 'b' | 'c' | 'account',
  o: { key?: string; sp?: string; st?: string; se?: string; spr?: string; sip?: string; blob?: string } = {},
): string {
  const p: Record<string, string> = {
    sv: '2025-01-05',
    sp: o.sp ?? 'r',
    se: o.se ?? iso(Date.now() + 600_000),
  };
  if (o.st) p.st = o.st;
  if (o.spr) p.spr = o.spr;
  if (o.sip) p.sip = o.sip;
  const q = (n: string) => p[n] ?? '';
  let toSign: string;
  if (kind === 'account') {
    Object.assign(p, { ss: 'b', srt: 'sco' });
    toSign = ['acct', q('sp'), q('ss'), q('srt'), q('st'), q('se'), q('sip'), q('spr'), q('sv'), '', ''].join(
      '\n',
    );
  } else {
    p.sr = kind;
    const resource = `/blob/acct/models${kind === 'b' ? `/${o.blob ?? 'llama/a.bin'}` : ''}`;
    toSign = [
      q('sp'),
      q('st'),
      q('se'),
      resource,
      '',
      q('sip'),
      q('spr'),
      q('sv'),
      kind,
      '',
      '',
      '',
      '',
      '',
      '',
      '',
    ].join('\n');
  }
  p.sig = createHmac('sha256', o.key ?? TOKEN)
    .update(toSign)
    .digest('base64');
  return Object.entries(p)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
}

/** `headers` with x-ms-date and a SharedKey Authorization as shared-key.ts computes it for `method path`. */
function sharedKey(
  method: string,
  path: string,
  headers: Record<string, string>,
  o: { key?: string; account?: string; date?: number } = {},
): Record<string, string> {
  const h = { 'x-ms-date': new Date(o.date ?? Date.now()).toUTCString(), ...headers };
  const byName = new Map<string, string[]>();
  for (const [k, v] of Object.entries(h))
    byName.set(k.toLowerCase(), [...(byName.get(k.toLowerCase()) ?? []), v]);
  const toSign = sharedKeyString({
    method,
    path: path.split('?')[0]!,
    query: [...new URLSearchParams(path.split('?')[1] ?? '')],
    header: (n) => byName.get(n) ?? [],
    headerNames: () => [...byName.keys()],
    account: 'acct',
    container: 'models',
    blob: '',
    clientAddress: null,
    secure: false,
  });
  const sig = createHmac('sha256', o.key ?? TOKEN)
    .update(toSign)
    .digest('base64');
  return { ...h, Authorization: `SharedKey ${o.account ?? 'acct'}:${sig}` };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

describe.skipIf(!run)('Azure Blob door on the native fast path, auth on', { timeout: CLIENT_TEST_MS }, () => {
  let js: NodeProcess;
  let native: NodeProcess;
  const data = randomBytes(3 * CHUNK + 99);
  beforeAll(async () => {
    const root = seedOrigin({ 'llama/a.bin': data });
    const tokensFile = join(root, '..', 'azure-tokens');
    writeFileSync(tokensFile, `${TOKEN}\n${SCOPED} datasets\n`, { mode: 0o600 });
    [js, native] = await startBothDoors((door) => ({
      http: { door, threads: 1 },
      origin: { type: 'fs', fs: { root } },
      cache: { chunkSize: '256KiB' },
      auth: { tokensFile, openMetrics: true },
    }));
  }, 300_000);
  afterAll(async () => {
    await Promise.all([js?.kill(), native?.kill()]);
  });

  it('SharedKey, SAS and bearer reads are verified natively; every failure is the JavaScript door answer', async () => {
    const blob = '/azure/acct/models/llama/a.bin';
    const hour = 3_600_000;
    // [target, headers, answered natively once warm]
    const cases: [string, Record<string, string>, boolean][] = [
      [`${blob}?${sas('b')}`, {}, true],
      [`${blob}?${sas('c', { sp: 'rl' })}`, { 'x-ms-range': 'bytes=5-300000' }, true],
      [`${blob}?${sas('account', { sp: 'rl' })}`, { 'x-ms-version': '2025-01-05' }, true],
      [
        `${blob}?${sas('b', { st: iso(Date.now() - hour), spr: 'https,http' })}`,
        { Range: 'bytes=-10' },
        true,
      ],
      [blob, { Authorization: `Bearer ${TOKEN}` }, true],
      [`${blob}?${sas('b', { key: 'not-a-token-of-this-node-0123456789' })}`, {}, false], // AuthenticationFailed
      [`${blob}?${sas('b', { se: iso(Date.now() - hour) })}`, {}, false], // expired
      [`${blob}?${sas('b', { st: iso(Date.now() + hour) })}`, {}, false], // not yet valid
      [`${blob}?${sas('c', { sp: 'l' })}`, {}, false], // AuthorizationPermissionMismatch
      [`${blob}?${sas('b', { blob: 'llama/other.bin' })}`, {}, false],
      [`${blob}?${sas('b', { spr: 'https' })}`, {}, false], // AuthorizationProtocolMismatch
      [`${blob}?${sas('b', { sip: '10.1.2.3' })}`, {}, false], // AuthorizationSourceIPMismatch
      [`${blob}?${sas('b', { sip: '127.0.0.1' })}`, {}, false], // allowed, checked by JavaScript
      [`${blob}?${sas('b', { key: SCOPED })}`, {}, false], // a token scoped to datasets
      [`${blob}?${sas('b')}&snapshot=2025-01-01T00:00:00Z`, {}, false],
      [blob, { Authorization: `Bearer ${SCOPED}` }, false],
      [blob, { Authorization: 'SharedKey acct:c2lnbmF0dXJl', 'x-ms-date': new Date().toUTCString() }, false],
      [blob, {}, false], // NoAuthenticationInformation
    ];
    // SharedKey, signed per method (the method is in the string-to-sign).
    const signed = (method: string): [string, Record<string, string>, boolean][] => [
      [blob, sharedKey(method, blob, { 'x-ms-version': '2025-01-05', 'x-ms-client-request-id': 'c1' }), true],
      [blob, sharedKey(method, blob, { 'x-ms-range': 'bytes=100-299999', 'X-Ms-Meta-A': ' x ' }), true],
      [blob, sharedKey(method, blob, { Range: 'bytes=7-9', 'If-None-Match': '"nope"' }), true],
      [blob, sharedKey(method, blob, {}, { key: 'not-a-token-of-this-node-0123456789' }), false],
      [blob, sharedKey(method, blob, {}, { account: 'other' }), false],
      [blob, sharedKey(method, blob, {}, { date: Date.now() - 2 * hour }), false], // skewed
      [blob, sharedKey(method, blob, {}, { key: SCOPED }), false],
      [`${blob}?timeout=30`, sharedKey(method, `${blob}?timeout=30`, {}), true],
      [`${blob}?comp=metadata`, sharedKey(method, `${blob}?comp=metadata`, {}), false],
    ];
    for (const [p, h] of cases) {
      await raw(js.url, 'GET', p, h);
      await raw(native.url, 'GET', p, h);
    }
    const verdicts = (result: string) => native.metric('weightcache_azure_signed_fastpath_total', { result });
    const [verified, declined] = [await verdicts('verified'), await verdicts('declined')];
    for (const method of ['GET', 'HEAD']) {
      for (const [p, h, fast] of [...cases, ...signed(method)]) {
        const before = await fastHits(native);
        const a = await raw(js.url, method, p, h);
        const b = await raw(native.url, method, p, h);
        const what = `${method} ${p} ${JSON.stringify(h)}`;
        expect(b.head, what).toEqual(a.head);
        expect(b.body, what).toBe(a.body);
        expect((await fastHits(native)) - before, what).toBe(fast ? 1 : 0);
        if (fast && method === 'GET') expect(a.status, what).toBeLessThan(300);
      }
    }
    // Per method: 9 valid reads (5 cases, 4 SharedKey) verified and answered natively, the 18 failures
    // declined by the native verifier (and answered by JavaScript).
    expect((await verdicts('verified')) - verified).toBe(18);
    expect((await verdicts('declined')) - declined).toBe(36);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('azure-storage-blob with the token as its account key: once filled, its SharedKey reads are answered natively', async () => {
    const key = Buffer.from(TOKEN).toString('base64');
    const get = (n: NodeProcess) =>
      runPythonJson<ClientOutput>(
        'main',
        join(here, 'azure_client.py'),
        [
          'get',
          `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${key};BlobEndpoint=${n.url}/azure/acct`,
          'llama/a.bin',
        ],
        { timeoutMs: CLIENT_TEST_MS },
      );
    const fromJs = await get(js);
    expect(fromJs).toEqual({
      size: data.length,
      sha: createHash('sha256').update(data).digest('hex'),
      range_sha: createHash('sha256').update(data.subarray(100, 1100)).digest('hex'),
      timeout_sha: createHash('sha256').update(data).digest('hex'),
    });
    expect(await get(native)).toEqual(fromJs); // fills
    const hits = await fastHits(native);
    expect(await get(native)).toEqual(fromJs);
    // Get Blob Properties and three Get Blobs (one with ?timeout=30), each SharedKey-signed by the SDK:
    // verified natively.
    expect((await fastHits(native)) - hits).toBeGreaterThanOrEqual(4);
  });
});
