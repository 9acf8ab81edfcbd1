/**
 * The HTTP entry points of invalidation (POST /v1/invalidate, POST and
 * OPTIONS /v1/events/azure) on a real HTTP server (startHttpServer), with the
 * coherence layer's `invalidate` replaced by a recorder: what is parsed,
 * refused, authenticated, deduplicated, and how outcomes map to statuses. The
 * invalidation itself, end to end, is tested in test/cli/invalidate.test.ts.
 */
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenSet } from '../../src/auth/tokens.js';
import { MAX_EVENT_DELIVERY_BYTES } from '../../src/coherence/event-grid.js';
import type {
  Invalidate,
  InvalidationResult,
  InvalidationSource,
  InvalidationTarget,
} from '../../src/coherence/invalidation.js';
import { CacheError } from '../../src/errors/cache-error.js';
import {
  EVENT_INVALIDATION_CONCURRENCY,
  EVENTS_SKIPPED_METRIC,
  MAX_INVALIDATE_BODY_BYTES,
} from '../../src/http/invalidate.js';
import { type HttpServer, type HttpServerOptions, startHttpServer } from '../../src/http/server.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { formatName } from '../../src/origin/names.js';
import type { Origin } from '../../src/origin/origin.js';
import type { ReadPath } from '../../src/read/read-path.js';
import {
  ceBlob as ceSample,
  egBlobCreated,
  egBlobDeleted,
  sub,
  VALIDATION,
} from '../coherence/event-grid-samples.js';
import { until } from '../harness/until.js';

const READ = 'read-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const TOKENS = TokenSet.of([{ token: READ }, { token: ADMIN, admin: true }]);
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

interface Call {
  target: InvalidationTarget;
  source: InvalidationSource;
  signal?: AbortSignal;
}

/** The seam: records every call and answers with `behaviour`. */
class Recorder {
  calls: Call[] = [];
  behaviour: (t: InvalidationTarget) => Promise<InvalidationResult> = async (t) => resultFor(t);
  readonly invalidate: Invalidate = (target, source, signal) => {
    this.calls.push({ target, source, ...(signal ? { signal } : {}) });
    return this.behaviour(target);
  };
  targets(): string[] {
    return this.calls.map((c) =>
      'key' in c.target ? formatName(c.target) : `${c.target.container}/${c.target.prefix}*`,
    );
  }
}

function resultFor(t: InvalidationTarget): InvalidationResult {
  return 'key' in t
    ? {
        container: t.container,
        key: t.key,
        version: { etag: '0x8DNEW', size: 42, lastModified: '2025-01-02T03:04:05.000Z' },
        names: 1,
        acked: 2,
        expired: 1,
        durationMs: 7,
      }
    : { container: t.container, prefix: t.prefix, names: 3, acked: 4, expired: 0, durationMs: 9 };
}

interface Started {
  server: HttpServer;
  url: string;
  recorder: Recorder;
  metrics: Metrics;
  logs: Array<Record<string, unknown>>;
}

async function start(o: { auth: boolean; invalidate?: boolean; idleTimeoutMs?: number }): Promise<Started> {
  const metrics = new Metrics();
  const recorder = new Recorder();
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const options: HttpServerOptions = {
    host: '127.0.0.1',
    port: 0,
    maxConnections: 100,
    idleTimeoutMs: o.idleTimeoutMs ?? 5000,
    log,
    metrics,
    // Not reached by these routes.
    objects: { readPath: {} as ReadPath, metrics, maxRanges: 16 },
    admin: {
      metrics,
      origin: {} as Origin,
      tiers: [],
      version: 'test',
      startedAt: new Date(),
      chunkSize: 1 << 20,
      ready: () => true,
      role: 'node',
      cluster: () => null,
    },
    ...(o.invalidate === false ? {} : { invalidate: recorder.invalidate }),
    ...(o.auth ? { auth: { tokens: TOKENS, openMetrics: true } } : {}),
  };
  const server = await startHttpServer(options);
  return { server, url: `http://127.0.0.1:${server.address.port}`, recorder, metrics, logs };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

/** A raw request: the target is sent as given, the body as given (a Buffer[] is sent chunked). */
function send(
  url: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: string | Buffer | Buffer[] } = {},
): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method, path, headers: o.headers ?? {}, agent: false },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text);
          } catch {
            // empty or not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    // A server may answer and close before the whole body went out.
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(err)));
    if (Array.isArray(o.body)) {
      for (const part of o.body) req.write(part);
      req.end();
    } else {
      req.end(o.body);
    }
  });
}

