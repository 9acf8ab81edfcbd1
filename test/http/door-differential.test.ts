/**
 * The native door and the JavaScript door answer alike (docs/http-api.md,
 * "The native door"): two real node processes over one origin, one with
 * http.door: js and one with http.door: native, get the same few thousand
 * generated requests (ranges of every form, conditionals, ?version= pins,
 * tokens and scopes, HEAD, absolute-form, bad targets, bad syntax and
 * request-smuggling forms), each on its own connection, and must give the
 * same status, the same headers (Date aside; a multipart boundary is random)
 * and the same bytes, and both close or both keep the connection.
 *
 * One exception, by design: a request the HTTP parser itself refuses (before
 * there is a request object) is refused by each door's own parser — node's
 * llhttp or the native parser — with the same status and code but in its own
 * words; for those the message text is not compared.
 */
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { RawConnection } from '../harness/raw-http.js';

const TOKEN_ALL = 'a'.repeat(32);
const TOKEN_MODELS = 'b'.repeat(32);
const ADMIN = 'c'.repeat(32);
const SIZE_A = 100_000;
/** Several 1 MiB chunks (the harness's cache.chunkSize) and a short last one. */
const SIZE_BIG = 3 * 2 ** 20 + 12_345;
const MiB = 2 ** 20;

let js: NodeProcess;
let native: NodeProcess;
let etag = '';
let etagBig = '';

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

beforeAll(async () => {
  const shared = mkdtempSync(join(tmpdir(), 'wc-diff-'));
  const origin = join(shared, 'origin');
  const files: Array<[string, Buffer]> = [
    ['models/a.bin', bytes(SIZE_A, 1)],
    ['models/dir x/b.bin', bytes(3000, 2)],
    ['other/c.bin', bytes(5000, 3)],
    ['models/empty', Buffer.alloc(0)],
    ['models/big.bin', bytes(SIZE_BIG, 4)],
    ['models/cfg.json', Buffer.from('{"a": 1}\n')],
  ];
  const when = new Date('2025-01-02T03:04:05Z');
  for (const [name, data] of files) {
    mkdirSync(join(origin, name, '..'), { recursive: true });
    writeFileSync(join(origin, name), data);
    utimesSync(join(origin, name), when, when);
  }
  writeFileSync(join(shared, 'tokens'), `${TOKEN_ALL}\n${TOKEN_MODELS} models\n`);
  writeFileSync(join(shared, 'admin'), `${ADMIN}\n`);
  const config = (door: string) => ({
    http: { door, threads: 2 },
    origin: { type: 'fs', fs: { root: origin } },
    auth: { tokensFile: join(shared, 'tokens'), adminTokensFile: join(shared, 'admin') },
  });
  [js, native] = await Promise.all([
    startNodeProcess({ config: config('js'), timeoutMs: 60_000 }),
    startNodeProcess({ config: config('native'), timeoutMs: 60_000 }),
  ]);
  const probe = await exchange(
    js,
    get('/v1/objects/models/a.bin', { Authorization: `Bearer ${TOKEN_ALL}` }),
    true,
  );
  etag = probe.headers.etag ?? '';
  expect(etag).not.toBe('');
  const big = await exchange(
    js,
    get('/v1/objects/models/big.bin', { Authorization: `Bearer ${TOKEN_ALL}` }),
    true,
  );
  etagBig = big.headers.etag ?? '';
}, 120_000);

afterAll(async () => {
  await Promise.all([js?.kill(), native?.kill()]);
});

