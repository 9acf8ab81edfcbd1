/**
 * The auth matrix over every request-target form, sent byte for byte over a
 * raw socket (no client normalises anything): whatever spelling a target
 * uses, routing and authorisation agree on which route it names, so a read
 * token never reaches an admin handler and a scoped token never reads
 * another container. Regression for issue 12 item 1 (`POST /v1/prefetch#x`
 * with a read token answered 202 and prefetched any container).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess, sumMetric, TEST_HTTP_DOOR } from '../harness/node-process.js';
import { rawExchange, rawRequest } from '../harness/raw-http.js';

const READER = 'reader-token-0123456789abcdef'; // container "models" only
const ADMIN = 'admin-token-0123456789abcdefgh';
let node: NodeProcess;
let port: number;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-targets-'));
  writeFileSync(join(dir, 'tokens'), `${READER} models\n`);
  writeFileSync(join(dir, 'admin'), `${ADMIN}\n`);
  for (const c of ['models', 'secret']) {
    mkdirSync(join(dir, 'origin', c), { recursive: true });
    writeFileSync(join(dir, 'origin', c, 'f.bin'), `bytes of ${c}`);
  }
  node = await startNodeProcess({
    dir,
    // openMetrics false: the default, which the harness opens for other tests.
    config: {
      auth: { tokensFile: join(dir, 'tokens'), adminTokensFile: join(dir, 'admin'), openMetrics: false },
    },
  });
  port = Number(new URL(node.url).port);
});
afterAll(async () => {
  await node?.kill();
});

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const PREFETCH_SECRET = JSON.stringify({ container: 'secret', prefix: '' });

async function ask(method: string, target: string, token: string | null, body = '') {
  const head = method === 'HEAD';
  const r = await rawExchange(
    port,
    rawRequest(method, target, { ...(token ? bearer(token) : {}), 'Content-Type': 'application/json' }, body),
    head,
  );
  const text = r.body.toString();
  const code = r.headers['content-type'] === 'application/json' && text ? JSON.parse(text).code : undefined;
  return { status: r.status, code, text, headers: r.headers };
}

async function listings(): Promise<number> {
  const r = await rawExchange(port, rawRequest('GET', '/metrics', bearer(ADMIN)));
  return sumMetric(r.body.toString(), 'weightcache_origin_requests_total', { op: 'list' });
}

describe('request targets: routing and authorisation read one parse', () => {
  it('a read token never reaches the prefetch handler, however the target is spelt', async () => {
    const before = await listings();
    const rows: Array<[string, number, string | undefined]> = [
      ['/v1/prefetch', 403, 'FORBIDDEN'],
      // A fragment is never part of a request target: refused, not stripped.
      ['/v1/prefetch#x', 400, 'BAD_REQUEST'],
      ['/v1/prefetch?#', 400, 'BAD_REQUEST'],
      ['/v1/prefetch?x=1#frag', 400, 'BAD_REQUEST'],
      ['http://cache/v1/prefetch#x', 400, 'BAD_REQUEST'],
      // Percent-encoded unreserved characters name the same route (RFC 3986 §6.2.2.2).
      ['/v1/%70refetch', 403, 'FORBIDDEN'],
      ['/%76%31/%70%72%65%66%65%74%63%68', 403, 'FORBIDDEN'],
      // absolute-form is accepted (RFC 9112 §3.2.2) and authorised like its origin-form.
      ['http://cache/v1/prefetch', 403, 'FORBIDDEN'],
      ['HTTP://CACHE:8420/v1/prefetch?x=1', 403, 'FORBIDDEN'],
      ['https://cache/v1/%70refetch', 403, 'FORBIDDEN'],
      // Encoded delimiters stay data: another (unknown) route.
      ['/v1/prefetch%23x', 404, 'NOT_FOUND'],
      ['/v1/prefetch%3Fx', 404, 'NOT_FOUND'],
      ['/v1%2fprefetch', 404, 'NOT_FOUND'],
      // Nothing is folded: case, trailing slash, parameters.
      ['/V1/PREFETCH', 404, 'NOT_FOUND'],
      ['/v1/Prefetch', 404, 'NOT_FOUND'],
      ['/v1/prefetch/', 404, 'NOT_FOUND'],
      ['/v1/prefetch;', 404, 'NOT_FOUND'],
      ['/v1/prefetch;x=1', 404, 'NOT_FOUND'],
      // Segments that normalisation would rewrite are refused.
      ['//v1/prefetch', 400, 'BAD_KEY'],
      ['/v1//prefetch', 400, 'BAD_KEY'],
      ['/v1/./prefetch', 400, 'BAD_KEY'],
      ['/v1/x/../prefetch', 400, 'BAD_KEY'],
      ['/v1/%2e/prefetch', 400, 'BAD_KEY'],
      ['/v1/x/%2E%2E/prefetch', 400, 'BAD_KEY'],
      ['/v1\\prefetch', 400, 'BAD_KEY'],
      ['/v1%5cprefetch', 400, 'BAD_KEY'],
      ['/v1/prefetch%00', 400, 'BAD_KEY'],
      ['/v1/pre%ZZfetch', 400, 'BAD_KEY'],
      ['/v1/pre%C3fetch', 400, 'BAD_KEY'], // not UTF-8
      // Other forms.
      ['*', 400, 'BAD_REQUEST'],
      ['cache:8420', 400, 'BAD_REQUEST'],
      ['v1/prefetch', 400, 'BAD_REQUEST'],
      ['http://user@cache/v1/prefetch', 400, 'BAD_REQUEST'],
      ['ftp://cache/v1/prefetch', 400, 'BAD_REQUEST'],
      ['http:///v1/prefetch', 400, 'BAD_REQUEST'],
      ['/v1/pr\u00e9fetch', 400, 'BAD_REQUEST'], // a raw non-ASCII byte
      ['/v1/prefetch\u0000', 400, 'BAD_REQUEST'], // a raw NUL: refused by the parser itself
      [`/v1/prefetch?${'a'.repeat(9000)}`, 414, 'URI_TOO_LONG'],
      // Past node's 16 KiB head limit on the JavaScript door; the native door's request line limit says 414.
      TEST_HTTP_DOOR === 'js'
        ? [`/v1/prefetch?${'a'.repeat(17_000)}`, 431, 'HEADERS_TOO_LARGE']
        : [`/v1/prefetch?${'a'.repeat(17_000)}`, 414, 'URI_TOO_LONG'],
    ];
    for (const [target, status, code] of rows) {
      const r = await ask('POST', target, READER, PREFETCH_SECRET);
      expect({ target: target.slice(0, 60), status: r.status, code: r.code }).toEqual({
        target: target.slice(0, 60),
        status,
        code,
      });
    }
    // The prefetch handler lists the origin first: nothing was listed.
    expect(await listings()).toBe(before);
  });

  it('an admin token is served through every accepted spelling of the route', async () => {
    for (const target of [
      '/v1/prefetch',
      'http://cache/v1/prefetch',
      '/v1/%70refetch',
      'HTTP://Cache:80/v1/prefetch?',
    ]) {
      const r = await ask('POST', target, ADMIN, JSON.stringify({ container: 'models', prefix: '' }));
      expect({ target, status: r.status }).toEqual({ target, status: 202 });
    }
  });

  it('invalidate and the Event Grid webhook: the same route whatever the spelling', async () => {
    const body = JSON.stringify({ container: 'secret', key: 'f.bin' });
    for (const [target, status] of [
      ['/v1/invalidate', 403],
      ['/v1/invalidate#x', 400],
      ['/v1/%69nvalidate', 403],
      ['http://cache/v1/invalidate', 403],
      ['/v1/invalidate/', 404],
    ] as const) {
      expect({ target, status: (await ask('POST', target, READER, body)).status }).toEqual({
        target,
        status,
      });
    }
    const events = JSON.stringify([
      {
        id: '1',
        eventType: 'Microsoft.Storage.BlobDeleted',
        subject: '/blobServices/default/containers/secret/blobs/f.bin',
        eventTime: new Date().toISOString(),
        data: {},
        dataVersion: '1',
      },
    ]);
    for (const target of ['/v1/events/azure', '/v1/events/%61zure', 'http://cache/v1/events/azure']) {
      expect({ target, status: (await ask('POST', target, READER, events)).status }).toEqual({
        target,
        status: 403,
      });
    }
  });

  it('objects and manifests: the container scope holds for every spelling', async () => {
    for (const [target, status] of [
      ['/v1/objects/models/f.bin', 200],
      ['http://cache/v1/objects/models/f.bin', 200],
      ['/v1/%6fbjects/models/f%2ebin', 200],
      ['/v1/objects/secret/f.bin', 403],
      ['/v1/%6fbjects/secret/f.bin', 403],
      ['/v1/objects/%73ecret/f.bin', 403],
      ['http://cache/v1/objects/secret/f.bin', 403],
      ['http://models/v1/objects/secret/f.bin', 403],
      ['/v1/objects/secret/f.bin#models', 400],
      ['/v1/objects/models/../secret/f.bin', 400],
      ['/v1/objects/models/%2e%2e/secret/f.bin', 400],
      ['/v1/manifests/secret/', 403],
      ['/v1/%6danifests/secret/', 403],
      ['http://cache/v1/manifests/secret/', 403],
      ['/v1/manifests/models/', 200],
    ] as const) {
      for (const method of ['GET', 'HEAD']) {
        if (method === 'HEAD' && target.includes('manifests')) continue;
        const r = await ask(method, target, READER);
        expect({ method, target, status: r.status }).toEqual({ method, target, status });
      }
    }
    const body = await ask('GET', 'http://cache/v1/objects/models/f.bin', READER);
    expect(body.text).toBe('bytes of models');
  });

  it('open routes stay open and /metrics needs a token unless auth.openMetrics opts in', async () => {
    for (const target of ['/healthz', '/%68ealthz', 'http://cache/healthz', '/readyz']) {
      expect({ target, status: (await ask('GET', target, null)).status }).toEqual({ target, status: 200 });
    }
    for (const target of ['/metrics', '/%6detrics', 'http://cache/metrics', '/healthz/', '/v1/status']) {
      const r = await ask('GET', target, null);
      expect({ target, status: r.status, code: r.code }).toEqual({
        target,
        status: 401,
        code: 'UNAUTHORIZED',
      });
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await ask('GET', '/metrics', READER)).status).toBe(200);
  });

  it('OPTIONS * is about the server; CONNECT is refused with the JSON error body', async () => {
    const star = await ask('OPTIONS', '*', null);
    expect(star.status).toBe(200);
    expect(star.headers.allow).toBe('GET, HEAD, POST, OPTIONS');
    const connectAnswer = await ask('CONNECT', 'cache:443', null);
    expect({ status: connectAnswer.status, code: connectAnswer.code }).toEqual({
      status: 400,
      code: 'BAD_REQUEST',
    });
  });
});