function postInvalidate(s: Started, body: unknown, headers: Record<string, string> = bearer(ADMIN)) {
  return send(s.url, 'POST', '/v1/invalidate', {
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// --- realistic Azure payloads (shared with the parser's tests) -------------------

const egBlob = (type: 'Created' | 'Deleted', subject: string) =>
  type === 'Created' ? egBlobCreated(subject) : egBlobDeleted(subject);
const ceBlob = (type: 'Created' | 'Deleted', subject: string) =>
  ceSample(`Microsoft.Storage.Blob${type}`, subject);

function deliveryHeaders(kind: 'eventgrid' | 'ce-single' | 'ce-batch', token: string | null = ADMIN) {
  return {
    'content-type':
      kind === 'eventgrid'
        ? 'application/json'
        : kind === 'ce-single'
          ? 'application/cloudevents+json; charset=utf-8'
          : 'application/cloudevents-batch+json; charset=utf-8',
    'aeg-event-type': 'Notification',
    'aeg-subscription-name': 'WEIGHTCACHE-INVALIDATE',
    'aeg-delivery-count': '0',
    ...(token ? bearer(token) : {}),
  };
}

function postEvents(s: Started, body: unknown, headers: Record<string, string>) {
  return send(s.url, 'POST', '/v1/events/azure', {
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

let s: Started;
let open: Started;

beforeAll(async () => {
  s = await start({ auth: true });
  open = await start({ auth: false });
});
afterAll(async () => {
  await s?.server.close(0);
  await open?.server.close(0);
});
beforeEach(() => {
  for (const x of [s, open]) {
    x.recorder.calls = [];
    x.recorder.behaviour = async (t) => resultFor(t);
    x.logs.length = 0;
  }
});

describe('POST /v1/invalidate', () => {
  it('invalidates a key and answers the InvalidationResult', async () => {
    const r = await postInvalidate(s, { container: 'models', key: 'llama/model-00001.safetensors' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual(resultFor({ container: 'models', key: 'llama/model-00001.safetensors' }));
    expect(s.recorder.calls).toEqual([
      {
        target: { container: 'models', key: 'llama/model-00001.safetensors' },
        source: 'http',
        signal: expect.any(AbortSignal),
      },
    ]);
  });

  it('invalidates a prefix, "" meaning the whole container', async () => {
    expect((await postInvalidate(s, { container: 'models', prefix: 'llama/' })).status).toBe(200);
    const all = await postInvalidate(s, { container: 'models', prefix: '' });
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ container: 'models', prefix: '', names: 3 });
    expect(s.recorder.calls.map((c) => c.target)).toEqual([
      { container: 'models', prefix: 'llama/' },
      { container: 'models', prefix: '' },
    ]);
  });

  it("labels the source 'cli' when the CLI says so, else 'http'", async () => {
    await postInvalidate(
      s,
      { container: 'c', key: 'k' },
      { ...bearer(ADMIN), 'x-weightcache-source': 'cli' },
    );
    await postInvalidate(
      s,
      { container: 'c', key: 'k' },
      { ...bearer(ADMIN), 'x-weightcache-source': 'other' },
    );
    expect(s.recorder.calls.map((c) => c.source)).toEqual(['cli', 'http']);
  });

  it('refuses bad bodies with 400 naming the field, before invalidating anything', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      ['not json', 'BAD_REQUEST', /body must be JSON/],
      ['', 'BAD_REQUEST', /body must be JSON/],
      [[], 'BAD_REQUEST', /JSON object/],
      [null, 'BAD_REQUEST', /JSON object/],
      [{ key: 'k' }, 'BAD_REQUEST', /"container" is missing/],
      [{ container: 7, key: 'k' }, 'BAD_REQUEST', /"container" must be a string/],
      [{ container: 'c' }, 'BAD_REQUEST', /"key" or "prefix" is missing/],
      [{ container: 'c', key: 'k', prefix: 'p/' }, 'BAD_REQUEST', /either "key" or "prefix", not both/],
      [{ container: 'c', key: 3 }, 'BAD_REQUEST', /"key" must be a string/],
      [{ container: 'c', prefix: null }, 'BAD_REQUEST', /"prefix" must be a string/],
      [{ container: 'c', key: 'k', version: 'x' }, 'BAD_REQUEST', /unknown field "version"/],
      [{ container: 'c', key: 'k', a: 1, b: 2 }, 'BAD_REQUEST', /unknown fields "a", "b"/],
      [{ container: 'c', key: '../../etc/passwd' }, 'BAD_KEY', /key has a '\.\.' path segment/],
      [{ container: 'c', key: 'a/./b' }, 'BAD_KEY', /'\.' path segment/],
      [{ container: 'c', key: '/abs' }, 'BAD_KEY', /must be relative/],
      [{ container: 'c', key: 'a\u0000b' }, 'BAD_KEY', /control character/],
      [{ container: 'c', key: '' }, 'BAD_KEY', /key is empty/],
      [{ container: 'c', prefix: 'a/../' }, 'BAD_KEY', /prefix has a '\.\.'/],
      [{ container: '../x', key: 'k' }, 'BAD_KEY', /container name/],
      [{ container: '', prefix: '' }, 'BAD_KEY', /container name is empty/],
    ];
    for (const [body, code, message] of cases) {
      const r = await postInvalidate(s, body);
      expect({ body, status: r.status, code: r.json.code }).toEqual({ body, status: 400, code });
      expect(r.json.message).toMatch(message);
    }
    // __proto__ as a JSON key is an own property, so it is an unknown field, not a prototype.
    const proto = await postInvalidate(s, '{"container":"c","key":"k","__proto__":{"x":1}}');
    expect(proto.json).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/"__proto__"/) });
    expect(s.recorder.calls).toEqual([]);
  });

  it('refuses an oversized body with 413, by Content-Length and when sent chunked', async () => {
    const big = JSON.stringify({ container: 'c', key: 'k'.repeat(MAX_INVALIDATE_BODY_BYTES) });
    const declared = await postInvalidate(s, big);
    expect(declared.status).toBe(413);
    expect(declared.json.code).toBe('TOO_LARGE');
    const chunked = await send(s.url, 'POST', '/v1/invalidate', {
      headers: bearer(ADMIN),
      body: [Buffer.from(big.slice(0, 10_000)), Buffer.from(big.slice(10_000))],
    });
    expect(chunked.status).toBe(413);
    expect(s.recorder.calls).toEqual([]);
  });

  it("maps the coherence layer's rejections to their statuses", async () => {
    const cases: Array<[CacheError, number]> = [
      [new CacheError('ORIGIN_UNAVAILABLE', 'the origin is down'), 502],
      [new CacheError('ORIGIN_TIMEOUT', 'the origin is slow'), 504],
      [new CacheError('OVERLOADED', 'the home is unreachable'), 503],
      [new CacheError('SHUTTING_DOWN', 'draining'), 503],
    ];
    for (const [err, status] of cases) {
      s.recorder.behaviour = async () => {
        throw err;
      };
      const r = await postInvalidate(s, { container: 'c', key: 'k' });
      expect({ status: r.status, json: r.json }).toEqual({
        status,
        json: { code: err.code, message: err.message },
      });
    }
  });

  it('aborts the invalidation when the client goes away', async () => {
    s.recorder.behaviour = (t) =>
      new Promise((_, reject) => {
        const signal = s.recorder.calls.at(-1)!.signal!;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        void t;
      });
    const u = new URL(s.url);
    const req = request({
      host: u.hostname,
      port: u.port,
      method: 'POST',
      path: '/v1/invalidate',
      headers: bearer(ADMIN),
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ container: 'c', key: 'k' }));
    await until(() => s.recorder.calls.length === 1, { stepMs: 5 });
    expect(s.recorder.calls[0]!.signal!.aborted).toBe(false);
    req.destroy();
    await until(() => s.recorder.calls[0]!.signal!.aborted, { stepMs: 5 });
  });

  it('needs an admin token: none → 401, a read token → 403, and no route variant slips past', async () => {
    const none = await postInvalidate(s, { container: 'c', key: 'k' }, {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(
      (await postInvalidate(s, { container: 'c', key: 'k' }, bearer('wrong-token-0123456789'))).status,
    ).toBe(401);
    const read = await postInvalidate(s, { container: 'c', key: 'k' }, bearer(READ));
    expect({ status: read.status, code: read.json.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    for (const path of [
      '/v1/invalidate/',
      '//v1/invalidate',
      '/v1//invalidate',
      '/v1/%69nvalidate',
      '/v1/x/../invalidate',
    ]) {
      const r = await send(s.url, 'POST', path, {
        headers: bearer(READ),
        body: '{"container":"c","key":"k"}',
      });
      expect({ path, ok: r.status === 200 }).toEqual({ path, ok: false });
    }
    expect(s.recorder.calls).toEqual([]);
    expect((await postInvalidate(s, { container: 'c', key: 'k' })).status).toBe(200);
  });

  it('waits for a slow invalidation longer than the idle timeout (it may wait out a lease term)', async () => {
    const slow = await start({ auth: false, idleTimeoutMs: 100 });
    try {
      slow.recorder.behaviour = async (t) => {
        await new Promise((r) => setTimeout(r, 400));
        return resultFor(t);
      };
      const r = await postInvalidate(slow, { container: 'c', key: 'k' }, {});
      expect(r.status).toBe(200);
      const e = await postEvents(
        slow,
        [egBlob('Deleted', sub('m', 'k'))],
        deliveryHeaders('eventgrid', null),
      );
      expect(e.json).toEqual({ invalidated: 1, ignored: 0, skipped: 0 });
    } finally {
      await slow.server.close(0);
    }
  });

  it('does not exist without an invalidate (e.g. a sidecar)', async () => {
    const none = await start({ auth: false, invalidate: false });
    try {
      expect((await postInvalidate(none, { container: 'c', key: 'k' })).status).toBe(404);
      expect(
        (await postEvents(none, [egBlob('Deleted', sub('m', 'k'))], deliveryHeaders('eventgrid'))).status,
      ).toBe(404);
    } finally {
      await none.server.close(0);
    }
  });
});

describe('POST /v1/events/azure: deliveries', () => {
  it('an Event Grid schema batch becomes one invalidation per distinct name, answered after all completed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    s.recorder.behaviour = async (t) => {
      await gate;
      return resultFor(t);
    };
    const batch = [
      egBlob('Created', sub('models', 'llama/model-00001.safetensors')),
      egBlob('Created', sub('models', 'llama/config.json')),
      { ...egBlob('Created', sub('models', 'llama/x')), eventType: 'Microsoft.Storage.BlobTierChanged' },
      egBlob('Deleted', sub('tokenizers', 'old.bin')),
      egBlob('Created', sub('models', 'llama/model-00001.safetensors')), // again: deduplicated
    ];
    let answered = false;
    const pending = postEvents(s, batch, deliveryHeaders('eventgrid')).then((r) => {
      answered = true;
      return r;
    });
    await until(() => s.recorder.calls.length === 3, { stepMs: 5 });
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(false);
    release();
    const r = await pending;
    expect({ status: r.status, json: r.json }).toEqual({
      status: 200,
      json: { invalidated: 3, ignored: 1, skipped: 0 },
    });
    expect(s.recorder.targets()).toEqual([
      'models/llama/model-00001.safetensors',
      'models/llama/config.json',
      'tokenizers/old.bin',
    ]);
    expect(new Set(s.recorder.calls.map((c) => c.source))).toEqual(new Set(['eventgrid']));
  });

  it('reads a single CloudEvent and a CloudEvents batch', async () => {
    const one = await postEvents(s, ceBlob('Created', sub('models', 'a.bin')), deliveryHeaders('ce-single'));
    expect(one.json).toEqual({ invalidated: 1, ignored: 0, skipped: 0 });
    const batch = await postEvents(
      s,
      [ceBlob('Created', sub('models', 'b.bin')), ceBlob('Deleted', sub('models', 'c/d.bin'))],
      deliveryHeaders('ce-batch'),
    );
    expect(batch.json).toEqual({ invalidated: 2, ignored: 0, skipped: 0 });
    expect(s.recorder.targets()).toEqual(['models/a.bin', 'models/b.bin', 'models/c/d.bin']);
  });

  it('skips and counts blob events naming no acceptable blob, invalidating the rest of the batch', async () => {
    const before = await s.metrics.total(s.metrics.registry.getSingleMetric(EVENTS_SKIPPED_METRIC) as never);
    const batch = [
      egBlob('Created', sub('models', '../../etc/passwd')),
      egBlob('Created', sub('models', 'good.bin')),
      egBlob('Deleted', '/blobServices/default/containers/models'),
      egBlob('Deleted', sub('.hidden', 'x')),
      { ...egBlob('Deleted', 'x'), subject: 42 },
    ];
    const r = await postEvents(s, batch, deliveryHeaders('eventgrid'));
    expect({ status: r.status, json: r.json }).toEqual({
      status: 200,
      json: { invalidated: 1, ignored: 0, skipped: 4 },
    });
    expect(s.recorder.targets()).toEqual(['models/good.bin']);
    const after = await s.metrics.total(s.metrics.registry.getSingleMetric(EVENTS_SKIPPED_METRIC) as never);
    expect(after - before).toBe(4);
    const metricsText = await (await fetch(`${s.url}/metrics`)).text();
    expect(metricsText).toMatch(new RegExp(`^${EVENTS_SKIPPED_METRIC} \\d+$`, 'm'));
    const warn = s.logs.find((l) => l.level === 40 && /skipped blob events/.test(String(l.msg)));
    expect(warn).toMatchObject({ skipped: 4 });
    expect((warn!.reasons as string[])[0]).toMatch(/^event 0 .*'\.\.' path segment/);
  });

  it('a delivery with only skipped events is still 200 (Event Grid never retries a 400)', async () => {
    const r = await postEvents(s, [egBlob('Deleted', sub('models', 'a//b'))], deliveryHeaders('eventgrid'));
    expect({ status: r.status, json: r.json }).toEqual({
      status: 200,
      json: { invalidated: 0, ignored: 0, skipped: 1 },
    });
    expect(s.recorder.calls).toEqual([]);
  });

  it('answers 503 when an invalidation fails, once those in flight settled, so that Event Grid retries', async () => {
    let settled = 0;
    s.recorder.behaviour = async (t) => {
      await new Promise((r) => setTimeout(r, 'key' in t && t.key === 'bad' ? 5 : 60));
      settled++;
      if ('key' in t && t.key === 'bad') throw new CacheError('ORIGIN_UNAVAILABLE', 'the origin is down');
      return resultFor(t);
    };
    const names = ['bad', ...Array.from({ length: 40 }, (_, i) => `ok-${i}`)];
    const r = await postEvents(
      s,
      names.map((k) => egBlob('Created', sub('models', k))),
      deliveryHeaders('eventgrid'),
    );
    expect(r.status).toBe(503);
    expect(r.json.code).toBe('ORIGIN_UNAVAILABLE');
    expect(r.json.message).toMatch(/1 of 41 invalidations failed \(models\/bad: the origin is down\)/);
    // Every invalidation started was awaited; after the failure no new one started.
    expect(settled).toBe(s.recorder.calls.length);
    expect(s.recorder.calls.length).toBeLessThan(names.length);
  });

  it(`runs at most ${EVENT_INVALIDATION_CONCURRENCY} invalidations at once`, async () => {
    let inFlight = 0;
    let most = 0;
    s.recorder.behaviour = async (t) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return resultFor(t);
    };
    const batch = Array.from({ length: 100 }, (_, i) => ceBlob('Deleted', sub('models', `f${i}`)));
    const r = await postEvents(s, batch, deliveryHeaders('ce-batch'));
    expect(r.json).toEqual({ invalidated: 100, ignored: 0, skipped: 0 });
    expect(most).toBe(EVENT_INVALIDATION_CONCURRENCY);
  });

  it('refuses structural garbage with 400: not JSON, not events, too many events', async () => {
    const cases: Array<[string, RegExp]> = [
      ['[{"eventType": ', /not JSON/],
      ['{"hello": "world"}', /JSON array of events/],
      ['[]', /no events/],
      ['[42]', /event 0 is number/],
      [JSON.stringify([{ subject: sub('m', 'k') }]), /no "eventType"/],
      [
        JSON.stringify(
          Array(5001).fill({ eventType: 'Microsoft.Storage.BlobDeleted', subject: sub('m', 'k') }),
        ),
        /5001 events, more than 5000/,
      ],
      [JSON.stringify([...VALIDATION, egBlob('Deleted', sub('m', 'k'))]), /must be the only event/],
    ];
    for (const [body, message] of cases) {
      const r = await postEvents(s, body, deliveryHeaders('eventgrid'));
      expect({ status: r.status, code: r.json.code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
      expect(r.json.message).toMatch(message);
    }
    expect(s.recorder.calls).toEqual([]);
  });

  it('refuses an oversized delivery with 413 before reading it all, by Content-Length and chunked', async () => {
    const big = Buffer.alloc(MAX_EVENT_DELIVERY_BYTES + 1, 0x20);
    const declared = await postEvents(s, big.toString(), deliveryHeaders('eventgrid'));
    expect({ status: declared.status, code: declared.json.code }).toEqual({ status: 413, code: 'TOO_LARGE' });
    const chunked = await send(s.url, 'POST', '/v1/events/azure', {
      headers: deliveryHeaders('eventgrid'),
      body: [big.subarray(0, 1 << 20), big.subarray(1 << 20)],
    });
    expect({ status: chunked.status, code: chunked.json.code }).toEqual({ status: 413, code: 'TOO_LARGE' });
  });
});

describe('POST|OPTIONS /v1/events/azure: handshakes and auth', () => {
  it('answers the Event Grid validation handshake without a token', async () => {
    const r = await postEvents(s, VALIDATION, {
      'content-type': 'application/json',
      'aeg-event-type': 'SubscriptionValidation',
    });
    expect({ status: r.status, json: r.json }).toEqual({
      status: 200,
      json: { validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' },
    });
    expect(s.recorder.calls).toEqual([]);
  });

  it('answers the CloudEvents OPTIONS handshake without a token', async () => {
    const r = await send(s.url, 'OPTIONS', '/v1/events/azure', {
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net', 'WebHook-Request-Rate': '120' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['webhook-allowed-origin']).toBe('eventgrid.azure.net');
    const bad = await send(s.url, 'OPTIONS', '/v1/events/azure', {
      headers: { 'WebHook-Request-Origin': 'a.net, b.net' },
    });
    expect({ status: bad.status, code: bad.json.code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
    const none = await send(s.url, 'OPTIONS', '/v1/events/azure');
    expect(none.status).toBe(400);
    expect(none.json.message).toMatch(/WebHook-Request-Origin/);
  });

  it('needs an admin token for a delivery: none or unknown → 401, a read token → 403', async () => {
    const body = [egBlob('Deleted', sub('models', 'k'))];
    const none = await postEvents(s, body, deliveryHeaders('eventgrid', null));
    expect({ status: none.status, code: none.json.code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const wrong = await postEvents(s, body, deliveryHeaders('eventgrid', 'wrong-token-0123456789'));
    expect(wrong.status).toBe(401);
    const read = await postEvents(s, body, deliveryHeaders('eventgrid', READ));
    expect({ status: read.status, code: read.json.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    // A single CloudEvent, and a delivery of only ignored or skipped events, are deliveries too.
    expect(
      (await postEvents(s, ceBlob('Created', sub('m', 'k')), deliveryHeaders('ce-single', null))).status,
    ).toBe(401);
    expect(
      (await postEvents(s, [{ ...body[0], eventType: 'Other' }], deliveryHeaders('eventgrid', null))).status,
    ).toBe(401);
    expect(s.recorder.calls).toEqual([]);
    expect((await postEvents(s, body, deliveryHeaders('eventgrid'))).status).toBe(200);
  });

  it('tells a caller without a token nothing about its body, and reads at most 16 KiB of it', async () => {
    for (const body of ['not json', '[]', JSON.stringify([{ ...VALIDATION[0], data: {} }])]) {
      const r = await postEvents(s, body, { 'content-type': 'application/json' });
      expect({ body, status: r.status }).toEqual({ body, status: 401 });
    }
    const big = JSON.stringify(Array(200).fill(egBlob('Deleted', sub('models', 'k'))));
    expect(big.length).toBeGreaterThan(16 * 1024);
    expect((await postEvents(s, big, { 'content-type': 'application/json' })).status).toBe(401);
    const chunked = await send(s.url, 'POST', '/v1/events/azure', {
      body: [Buffer.from(big.slice(0, 8000)), Buffer.from(big.slice(8000))],
    });
    expect(chunked.status).toBe(401);
    // The same with an admin token is a delivery.
    expect((await postEvents(s, big, deliveryHeaders('eventgrid'))).json).toEqual({
      invalidated: 1,
      ignored: 0,
      skipped: 0,
    });
  });

  it('other methods on the webhook path need a token like any route', async () => {
    expect((await send(s.url, 'GET', '/v1/events/azure')).status).toBe(401);
    expect((await send(s.url, 'GET', '/v1/events/azure', { headers: bearer(READ) })).status).toBe(404);
  });

  it('route variants of the webhook path get no exemption, and still need an admin token for events', async () => {
    // '/v1/events/%61zure' is the webhook route itself (one parse decides for routing and auth):
    // it answers the handshake and refuses events from a read token like the plain spelling.
    const same = await send(s.url, 'POST', '/v1/events/%61zure', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(VALIDATION),
    });
    expect(same.status).toBe(200);
    const sameRead = await send(s.url, 'POST', '/v1/events/%61zure', {
      headers: deliveryHeaders('eventgrid', READ),
      body: JSON.stringify([egBlob('Deleted', sub('models', 'k'))]),
    });
    expect(sameRead.status).toBe(403);
    const paths = ['/v1/events/azure/', '//v1/events/azure', '/v1/events/azure%2f', '/v1/x/../events/azure'];
    for (const path of paths) {
      const r = await send(s.url, 'POST', path, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(VALIDATION),
      });
      expect({ path, ok: r.status === 200 }).toEqual({ path, ok: false });
      const read = await send(s.url, 'POST', path, {
        headers: deliveryHeaders('eventgrid', READ),
        body: JSON.stringify([egBlob('Deleted', sub('models', 'k'))]),
      });
      expect({ path, ok: read.status === 200 }).toEqual({ path, ok: false });
    }
    expect(s.recorder.calls).toEqual([]);
  });

  it('without auth configured, deliveries need no token', async () => {
    const r = await postEvents(
      open,
      [egBlob('Deleted', sub('models', 'k'))],
      deliveryHeaders('eventgrid', null),
    );
    expect(r.json).toEqual({ invalidated: 1, ignored: 0, skipped: 0 });
    expect(open.recorder.targets()).toEqual(['models/k']);
  });
});
