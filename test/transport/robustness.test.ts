/**
 * Faults between real processes: peers that die mid-frame, restart, hang,
 * speak an old version, send garbage, or shut down with requests in flight.
 */

import { type AddressInfo, createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { binding } from '../../src/transport/binding.js';
import { TransportClient } from '../../src/transport/index.js';
import { decodeError, encodeError, encodeReadChunk } from '../../src/transport/messages.js';
import { FLAG_RESPONSE, FrameType } from '../../src/transport/protocol.js';
import { type PeerProcess, startPeer } from './harness.js';
import { chunkBytes, testChunk } from './pattern.js';
import { helloFrame, rawFrame } from './raw-frame.js';
import { rawConnect } from './raw-socket.js';

const MiB = 1024 * 1024;
const quiet = { info() {}, warn() {} };
const clients: TransportClient[] = [];
function client(port: number, o: Partial<ConstructorParameters<typeof TransportClient>[0]> = {}) {
  const c = new TransportClient({ host: '127.0.0.1', port, timeoutMs: 10_000, logger: quiet, ...o });
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('a peer that dies', () => {
  it('killed mid-frame: pending requests fail fast with the reason', async () => {
    const peer = await startPeer('half-frame-peer.ts');
    try {
      const c = client(peer.port, { connections: 1 });
      const started = Date.now();
      const read = c.readChunk(testChunk('buf/a'), 0, 4 * MiB);
      const err = await read.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CacheError);
      expect(err).toMatchObject({ code: 'PEER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/mid-frame \(\d+ of 4194304 payload bytes\)/);
      // Failing fast means on the close, long before the 10 s request timeout.
      expect(Date.now() - started).toBeLessThan(9000);
      // No leak: the half-filled 4 MiB receive buffer went back to the pool (this file's process
      // received no other payload before), and nothing is left queued or pinned.
      const s = binding().transportStats();
      expect(s.pooledBytes).toBeGreaterThanOrEqual(4 * MiB);
      expect(s.queuedBytes).toBe(0);
      expect(s.pinnedBuffers).toBe(0);
    } finally {
      await peer.kill();
    }
  });

  it('restarted on the same port: the next request reconnects', async () => {
    let peer = await startPeer('server.ts');
    const port = peer.port;
    const c = client(port, { connections: 2 });
    expect(
      (await c.readChunk(testChunk('buf/r'), 0, 1000)).data.equals(chunkBytes(testChunk('buf/r'), 0, 1000)),
    ).toBe(true);
    const hanging = c.readChunk(testChunk('hang'), 0, 10).catch((e: unknown) => e);
    await peer.kill('SIGKILL');
    expect(await hanging).toMatchObject({ code: 'PEER_UNAVAILABLE' });
    await expect(c.ping()).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
    peer = await startPeer('server.ts', { PORT: String(port) });
    try {
      const r = await c.readChunk(testChunk('buf/r'), 0, 4 * MiB);
      expect(r.data.equals(chunkBytes(testChunk('buf/r'), 0, 4 * MiB))).toBe(true);
    } finally {
      await peer.kill('SIGTERM');
    }
  });
});

describe('a client facing a server it cannot talk to', () => {
  it('fails requests with the server’s refusal when the handshake is refused', async () => {
    // A server from the future: refuses our versions with a connection-level ERROR, then closes.
    const future = createServer((sock) => {
      sock.once('data', () => {
        const meta = encodeError('BAD_REQUEST', 'unsupported protocol version 1..1; this server speaks 2..2');
        sock.end(rawFrame({ type: FrameType.ERROR, flags: FLAG_RESPONSE, version: 2, meta }));
      });
    });
    await new Promise<void>((r) => future.listen(0, '127.0.0.1', r));
    const port = (future.address() as AddressInfo).port;
    try {
      const err = await client(port)
        .ping()
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PEER_UNAVAILABLE' });
      expect((err as Error).message).toMatch(/peer ended the connection: BAD_REQUEST: .*speaks 2\.\.2/);
    } finally {
      future.close();
    }
  });

  it('resolves a host name, and fails cleanly on one that does not resolve', async () => {
    // Both ends resolve the same name the same way, whether it means 127.0.0.1 or ::1 here.
    const peer = await startPeer('server.ts', { HOST: 'localhost' });
    try {
      expect(await client(peer.port, { host: 'localhost' }).ping()).toBeGreaterThan(0);
    } finally {
      await peer.kill('SIGTERM');
    }
    await expect(client(1, { host: 'no-such-host.invalid' }).ping()).rejects.toThrow(
      /cannot resolve no-such-host/,
    );
  });

  it('fails fast when nothing listens', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await expect(client(port).ping()).rejects.toThrow(/connect failed: Connection refused/);
  });
});

describe('a server facing bad peers', () => {
  let peer: PeerProcess;
  beforeAll(async () => {
    peer = await startPeer('server.ts', { MAX_CONNECTIONS: '8' });
  });
  afterAll(async () => {
    await peer?.kill('SIGTERM');
  });

  const ping = rawFrame({ type: FrameType.PING, requestId: 1, meta: Buffer.alloc(8) });
  const cases: [string, Buffer[], RegExp][] = [
    ['bad magic', [Buffer.from('GET /v1/objects/c/model HTTP/1.1\r\nHost: x\r\n\r\n')], /bad magic/],
    [
      'header checksum',
      [helloFrame(), rawFrame({ type: FrameType.PING, requestId: 1, breakHeaderCrc: true })],
      /header checksum/,
    ],
    [
      'oversized payload',
      [helloFrame(), rawFrame({ type: FrameType.READ_CHUNK, requestId: 1, payloadLength: 2 ** 40 })],
      /exceeds maxFrameBytes/,
    ],
    ['frame type 0', [helloFrame(), rawFrame({ type: 0, requestId: 1 })], /frame type 0 is reserved/],
    [
      'reserved flags',
      [helloFrame(), rawFrame({ type: FrameType.PING, flags: 0x8, requestId: 1 })],
      /reserved flag/,
    ],
    ['frame before hello', [ping], /PING \(frame type 4\) before authentication/],
    [
      'AUTH before hello',
      [rawFrame({ type: FrameType.AUTH, meta: Buffer.alloc(32) })],
      /expected HELLO as the first frame/,
    ],
    ['truncated frame', [helloFrame(), ping.subarray(0, 20)], /mid-frame \(20 of 32 header bytes\)/],
    [
      'malformed meta',
      [helloFrame(), rawFrame({ type: FrameType.STAT, requestId: 1, meta: Buffer.from([9, 0, 1]) })],
      /meta truncated/,
    ],
  ];

  for (const [what, frames, reason] of cases) {
    it(`closes the connection on a ${what}, logs why, and keeps serving`, async () => {
      const raw = await rawConnect(peer.port);
      for (const f of frames) raw.sock.write(f);
      if (what === 'truncated frame') raw.sock.end();
      await raw.closed;
      await peer.waitForLine(reason);
      expect(await client(peer.port).ping()).toBeGreaterThan(0);
    });
  }

  it('closes a connection that never says HELLO', async () => {
    const raw = await rawConnect(peer.port);
    raw.sock.write(Buffer.from('WC'));
    await raw.closed;
    await peer.waitForLine(/no HELLO within 2000 ms/);
  });

  it('answers a read outside its chunk with RANGE_NOT_SATISFIABLE at the door, keeping the connection', async () => {
    const raw = await rawConnect(peer.port);
    const meta = encodeReadChunk({ name: testChunk('buf/a'), offset: 4 * MiB - 5, length: 10 });
    raw.sock.write(
      Buffer.concat([helloFrame(), rawFrame({ type: FrameType.READ_CHUNK, requestId: 7, meta })]),
    );
    let frames: Buffer;
    for (;;) {
      frames = raw.received();
      const helloLen = frames.length >= 32 ? 32 + frames.readUInt32LE(12) : Infinity;
      if (
        frames.length >= helloLen + 32 &&
        frames.length >= helloLen + 32 + frames.readUInt32LE(helloLen + 12)
      ) {
        frames = frames.subarray(helloLen);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(frames[3]).toBe(FrameType.ERROR);
    expect(frames.readUInt32LE(8)).toBe(7);
    const err = decodeError(frames.subarray(32, 32 + frames.readUInt32LE(12)), 'server');
    expect(err.code).toBe('RANGE_NOT_SATISFIABLE');
    expect(raw.sock.destroyed).toBe(false);
    raw.sock.destroy();
  });

  it('answers a request of a type nobody registered with UNSUPPORTED, keeping the connection', async () => {
    // The addon frames every type but 0 (messages are registered in JavaScript), so an
    // unknown one is a request like any other: it gets its one answer.
    const raw = await rawConnect(peer.port);
    raw.sock.write(
      Buffer.concat([helloFrame(), rawFrame({ type: 0x7f, requestId: 9, meta: Buffer.from('x') })]),
    );
    let frames: Buffer;
    for (;;) {
      frames = raw.received();
      const helloLen = frames.length >= 32 ? 32 + frames.readUInt32LE(12) : Infinity;
      if (
        frames.length >= helloLen + 32 &&
        frames.length >= helloLen + 32 + frames.readUInt32LE(helloLen + 12)
      ) {
        frames = frames.subarray(helloLen);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(frames[3]).toBe(FrameType.ERROR);
    expect(frames.readUInt32LE(8)).toBe(9);
    const err = decodeError(frames.subarray(32, 32 + frames.readUInt32LE(12)), 'server');
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toMatch(/frame type 127 is not served here/);
    expect(raw.sock.destroyed).toBe(false);
    raw.sock.destroy();
  });

  it('answers a wrong protocol version with an error frame, then closes', async () => {
    const raw = await rawConnect(peer.port);
    raw.sock.write(helloFrame(2, 3));
    await raw.closed;
    const got = raw.received();
    expect(got[3]).toBe(FrameType.ERROR);
    const err = decodeError(got.subarray(32, 32 + got.readUInt32LE(12)), 'server');
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toMatch(/unsupported protocol version 2\.\.3; this server speaks 1\.\.1/);
    await peer.waitForLine(/unsupported protocol version/);
  });

  it('rejects connections over maxConnections', async () => {
    const raws = await Promise.all(Array.from({ length: 8 }, () => rawConnect(peer.port)));
    for (const r of raws) r.sock.write(helloFrame());
    // Handshakes done: every slot is an authenticated peer's, none a stranger's to close instead.
    while (raws.some((r) => r.received().length < 32)) await new Promise((r) => setTimeout(r, 10));
    const extra = await rawConnect(peer.port);
    await extra.closed;
    expect(extra.received().length).toBe(0);
    for (const r of raws) r.sock.destroy();
    await Promise.all(raws.map((r) => r.closed));
  });
});

describe('timeouts and shutdown with requests in flight', () => {
  let peer: PeerProcess;
  beforeAll(async () => {
    peer = await startPeer('server.ts');
  });
  afterAll(async () => {
    await peer?.kill('SIGTERM');
  });

  it('times out a request the peer never answers, cancels it, and keeps the connection', async () => {
    // The short limit is the request's own: on a loaded machine the connect and handshake alone
    // can take longer than 300 ms, and that is not what this test is about.
    const c = client(peer.port, { timeoutMs: 10_000, connections: 1 });
    await c.ping();
    await expect(c.readChunk(testChunk('hang'), 0, 10, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'PEER_UNAVAILABLE',
    });
    expect(await c.ping()).toBeGreaterThan(0);
  });

  it('honours an AbortSignal', async () => {
    const c = client(peer.port);
    const ac = new AbortController();
    const read = c.readChunk(testChunk('hang'), 0, 10, { signal: ac.signal });
    ac.abort(new CacheError('SHUTTING_DOWN', 'caller gave up'));
    await expect(read).rejects.toThrow(/caller gave up/);
  });

  it('client close fails every pending request with SHUTTING_DOWN', async () => {
    const c = client(peer.port);
    const reads = Array.from({ length: 100 }, () => c.readChunk(testChunk('hang'), 0, 10));
    await c.ping();
    await c.close();
    const results = await Promise.allSettled(reads);
    for (const r of results)
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'SHUTTING_DOWN' } });
    await expect(c.ping()).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });

  it('server shutdown fails in-flight requests with SHUTTING_DOWN and exits cleanly', async () => {
    const own = await startPeer('server.ts');
    const c = client(own.port);
    const reads = Array.from({ length: 50 }, () => c.readChunk(testChunk('hang'), 0, 10));
    await c.ping();
    own.proc.kill('SIGTERM');
    const results = await Promise.allSettled(reads);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(['SHUTTING_DOWN', 'PEER_UNAVAILABLE']).toContain((r as PromiseRejectedResult).reason.code);
    }
    await own.kill('SIGTERM');
    expect(own.proc.exitCode).toBe(0);
  });
});