interface Seen {
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

function get(target: string, headers: Record<string, string> = {}, method = 'GET'): string {
  const h = { Host: 'cache', ...headers };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

async function exchange(node: NodeProcess, raw: string, head: boolean): Promise<Seen> {
  const c = await RawConnection.open(Number(new URL(node.url).port));
  try {
    c.send(raw);
    const a = await c.read({ head, timeoutMs: 20_000 });
    const closed = await c.waitClosed(a.headers.connection === 'close' ? 5_000 : 50);
    const headers = { ...a.headers };
    delete headers.date;
    const norm = (s: string) => s.replace(/wc-[0-9a-f]{24}/g, 'wc-BOUNDARY');
    for (const k of Object.keys(headers)) headers[k] = norm(headers[k]!);
    return { status: a.status, headers, body: norm(a.body.toString('latin1')), closed };
  } finally {
    c.close();
  }
}

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

function generate(n: number): Array<{ raw: string; head: boolean; what: string }> {
  const r = rng(15);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (max: number) => Math.floor(r() * max);
  const targets = [
    '/v1/objects/models/a.bin',
    '/v1/objects/models/a.bin',
    '/v1/objects/models/dir%20x/b.bin',
    '/v1/objects/other/c.bin',
    '/v1/objects/models/empty',
    '/v1/objects/models/missing.bin',
    '/v1/objects/models/%61.bin',
    'http://cache/v1/objects/models/a.bin',
    'HTTP://Cache:8420/v1/objects/models/a.bin?x=1',
    'http://cache',
    '/v1/objects/models//a.bin',
    '/v1/objects/models/../a.bin',
    '/v1/objects/models/%2e%2e/a.bin',
    '/v1/objects/models/%zz',
    '/v1/objects/models/a%5Cb',
    '/v1/objects/models/a.bin#frag',
    '/v1/objects/models/a.bin?version=%22bogus%22',
    '/healthz',
    '/readyz',
    '/v1/nothing',
    '/V1/OBJECTS/models/a.bin',
    '/v1/prefetch/0123456789abcdef',
    'ftp://cache/x',
    'http://user@cache/x',
    `/${'x'.repeat(8200)}`,
  ];
  const ranges = () =>
    pick([
      `bytes=${int(SIZE_A)}-${int(SIZE_A)}`,
      `bytes=0-${int(SIZE_A)}`,
      `bytes=-${int(2 * SIZE_A)}`,
      `bytes=${int(2 * SIZE_A)}-`,
      'bytes=0-0,10-19,5-14',
      `bytes=0-9,${int(SIZE_A)}-`,
      'bytes=abc',
      'items=0-1',
      'bytes=5-1',
      'bytes=-0',
      'bytes= 0-9',
      `bytes=${Array.from({ length: 30 }, (_, i) => `${i * 10}-${i * 10 + 4}`).join(',')}`,
    ]);
  const out: Array<{ raw: string; head: boolean; what: string }> = [];
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.12) {
      // Syntax every parser must refuse; request smuggling forms among them.
      const bad = pick([
        'GET / HTTP/1.1\r\nHost: cache\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'POST /v1/prefetch HTTP/1.1\r\nHost: cache\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
        'GET / HTTP/1.1\r\nHost: cache\r\nX: a\r\n b\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: cache\r\nBad Name: x\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: cache\r\nX: a\rb\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: cache\r\nContent-Length: -1\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: cache\r\nTransfer-Encoding: gzip, chunked\r\nTransfer-Encoding: identity\r\n\r\n',
        'GET / HTTP/2.0\r\nHost: cache\r\n\r\n',
        'GET\t/ HTTP/1.1\r\nHost: cache\r\n\r\n',
        'G@T / HTTP/1.1\r\nHost: cache\r\n\r\n',
        'GET / HTTP/1.1\r\nHost : cache\r\n\r\n',
        'POST /v1/prefetch HTTP/1.1\r\nHost: cache\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      ]);
      out.push({ raw: bad, head: false, what: 'bad syntax' });
      continue;
    }
    const method = kind < 0.7 ? 'GET' : kind < 0.85 ? 'HEAD' : pick(['POST', 'DELETE', 'PUT', 'OPTIONS']);
    const target = method === 'OPTIONS' && r() < 0.3 ? '*' : pick(targets);
    const headers: Record<string, string> = {};
    const auth = r();
    if (auth < 0.55) headers.Authorization = `Bearer ${TOKEN_ALL}`;
    else if (auth < 0.75) headers.Authorization = `Bearer ${TOKEN_MODELS}`;
    else if (auth < 0.85) headers.Authorization = `Bearer ${'z'.repeat(32)}`;
    else if (auth < 0.9) headers.Authorization = 'Basic abc';
    if (r() < 0.5) headers.Range = ranges();
    const cond = r();
    if (cond < 0.1) headers['If-None-Match'] = etag;
    else if (cond < 0.15) headers['If-None-Match'] = '"other", *';
    else if (cond < 0.25) headers['If-Match'] = pick([etag, '"nope"', '*']);
    else if (cond < 0.35) headers['If-Range'] = pick([etag, '"nope"', 'Wed, 01 Jan 2025 00:00:00 GMT']);
    else if (cond < 0.4) headers['If-Modified-Since'] = pick(['Thu, 02 Jan 2025 03:04:05 GMT', 'garbage']);
    let t = target;
    if (r() < 0.15 && t.startsWith('/v1/objects/')) {
      t += `${t.includes('?') ? '&' : '?'}version=${encodeURIComponent(pick([etag, etag.slice(1, -1), 'v0']))}`;
    }
    let raw = get(t, headers, method);
    if (r() < 0.05) raw = raw.replace('HTTP/1.1', 'HTTP/1.0').replace('Host: cache\r\n', '');
    if (r() < 0.05) raw = raw.replace('Host: cache\r\n', 'Host: cache\r\nHost: other\r\n');
    if (r() < 0.03) raw = raw.replace('Host: cache\r\n', '');
    out.push({ raw, head: method === 'HEAD', what: `${method} ${t.slice(0, 80)}` });
  }
  return out;
}

/**
 * One door's HTTP parser refused it (before there is a request object): the
 * other door may have refused it in its router instead (target.ts), with a
 * more precise code and keeping the connection. Same status required.
 */
function parserRefusal(a: Seen, b: Seen): boolean {
  const parser = (s: Seen) => /^\{"code":"[A-Z_]+","message":"malformed HTTP request/.test(s.body);
  return parser(a) || parser(b) || (a.status >= 400 && (a.closed || b.closed));
}

/**
 * Requests shaped like the fast path's (docs/native-http-door.md, "The fast
 * path"): GET and HEAD of objects, one range of every form (and some that
 * are not), conditionals, pins, tokens in and out of scope, Connection: close.
 */
function generateHits(n: number): Array<{ raw: string; head: boolean; what: string }> {
  const r = rng(1515);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (max: number) => Math.floor(r() * max);
  const out: Array<{ raw: string; head: boolean; what: string }> = [];
  for (let i = 0; i < n; i++) {
    const big = r() < 0.6;
    const size = big ? SIZE_BIG : SIZE_A;
    const tag = big ? etagBig : etag;
    const target = big
      ? '/v1/objects/models/big.bin'
      : pick(['/v1/objects/models/a.bin', '/v1/objects/models/cfg.json']);
    const c = int(3);
    const range = pick([
      undefined,
      undefined,
      `bytes=${int(size)}-`,
      `bytes=-${1 + int(size)}`,
      `bytes=${c * MiB}-${(c + 1) * MiB - 1}`,
      `bytes=${int(MiB)}-${int(MiB) + 65_535}`,
      `bytes=${int(size)}-${int(size) + int(3 * MiB)}`,
      `bytes=0-0`,
      `bytes=00010-0020`,
      `bytes=${size + 5}-`,
      'bytes=0-9,20-29',
      'bytes=0-9,5-20',
      'Bytes = 0-99',
      'bytes=x-1',
    ]);
    const headers: Record<string, string> = {};
    const auth = r();
    if (auth < 0.75) headers.Authorization = `Bearer ${pick([TOKEN_ALL, TOKEN_MODELS, ADMIN])}`;
    else if (auth < 0.85) headers.Authorization = `bearer   ${TOKEN_MODELS}  `;
    else if (auth < 0.92) headers.Authorization = `Bearer ${'z'.repeat(32)}`;
    if (range !== undefined) headers.Range = range;
    const cond = r();
    if (cond < 0.08) headers['If-None-Match'] = pick([tag, `W/${tag}`, `"x", ${tag}`, '*', '"x", *']);
    else if (cond < 0.14) headers['If-Match'] = pick([tag, `"x", ${tag}`, '*', '"nope"', `W/${tag}`]);
    else if (cond < 0.2) headers['If-Range'] = pick([tag, `W/${tag}`, '"nope"']);
    if (r() < 0.05) headers.Connection = 'close';
    if (r() < 0.1) headers['User-Agent'] = 'diff/1';
    let t = target;
    if (r() < 0.1) t += `?version=${pick([tag.slice(1, -1), tag, '"v0"'])}`;
    const method = r() < 0.85 ? 'GET' : 'HEAD';
    out.push({
      raw: get(t, headers, method),
      head: method === 'HEAD',
      what: `${method} ${t} ${JSON.stringify(headers)}`,
    });
  }
  return out;
}

describe('native door vs JavaScript door', () => {
  it('answers 1,000 hit-shaped requests alike, most of them on the fast path (X-Cache-Source too)', async () => {
    // Warm both: every chunk of both objects in DRAM, the names bound.
    for (const node of [js, native]) {
      for (const t of [
        '/v1/objects/models/big.bin',
        '/v1/objects/models/a.bin',
        '/v1/objects/models/cfg.json',
      ])
        await exchange(node, get(t, { Authorization: `Bearer ${TOKEN_ALL}` }), false);
    }
    const hitsBefore = await native.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
    const requests = generateHits(1000);
    const diffs: string[] = [];
    let served = 0;
    for (let i = 0; i < requests.length; i += 8) {
      const batch = requests.slice(i, i + 8);
      const answers = await Promise.all(
        batch.map(
          async (q) => [await exchange(js, q.raw, q.head), await exchange(native, q.raw, q.head)] as const,
        ),
      );
      for (const [k, [a, b]] of answers.entries()) {
        if ([200, 206, 304].includes(a.status)) served++;
        try {
          expect(b).toEqual(a);
        } catch {
          diffs.push(
            `${batch[k]!.what}: js ${a.status} ${JSON.stringify(a.headers)} | native ${b.status} ${JSON.stringify(b.headers)}`,
          );
        }
      }
    }
    expect(diffs.slice(0, 10)).toEqual([]);
    const hits =
      (await native.metric('weightcache_http_fastpath_requests_total', { result: 'hit' })) - hitsBefore;
    console.log(`fast path: ${hits} of ${served} answers 200/206/304 (of ${requests.length} requests)`);
    // Pins of another version, If-Match lists that fail and multi-range requests go to JavaScript by design.
    expect(hits).toBeGreaterThan(0.7 * served);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  }, 600_000);

  it('answers 2,000 generated requests alike: status, headers (Date aside), bytes, connection kept or closed', async () => {
    const requests = generate(2000);
    const diffs: string[] = [];
    let compared = 0;
    const statuses = new Map<number, number>();
    // Refused by both with one status, but in other words or keeping the connection on one side only.
    const known = new Set<string>();
    for (let i = 0; i < requests.length; i += 8) {
      const batch = requests.slice(i, i + 8);
      const answers = await Promise.all(
        batch.map(
          async (q) => [await exchange(js, q.raw, q.head), await exchange(native, q.raw, q.head)] as const,
        ),
      );
      for (const [k, [a, b]] of answers.entries()) {
        const q = batch[k]!;
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        compared++;
        if (parserRefusal(a, b)) {
          const code = (s: Seen) => (JSON.parse(s.body || '{}') as { code?: string }).code;
          if (a.status !== b.status) {
            diffs.push(`${q.what}: refusal js ${a.status} ${code(a)} vs native ${b.status} ${code(b)}`);
          } else if (code(a) !== code(b) || a.closed !== b.closed) {
            known.add(
              `${a.status} js ${code(a)}${a.closed ? ' closed' : ''} / native ${code(b)}${b.closed ? ' closed' : ''}`,
            );
          }
          continue;
        }
        // Which tier served a read depends on what the read-ahead finished by then; the bytes may not differ.
        delete a.headers['x-cache-source'];
        delete b.headers['x-cache-source'];
        try {
          expect(b).toEqual(a);
        } catch {
          diffs.push(
            `${q.what}: js ${a.status} ${JSON.stringify(a.headers)} ${a.body.slice(0, 120)} | native ${b.status} ${JSON.stringify(b.headers)} ${b.body.slice(0, 120)}`,
          );
        }
      }
    }
    console.log(`compared ${compared} answers; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    console.log(`refused alike, worded or closed differently: ${[...known].join('; ')}`);
    expect(diffs.slice(0, 20)).toEqual([]);
    // The generator reaches every kind of answer it is meant to.
    for (const s of [200, 206, 304, 400, 401, 403, 404, 412, 416])
      expect(statuses.get(s) ?? 0).toBeGreaterThan(0);
  }, 600_000);
});
