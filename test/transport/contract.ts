/**
 * The Transport contract: every backend (the native TCP transport today; an
 * RDMA one later) runs this same suite, so the cluster and coherence can use
 * any of them alike. It covers what they rely on: registered messages both
 * ways on one connection, exactly one answer per request, error codes carried
 * across, chunk reads verified by CRC32C, timeouts that cancel, aborts, and
 * failing fast when the other side goes away. A backend's own test file adds
 * what is specific to it (wire bytes, zero copy, the addon's limits).
 *
 * Server and clients run in this process, on loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { CacheError } from '../../src/errors/cache-error.js';
import type { ChunkPayload, Transport, TransportListener, TransportPeer } from '../../src/transport/index.js';
import { Messages } from '../../src/transport/index.js';
import { RemoteError } from '../../src/transport/messages.js';
import { until } from '../harness/until.js';
import { chunkBytes, testChunk } from './pattern.js';

/** Message types only this suite uses (any type a part has not claimed works alike). */
const ECHO = 0x70;
const FAIL = 0x71;
const HANG = 0x72;
const CALLBACK = 0x73;
const ASK_BACK = 0x74;

const quiet = { info() {}, warn() {} };
const MiB = 1024 * 1024;

export function transportContract(label: string, transport: Transport): void {
  describe(`Transport contract: ${label}`, () => {
    let server: TransportListener;
    let dir: string;
    /** Signals of HANG requests, to see them aborted. */
    const hung: AbortSignal[] = [];
    /** Closed after each test. */
    const clients: TransportPeer[] = [];

    const connect = (o: { messages?: Messages; timeoutMs?: number; nodeId?: string } = {}) => {
      const c = transport.connect({
        host: '127.0.0.1',
        port: server.address.port,
        timeoutMs: o.timeoutMs ?? 5000,
        logger: quiet,
        ...(o.messages ? { messages: o.messages } : {}),
        ...(o.nodeId ? { nodeId: o.nodeId } : {}),
      });
      clients.push(c);
      return c;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'wc-transport-contract-'));
      const file = join(dir, 'chunk');
      const fileChunk = testChunk('file/a', 0, 1 * MiB);
      writeFileSync(file, Buffer.concat([Buffer.alloc(100), chunkBytes(fileChunk, 0, 1 * MiB)]));
      server = await transport.listen({
        host: '127.0.0.1',
        port: 0,
        logger: quiet,
        handler: {
          async readChunk(name, offset, length): Promise<ChunkPayload> {
            if (name.key === 'missing') throw new CacheError('NOT_FOUND', `no chunk ${name.key}`);
            if (name.key === 'file/a') return { kind: 'file', path: file, offset: 100 + offset, length };
            const data = Buffer.from(chunkBytes(name, offset, length));
            return { kind: 'buffer', data, crc32c: crc32c(data) };
          },
          stat: async (n) => ({ ...n, etag: 'v1', size: 3, lastModified: new Date(1_700_000_000_000) }),
        },
      });
      server.messages.register(ECHO, 'ECHO', {
        decode: (meta) => meta,
        serve: async (meta) => Buffer.concat([Buffer.from('echo:'), meta]),
      });
      server.messages.register(FAIL, 'FAIL', {
        decode: (meta) => meta.toString(),
        serve: async (code) => {
          throw new CacheError(code as 'OVERLOADED', `asked to fail with ${code}`);
        },
      });
      server.messages.register(HANG, 'HANG', {
        decode: () => undefined,
        serve: (_q, { signal }) => {
          hung.push(signal);
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        },
      });
      // Asks the caller back on its own connection, and answers with what it said plus who it is.
      server.messages.register(CALLBACK, 'CALLBACK', {
        decode: (meta) => meta,
        serve: async (meta, { from, signal }) => {
          const r = await from.channel.request(ASK_BACK, meta, { signal, timeoutMs: 5000 });
          return Buffer.from(`${from.nodeId}:${r.meta.toString()}`);
        },
      });
    });

    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });

    afterAll(async () => {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers a registered request with its handler’s meta, many at once, each to its own request', async () => {
      const c = connect();
      const answers = await Promise.all(
        Array.from({ length: 600 }, (_, i) => c.request(ECHO, Buffer.from(String(i)))),
      );
      answers.forEach((r, i) => {
        expect(r.type).toBe(ECHO);
        expect(r.meta.toString()).toBe(`echo:${i}`);
      });
    });

    it('answers a type nobody registered UNSUPPORTED, and the connection keeps serving', async () => {
      const c = connect();
      const err = await c.request(0x7e, Buffer.from('?')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect(err).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/frame type 126/) });
      expect((await c.request(ECHO, Buffer.from('x'))).meta.toString()).toBe('echo:x');
    });

    it('carries a handler’s error code across as a RemoteError (an answer, not a failure to reach)', async () => {
      const c = connect();
      for (const code of ['OVERLOADED', 'NOT_FOUND', 'ORIGIN_UNAVAILABLE'] as const) {
        const err = await c.request(FAIL, Buffer.from(code)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RemoteError);
        expect(err).toMatchObject({ code, message: expect.stringMatching(`asked to fail with ${code}`) });
      }
      const missing = await c.readChunk(testChunk('missing'), 0, 10).catch((e: unknown) => e);
      expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('reads chunk bytes from memory and from a file, whole and sub-range, CRC32C verified', async () => {
      const c = connect();
      const mem = testChunk('mem/a', 3);
      const whole = await c.readChunk(mem, 0, 4 * MiB);
      expect(whole.data.equals(chunkBytes(mem, 0, 4 * MiB))).toBe(true);
      expect(whole.crc32c).toBe(crc32c(whole.data));
      const part = await c.readChunk(mem, 12_345, 777);
      expect(part.data.equals(chunkBytes(mem, 12_345, 777))).toBe(true);
      expect(part.crc32c).toBe(crc32c(part.data));
      const file = testChunk('file/a', 0, 1 * MiB);
      const fromFile = await c.readChunk(file, 1000, 64 * 1024);
      expect(fromFile.data.equals(chunkBytes(file, 1000, 64 * 1024))).toBe(true);
      expect(fromFile.crc32c).toBe(crc32c(fromFile.data));
    });

    it('refuses a read outside its chunk before sending anything, with RANGE_NOT_SATISFIABLE', async () => {
      const c = connect();
      await expect(c.readChunk(testChunk('mem/a'), 4 * MiB - 5, 10)).rejects.toMatchObject({
        code: 'RANGE_NOT_SATISFIABLE',
      });
    });

    it('carries requests the other way on the same connection, to the client’s registered handler', async () => {
      const messages = new Messages();
      messages.register(ASK_BACK, 'ASK_BACK', {
        decode: (meta) => meta.toString(),
        serve: async (s) => Buffer.from(s.toUpperCase()),
      });
      const c = connect({ messages, nodeId: 'holder-7' });
      expect((await c.request(CALLBACK, Buffer.from('hi'))).meta.toString()).toBe('holder-7:HI');
      // A client that registered nothing answers UNSUPPORTED, carried back to the server's handler.
      const deaf = connect({ nodeId: 'deaf' });
      await expect(deaf.request(CALLBACK, Buffer.from('hi'))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    });

    it('times a request out, and the peer’s handler sees it cancelled', async () => {
      const c = connect({ timeoutMs: 5000 });
      const before = hung.length;
      const err = await c.request(HANG, Buffer.alloc(0), { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'PEER_UNAVAILABLE',
        message: expect.stringMatching(/no response within 200 ms/),
      });
      expect(err).not.toBeInstanceOf(RemoteError);
      await until(() => hung.length > before && hung[hung.length - 1]!.aborted);
      expect((await c.request(ECHO, Buffer.from('after'))).meta.toString()).toBe('echo:after');
    });

    it('rejects at once with the abort reason when the caller aborts, and the handler sees it', async () => {
      const c = connect();
      await c.request(ECHO, Buffer.alloc(0)); // connected
      const ac = new AbortController();
      const before = hung.length;
      const p = c.request(HANG, Buffer.alloc(0), { signal: ac.signal });
      await until(() => hung.length > before);
      ac.abort(new CacheError('SHUTTING_DOWN', 'caller gave up'));
      await expect(p).rejects.toMatchObject({ code: 'SHUTTING_DOWN', message: 'caller gave up' });
      await until(() => hung[hung.length - 1]!.aborted);
      const pre = new AbortController();
      pre.abort(new CacheError('SHUTTING_DOWN', 'already'));
      await expect(c.request(ECHO, Buffer.alloc(0), { signal: pre.signal })).rejects.toMatchObject({
        message: 'already',
      });
    });

    it('fails every pending request at once when the client closes, and refuses new ones', async () => {
      const c = connect();
      await c.request(ECHO, Buffer.alloc(0));
      const pending = Array.from({ length: 5 }, () => c.request(HANG, Buffer.alloc(0)));
      await c.close();
      for (const p of pending) await expect(p).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
      await expect(c.request(ECHO, Buffer.alloc(0))).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    });

    it('fails a request fast when nothing listens, without waiting out the timeout', async () => {
      const port = server.address.port;
      const other = await transport.listen({ host: '127.0.0.1', port: 0, logger: quiet });
      const freePort = other.address.port;
      await other.close();
      expect(freePort).not.toBe(port);
      const c = transport.connect({ host: '127.0.0.1', port: freePort, timeoutMs: 30_000, logger: quiet });
      clients.push(c);
      const started = Date.now();
      const err = await c.request(ECHO, Buffer.alloc(0)).catch((e: unknown) => e);
      expect(CacheError.is(err)).toBe(true);
      expect(err).not.toBeInstanceOf(RemoteError);
      expect(Date.now() - started).toBeLessThan(25_000);
    });

    it('a server that closes fails its clients’ requests in flight at once, as a failure to reach it', async () => {
      const s = await transport.listen({ host: '127.0.0.1', port: 0, logger: quiet, closeGraceMs: 200 });
      s.messages.register(HANG, 'HANG', {
        decode: () => undefined,
        serve: (_q, { signal }) =>
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      });
      s.messages.register(ECHO, 'ECHO', { decode: (m) => m, serve: async (m) => m });
      const c = transport.connect({
        host: '127.0.0.1',
        port: s.address.port,
        timeoutMs: 10_000,
        logger: quiet,
      });
      clients.push(c);
      await c.request(ECHO, Buffer.alloc(0));
      const p = c.request(HANG, Buffer.alloc(0)).catch((e: unknown) => e);
      await s.close();
      const err = await p;
      expect(CacheError.is(err)).toBe(true);
      // Its own answer (the aborted handler's) or the connection's end, whichever arrives first.
      expect(['SHUTTING_DOWN', 'PEER_UNAVAILABLE']).toContain((err as CacheError).code);
    });
  });
}
