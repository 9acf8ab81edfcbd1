import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { HttpOrigin } from '../../src/origin/http.js';
import type { ObjectInfo } from '../../src/origin/origin.js';
import { type HttpOriginServer, startHttpOriginServer } from '../harness/http-origin-server.js';
import { bytesOf, CONTAINER, collect, expectCode, originContract } from './contract.js';

originContract('http', async () => {
  const srv = await startHttpOriginServer();
  return {
    origin: new HttpOrigin({ baseUrl: srv.baseUrl, timeoutMs: 5_000 }),
    put: async (c, k, b) => srv.put(c, k, b),
    remove: async (c, k) => srv.remove(c, k),
    caps: { list: false },
    requests: () => srv.requests.total,
    teardown: () => srv.stop(),
  };
});

const TIMEOUT_MS = 600;
const SLACK_MS = 700;

describe('http origin: faults through a real server', () => {
  let srv: HttpOriginServer;
  let origin: HttpOrigin;
  const bytes = bytesOf(256 * 1024, 9);
  let v: ObjectInfo;
  const name = { container: CONTAINER, key: 'f/model.bin' };

  beforeAll(async () => {
    srv = await startHttpOriginServer();
    origin = new HttpOrigin({ baseUrl: srv.baseUrl, timeoutMs: TIMEOUT_MS });
    srv.put(CONTAINER, name.key, bytes);
    v = await origin.stat(name);
  });
  afterEach(() => srv.setFault({ mode: 'ok' }));
  afterAll(async () => {
    await origin.close();
    await srv.stop();
  });

  it('a server that is down is ORIGIN_UNAVAILABLE (connection refused)', async () => {
    const down = await startHttpOriginServer();
    await down.stop();
    const o = new HttpOrigin({ baseUrl: down.baseUrl, timeoutMs: TIMEOUT_MS });
    try {
      await expectCode(o.stat(name), 'ORIGIN_UNAVAILABLE');
      await expectCode(o.read(name, v, 0, 10), 'ORIGIN_UNAVAILABLE');
    } finally {
      await o.close();
    }
  });

  it('a server that stalls is ORIGIN_TIMEOUT within timeoutMs + slack', async () => {
    srv.setFault({ mode: 'stall' });
    for (const call of [
      () => origin.stat(name),
      () => origin.read(name, v, 0, 1024),
      () => origin.revalidate(v),
    ]) {
      const t0 = performance.now();
      await expectCode(call(), 'ORIGIN_TIMEOUT');
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    }
  });

  it('a caller abort ends a stalled call promptly with its AbortError', async () => {
    srv.setFault({ mode: 'stall' });
    for (const call of [
      (signal: AbortSignal) => origin.stat(name, { signal }),
      (signal: AbortSignal) => origin.read(name, v, 0, 1024, { signal }),
    ]) {
      const t0 = performance.now();
      await expect(call(AbortSignal.timeout(100))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(performance.now() - t0).toBeLessThan(TIMEOUT_MS - 100);
    }
    srv.setFault({ mode: 'ok' });
    expect((await origin.read(name, v, 0, 10)).equals(bytes.subarray(0, 10))).toBe(true);
  });

  it('a body that stalls midway is ORIGIN_TIMEOUT', async () => {
    // A raw server that sends headers and half the body, then goes silent.
    await withRawServer(
      (s) => {
        s.once('data', () => {
          s.write(
            `HTTP/1.1 206 Partial Content\r\nETag: "${v.etag}"\r\nContent-Range: bytes 0-999/${v.size}\r\nContent-Length: 1000\r\n\r\n`,
          );
          s.write(Buffer.alloc(500));
        });
      },
      async (baseUrl) => {
        const o = new HttpOrigin({ baseUrl, timeoutMs: TIMEOUT_MS });
        const t0 = performance.now();
        await expectCode(o.read(name, v, 0, 1000), 'ORIGIN_TIMEOUT');
        expect(performance.now() - t0).toBeLessThan(TIMEOUT_MS + SLACK_MS);
        await o.close();
      },
    );
  });

  it('a compressed (Content-Encoding) response is ORIGIN_BAD_RESPONSE', async () => {
    await withRawServer(
      (s) => {
        s.once('data', () => {
          s.end(
            `HTTP/1.1 206 Partial Content\r\nETag: "${v.etag}"\r\nContent-Encoding: gzip\r\nContent-Range: bytes 0-9/${v.size}\r\nContent-Length: 10\r\n\r\n0123456789`,
          );
        });
      },
      async (baseUrl) => {
        const o = new HttpOrigin({ baseUrl, timeoutMs: TIMEOUT_MS });
        await expectCode(o.read(name, v, 0, 10), 'ORIGIN_BAD_RESPONSE');
        await o.close();
      },
    );
  });

  it('a delayed but in-time answer succeeds', async () => {
    srv.setFault({ mode: 'ok', delayMs: TIMEOUT_MS / 3 });
    expect((await origin.read(name, v, 10, 100)).equals(bytes.subarray(10, 110))).toBe(true);
  });

  it('a body cut short and the socket closed is ORIGIN_BAD_RESPONSE, never partial bytes', async () => {
    srv.setFault({ mode: 'short-body', methods: ['GET'] });
    await expectCode(origin.read(name, v, 0, 100_000), 'ORIGIN_BAD_RESPONSE');
    srv.setFault({ mode: 'ok' });
    expect((await origin.read(name, v, 0, 100_000)).equals(bytes.subarray(0, 100_000))).toBe(true);
  });

  it('a body longer than asked is ORIGIN_BAD_RESPONSE', async () => {
    srv.setFault({ mode: 'long-body', methods: ['GET'] });
    await expectCode(origin.read(name, v, 0, 1000), 'ORIGIN_BAD_RESPONSE');
  });

  it('a wrong Content-Range is ORIGIN_BAD_RESPONSE', async () => {
    srv.setFault({ mode: 'wrong-content-range', methods: ['GET'] });
    await expectCode(origin.read(name, v, 100, 1000), 'ORIGIN_BAD_RESPONSE');
  });

  it('a lying ETag on the response is ORIGIN_BAD_RESPONSE', async () => {
    srv.setFault({ mode: 'wrong-etag', methods: ['GET'] });
    await expectCode(origin.read(name, v, 0, 1000), 'ORIGIN_BAD_RESPONSE');
  });

  it('500s are ORIGIN_UNAVAILABLE', async () => {
    srv.setFault({ mode: 'error-500' });
    await expectCode(origin.stat(name), 'ORIGIN_UNAVAILABLE');
    await expectCode(origin.read(name, v, 0, 10), 'ORIGIN_UNAVAILABLE');
    await expectCode(origin.revalidate(v), 'ORIGIN_UNAVAILABLE');
  });

  it('a connection closed before any answer is ORIGIN_UNAVAILABLE', async () => {
    srv.setFault({ mode: 'close-immediately' });
    await expectCode(origin.read(name, v, 0, 10), 'ORIGIN_UNAVAILABLE');
  });

  it('200 ignoring Range: refused for a part, accepted for the whole object', async () => {
    srv.setFault({ mode: 'ignore-range', methods: ['GET'] });
    srv.resetRequests();
    await expectCode(origin.read(name, v, 0, 1000), 'ORIGIN_BAD_RESPONSE');
    expect((await origin.read(name, v, 0, v.size)).equals(bytes)).toBe(true);
    expect(srv.requests.GET).toBe(2);
  });

  it('list is UNSUPPORTED', async () => {
    await expectCode(collect(origin.list(CONTAINER, '')), 'UNSUPPORTED');
  });

  it('keeps connections alive across reads', async () => {
    let connections = 0;
    await withRawProxy(
      srv.port,
      () => connections++,
      async (baseUrl) => {
        const o = new HttpOrigin({ baseUrl, timeoutMs: 5_000 });
        for (let i = 0; i < 20; i++) await o.read(name, v, i * 100, 100);
        await o.close();
      },
    );
    // Sequential reads may briefly see the first connection still finishing its response, so
    // undici can open a second; what matters is far fewer connections than reads.
    expect(connections).toBeLessThanOrEqual(2);
  });

  it('sends configured headers and keeps them out of the id', async () => {
    const o = new HttpOrigin({
      baseUrl: `${srv.baseUrl}/`,
      timeoutMs: 1000,
      headers: { Authorization: 'Bearer s3cret' },
    });
    expect(o.id).toBe(`http:${srv.baseUrl}`);
    expect((await o.stat(name)).etag).toBe(v.etag);
    await o.close();
  });

  it('stat and revalidate send Cache-Control: no-cache and Pragma: no-cache, over configured headers; reads do not', async () => {
    // The coherence protocol re-resolves an invalidated name through stat: an HTTP cache in
    // between must go to the origin. Reads are pinned to one version by If-Match instead.
    const o = new HttpOrigin({
      baseUrl: srv.baseUrl,
      timeoutMs: 1000,
      headers: { 'Cache-Control': 'max-age=600', Pragma: 'x-configured' },
    });
    const last = () => srv.seen.at(-1)!;
    const noCache = { 'cache-control': 'no-cache', pragma: 'no-cache' };
    await o.stat(name);
    expect(last()).toMatchObject({ method: 'HEAD', headers: noCache });
    expect(await o.revalidate(v)).toBe(v);
    expect(last()).toMatchObject({ method: 'HEAD', headers: { ...noCache, 'if-none-match': `"${v.etag}"` } });
    expect((await o.read(name, v, 0, 10)).equals(bytes.subarray(0, 10))).toBe(true);
    expect(last()).toMatchObject({
      method: 'GET',
      headers: { 'if-match': `"${v.etag}"`, 'cache-control': 'max-age=600', pragma: 'x-configured' },
    });
    await o.read(name, v, 0, 0); // the zero-length read's conditional HEAD is a read too
    expect(last()).toMatchObject({
      method: 'HEAD',
      headers: { 'if-match': `"${v.etag}"`, 'cache-control': 'max-age=600' },
    });
    await o.close();

    // Without configured headers, a read carries no Cache-Control at all.
    await origin.read(name, v, 0, 10);
    expect(last().method).toBe('GET');
    expect(last().headers['cache-control']).toBeUndefined();
    expect(last().headers.pragma).toBeUndefined();
  });

  it('a base URL with a path prefix puts objects below it', async () => {
    // {baseUrl}/{container}/{key} with baseUrl = .../weights: the server sees /weights/f/model.bin.
    const o = new HttpOrigin({ baseUrl: `${srv.baseUrl}/${CONTAINER}/`, timeoutMs: 1000 });
    expect(o.id).toBe(`http:${srv.baseUrl}/${CONTAINER}`);
    const w = await o.stat({ container: 'f', key: 'model.bin' });
    expect(w.etag).toBe(v.etag);
    expect((await o.read(w, w, 5, 10)).equals(bytes.subarray(5, 15))).toBe(true);
    await o.close();
  });

  it('rejects base URLs with credentials or a query', () => {
    for (const baseUrl of [
      'http://u:p@127.0.0.1:1',
      'http://127.0.0.1:1/?sig=x',
      'ftp://127.0.0.1',
      'nope',
    ]) {
      expect(() => new HttpOrigin({ baseUrl, timeoutMs: 1000 })).toThrow(CacheError);
    }
  });
});

describe('http origin: servers without ETag', () => {
  it('falls back to Last-Modified + size and reads with If-Unmodified-Since', async () => {
    const srv = await startHttpOriginServer({ etag: false });
    const o = new HttpOrigin({ baseUrl: srv.baseUrl, timeoutMs: 2000 });
    try {
      const key = { container: CONTAINER, key: 'lm/a.bin' };
      srv.put(CONTAINER, key.key, bytesOf(1000, 1));
      const v = await o.stat(key);
      expect(v.etag).toMatch(/^lm \d+-1000$/);
      expect((await o.read(v, v, 5, 10)).equals(bytesOf(1000, 1).subarray(5, 15))).toBe(true);
      expect(await o.revalidate(v)).toBe(v);
      expect(srv.seen.at(-1)!.headers).toMatchObject({
        'if-modified-since': expect.any(String),
        'cache-control': 'no-cache',
        pragma: 'no-cache',
      });
      await new Promise((r) => setTimeout(r, 1100)); // Last-Modified has 1 s resolution
      srv.put(CONTAINER, key.key, bytesOf(1000, 2));
      await expectCode(o.read(v, v, 0, 10), 'VERSION_CHANGED');
      expect((await o.revalidate(v)).etag).not.toBe(v.etag);
    } finally {
      await o.close();
      await srv.stop();
    }
  });

  it('refuses a server with neither ETag nor Last-Modified', async () => {
    const srv = await startHttpOriginServer({ etag: false, lastModified: false });
    const o = new HttpOrigin({ baseUrl: srv.baseUrl, timeoutMs: 2000 });
    try {
      srv.put(CONTAINER, 'x.bin', bytesOf(10, 1));
      const err = await expectCode(o.stat({ container: CONTAINER, key: 'x.bin' }), 'ORIGIN_BAD_RESPONSE');
      expect(err.message).toMatch(/must send a strong ETag or Last-Modified/);
    } finally {
      await o.close();
      await srv.stop();
    }
  });
});

/** A raw TCP server whose behaviour the test scripts byte by byte. */
async function withRawServer(
  onSocket: (s: Socket) => void,
  fn: (baseUrl: string) => Promise<void>,
): Promise<void> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    await fn(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A TCP pass-through in front of a real server, counting connections. */
async function withRawProxy(
  targetPort: number,
  onConnection: () => void,
  fn: (baseUrl: string) => Promise<void>,
): Promise<void> {
  const { connect } = await import('node:net');
  await withRawServer((client) => {
    onConnection();
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
  }, fn);
}
