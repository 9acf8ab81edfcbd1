/**
 * The lease frames (0x20–0x24) over real sockets: served through
 * the home's registered messages (src/coherence/wire.ts), answered UNSUPPORTED by a server without them, malformed meta
 * closing the connection, and the server → client direction (a home's
 * LEASE_REVOKE on the holder's own connection), and an answer our own encoder
 * refuses (INTERNAL for that request; the connection stays). Server and
 * clients run in this process.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseHome } from '../../src/coherence/home.js';
import { HomeLeases } from '../../src/coherence/home-leases.js';
import { encodeInvalidate } from '../../src/coherence/invalidate-messages.js';
import {
  encodeLeaseAck,
  encodeLeaseGrantRequest,
  encodeLeaseRenewRequest,
  encodeLeaseRevoke,
  LEASE_RELEASE,
} from '../../src/coherence/lease-messages.js';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { CoherenceMetrics } from '../../src/coherence/metrics.js';
import {
  CoherenceFrame,
  type HolderConnection,
  type LeaseService,
  requestInvalidate,
  requestLease,
  requestLeaseAck,
  serveHome,
} from '../../src/coherence/wire.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { MetaWriter } from '../../src/transport/codec.js';
import { TransportClient, type TransportClientOptions, TransportServer } from '../../src/transport/index.js';
import { decodeError, encodeObjectName, RemoteError } from '../../src/transport/messages.js';
import { FLAG_RESPONSE, FrameType } from '../../src/transport/protocol.js';
import { Messages } from '../../src/transport/rpc.js';
import type { TransportHandler } from '../../src/transport/server.js';
import { helloFrame, rawFrame } from '../transport/raw-frame.js';
import { type RawConn, rawConnect } from '../transport/raw-socket.js';

const name = { container: 'c', key: 'f' };
const held = { etag: 'e1', size: 2, lastModifiedMs: 1_700_000_000_000 };
const info = { ...name, etag: 'e1', size: 2, lastModified: new Date(held.lastModifiedMs) };
const base: TransportHandler = {
  readChunk: async () => ({ kind: 'buffer', data: Buffer.from('x') }),
  stat: async () => info,
};

/** A server's messages with a home's handlers registered. */
function homeMessages(home: LeaseService): Messages {
  const m = new Messages();
  serveHome(m, home);
  return m;
}

/** A client's messages answering LEASE_REVOKE with `answer` (the raw meta in, the response meta out). */
function onRevoke(answer: (meta: Buffer) => Promise<Buffer>): Messages {
  const m = new Messages();
  m.register(CoherenceFrame.LEASE_REVOKE, 'LEASE_REVOKE', { decode: (meta) => meta, serve: answer });
  return m;
}

/** A logger that keeps the reasons connections were closed for. */
function recordingLogger() {
  const warnings: string[] = [];
  const log = (obj: object, msg: string) => warnings.push(`${msg} ${JSON.stringify(obj)}`);
  return { warnings, logger: { info: log, warn: log } };
}

const clients: TransportClient[] = [];
function client(server: TransportServer, o: Partial<TransportClientOptions> = {}) {
  const c = new TransportClient({
    host: '127.0.0.1',
    port: server.address.port,
    timeoutMs: 5000,
    logger: { info() {}, warn() {} },
    ...o,
  });
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

interface Frame {
  type: number;
  flags: number;
  requestId: number;
  meta: Buffer;
}

function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at + 32 <= buf.length) {
    const metaLen = buf.readUInt32LE(at + 12);
    const payloadLen = Number(buf.readBigUInt64LE(at + 16));
    const end = at + 32 + metaLen + payloadLen;
    if (end > buf.length) break;
    out.push({
      type: buf[at + 3]!,
      flags: buf.readUInt16LE(at + 4),
      requestId: buf.readUInt32LE(at + 8),
      meta: buf.subarray(at + 32, at + 32 + metaLen),
    });
    at = end;
  }
  return out;
}

/** Waits until the raw connection received the answer to `requestId` (after the HELLO reply). */
async function answerTo(raw: RawConn, requestId: number): Promise<Frame> {
  for (let i = 0; i < 500; i++) {
    const f = parseFrames(raw.received()).find(
      (x) => x.requestId === requestId && x.type !== FrameType.HELLO,
    );
    if (f) return f;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no answer to request ${requestId}`);
}

describe("a server without the home's messages", () => {
  let server: TransportServer;
  beforeAll(async () => {
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: base,
      logger: { info() {}, warn() {} },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers LEASE_GRANT, LEASE_RENEW, LEASE_ACK and INVALIDATE with UNSUPPORTED, keeping the connection', async () => {
    const c = client(server, { connections: 1 });
    const ack = { ...name, homeIncarnation: 1, revokeId: LEASE_RELEASE };
    for (const call of [
      () => requestLease(c, name, undefined),
      () => requestLease(c, name, held),
      () => requestLeaseAck(c, ack),
      () => requestInvalidate(c, name),
      () => requestInvalidate(c, { container: 'c', prefix: '' }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    }
    expect(await c.stat(name)).toEqual(info);
  });

  it('does not even look at the meta: garbage is UNSUPPORTED, not a protocol error', async () => {
    const raw = await rawConnect(server.address.port);
    raw.sock.write(helloFrame());
    raw.sock.write(rawFrame({ type: CoherenceFrame.LEASE_GRANT, requestId: 7, meta: Buffer.from([0xff]) }));
    const f = await answerTo(raw, 7);
    expect(f.type).toBe(FrameType.ERROR);
    expect(f.flags & FLAG_RESPONSE).toBe(FLAG_RESPONSE);
    expect(decodeError(f.meta, 'server').code).toBe('UNSUPPORTED');
    expect(raw.sock.destroyed).toBe(false);
    raw.sock.destroy();
  });
});

describe("a server with the home's messages (a real LeaseHome)", () => {
  let server: TransportServer;
  let home: LeaseHome;
  const log = recordingLogger();
  /** Every holder connection the home was handed, by the holder's HELLO nodeId. */
  const conns = new Map<string, HolderConnection>();
  const TERM = 5000;

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'wc-lease-frames-'));
    mkdirSync(join(root, 'c'));
    writeFileSync(join(root, 'c', 'f'), 'v1');
    let skew = 0;
    const now = () => performance.now() + skew;
    const leases = new HomeLeases({ termMs: TERM, driftRatio: 0.01, settleMs: 1.01 * TERM, now });
    skew += 1.01 * TERM; // a home running long enough to vouch for every lease
    const metrics = new Metrics();
    home = new LeaseHome({
      table: new LeaseTable({ origin: new FsOrigin({ root }), termMs: 60_000, now }),
      leases,
      termMs: TERM,
      driftRatio: 0.01,
      isHome: () => true,
      metrics: new CoherenceMetrics(metrics, () => leases.size),
      log: pino({ level: 'silent' }),
      now,
    });
    const recording: LeaseService = {
      lease: (n, holderId, h, signal, conn) => {
        conns.set(holderId, conn);
        return home.lease(n, holderId, h, signal, conn);
      },
      ack: (a, holderId) => home.ack(a, holderId),
      invalidate: (t, signal) => home.invalidate(t, signal),
    };
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: base,
      messages: homeMessages(recording),
      logger: log.logger,
    });
  });
  afterAll(async () => {
    home?.close();
    await server?.close();
  });

  const closeReasons = () => log.warnings;

  it('serves grant, renewal, release and invalidation; the revoke comes back on the holder’s connection', async () => {
    const revokes: Buffer[] = [];
    const c = client(server, {
      nodeId: 'holder-a',
      messages: onRevoke(async (meta) => {
        revokes.push(meta);
        return Buffer.alloc(0);
      }),
    });
    const g = await requestLease(c, name, undefined);
    expect(g).toMatchObject({ status: 'ok', version: { etag: expect.any(String), size: 2 }, termMs: TERM });
    if (g.status !== 'ok') throw new Error('unreachable');
    expect(g.homeIncarnation).toBe(home.incarnation);
    expect(await requestLease(c, name, g.version)).toMatchObject({ status: 'ok', version: g.version });
    expect(await requestLease(c, { container: 'c', key: 'missing' }, undefined)).toMatchObject({
      status: 'notFound',
    });
    const a = await requestInvalidate(c, name, { timeoutMs: 10_000 });
    expect(a).toEqual({
      version: {
        etag: g.version.etag,
        size: 2,
        lastModified: new Date(g.version.lastModifiedMs).toISOString(),
      },
      names: 1,
      acked: 1,
      expired: 0,
    });
    expect(revokes).toHaveLength(1);
    await requestLeaseAck(c, { ...name, homeIncarnation: home.incarnation, revokeId: LEASE_RELEASE });
    expect(home.outstanding).toBe(0);
    // The lease was released: a prefix invalidation fences the binding and re-resolves no name.
    expect(await requestInvalidate(c, { container: 'c', prefix: '' }, { timeoutMs: 10_000 })).toMatchObject({
      names: 0,
    });
  });

  it('a server → client request: answered by the registered handler, its error code carried back, UNSUPPORTED without one', async () => {
    const meta = encodeLeaseRevoke({ ...name, homeIncarnation: home.incarnation, revokeId: 99 });
    const answering = client(server, {
      nodeId: 'holder-b',
      messages: onRevoke(async () => Buffer.from('ok')),
    });
    const failing = client(server, {
      nodeId: 'holder-c',
      messages: onRevoke(async () => {
        throw new CacheError('OVERLOADED', 'busy');
      }),
    });
    const deaf = client(server, { nodeId: 'holder-d' });
    for (const c of [answering, failing, deaf]) await requestLease(c, name, undefined);
    const ev = await conns.get('holder-b')!.request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: 5000 });
    expect(ev.type).toBe(CoherenceFrame.LEASE_REVOKE);
    expect(ev.meta.toString()).toBe('ok');
    await expect(
      conns.get('holder-c')!.request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: 5000 }),
    ).rejects.toMatchObject({
      code: 'OVERLOADED',
    });
    await expect(
      conns.get('holder-d')!.request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: 5000 }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
    const conn = conns.get('holder-b')!;
    expect(conn.isOpen).toBe(true);
    await answering.close();
    for (let i = 0; i < 200 && conn.isOpen; i++) await new Promise((r) => setTimeout(r, 10));
    expect(conn.isOpen).toBe(false);
    await expect(conn.request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
    });
  });

  it('a server → client request the client never answers times out', async () => {
    let release: () => void = () => {};
    const c = client(server, {
      nodeId: 'holder-e',
      messages: onRevoke(() => new Promise<Buffer>((r) => (release = () => r(Buffer.alloc(0))))),
    });
    await requestLease(c, name, undefined);
    const meta = encodeLeaseRevoke({ ...name, homeIncarnation: home.incarnation, revokeId: 100 });
    await expect(
      conns.get('holder-e')!.request(CoherenceFrame.LEASE_REVOKE, meta, { timeoutMs: 100 }),
    ).rejects.toMatchObject({
      code: 'PEER_UNAVAILABLE',
    });
    release(); // the late answer is dropped; the connection keeps working
    expect(await requestLease(c, name, undefined)).toMatchObject({ status: 'ok' });
  });

  it('a LEASE_REVOKE request from a client is UNSUPPORTED (only homes send them)', async () => {
    const raw = await rawConnect(server.address.port);
    raw.sock.write(helloFrame());
    const meta = encodeLeaseRevoke({ ...name, homeIncarnation: 1, revokeId: 1 });
    raw.sock.write(rawFrame({ type: CoherenceFrame.LEASE_REVOKE, requestId: 5, meta }));
    const f = await answerTo(raw, 5);
    expect(decodeError(f.meta, 'server').code).toBe('UNSUPPORTED');
    raw.sock.destroy();
  });

  const str = (s: string) => new MetaWriter().str(s).bytes();
  const name2 = Buffer.concat([str('c'), str('f')]);
  const malformed: [string, number, Buffer][] = [
    ['an empty LEASE_GRANT', CoherenceFrame.LEASE_GRANT, Buffer.alloc(0)],
    ['a truncated LEASE_GRANT', CoherenceFrame.LEASE_GRANT, encodeLeaseGrantRequest(name).subarray(0, 4)],
    ['a LEASE_GRANT with trailing bytes', CoherenceFrame.LEASE_GRANT, Buffer.concat([name2, Buffer.of(0)])],
    ['a LEASE_GRANT naming ../x', CoherenceFrame.LEASE_GRANT, Buffer.concat([str('c'), str('../x')])],
    [
      'a LEASE_GRANT with bad UTF-8',
      CoherenceFrame.LEASE_GRANT,
      Buffer.concat([str('c'), Buffer.from([1, 0, 0xff])]),
    ],
    ['a LEASE_RENEW without its version', CoherenceFrame.LEASE_RENEW, encodeLeaseGrantRequest(name)],
    [
      'a LEASE_RENEW with an empty etag',
      CoherenceFrame.LEASE_RENEW,
      Buffer.concat([name2, new MetaWriter().str('').u64(2).f64(0).bytes()]),
    ],
    [
      'a LEASE_RENEW truncated',
      CoherenceFrame.LEASE_RENEW,
      encodeLeaseRenewRequest({ ...name, held }).subarray(0, 12),
    ],
    [
      'a LEASE_ACK with incarnation 0',
      CoherenceFrame.LEASE_ACK,
      Buffer.concat([name2, new MetaWriter().u64(0).u64(0).bytes()]),
    ],
    [
      'a LEASE_ACK with trailing bytes',
      CoherenceFrame.LEASE_ACK,
      Buffer.concat([encodeLeaseAck({ ...name, homeIncarnation: 1, revokeId: 0 }), Buffer.of(1)]),
    ],
    ['an INVALIDATE of an unknown kind', CoherenceFrame.INVALIDATE, Buffer.concat([name2, Buffer.of(9)])],
    [
      'an INVALIDATE naming ../x',
      CoherenceFrame.INVALIDATE,
      Buffer.concat([str('c'), str('../x'), Buffer.of(0)]),
    ],
    ['an INVALIDATE truncated', CoherenceFrame.INVALIDATE, encodeInvalidate(name).subarray(0, 5)],
  ];

  for (const [what, type, meta] of malformed) {
    it(`${what}: the connection is closed as a protocol error, and the server keeps serving`, async () => {
      const before = closeReasons().length;
      const raw = await rawConnect(server.address.port);
      raw.sock.write(helloFrame());
      raw.sock.write(rawFrame({ type, requestId: 3, meta }));
      await raw.closed;
      const reasons = closeReasons().slice(before).join('\n');
      expect(reasons).toMatch(/protocol error/);
      expect(reasons).toMatch(/bad request meta/);
      // No answer to the bad request, except possibly the HELLO reply.
      expect(
        parseFrames(raw.received()).filter((f) => f.requestId === 3 && f.type !== FrameType.HELLO),
      ).toEqual([]);
      expect(await client(server).stat(name)).toEqual(info);
    });
  }

  it('a well-formed STAT on the same kind of raw connection is answered (control)', async () => {
    const raw = await rawConnect(server.address.port);
    raw.sock.write(helloFrame());
    raw.sock.write(rawFrame({ type: FrameType.STAT, requestId: 4, meta: encodeObjectName(name) }));
    expect((await answerTo(raw, 4)).type).toBe(FrameType.STAT);
    raw.sock.destroy();
  });
});

describe('an answer the server cannot encode (our fault, not the peer’s)', () => {
  let server: TransportServer;
  const log = recordingLogger();
  // An HTTP origin may return any ETag; the lease frames carry at most MAX_ETAG_BYTES (1024).
  const longEtag = 'x'.repeat(2000);
  beforeAll(async () => {
    const leases: LeaseService = {
      lease: async () => ({
        status: 'ok',
        version: { etag: longEtag, size: 2, lastModifiedMs: held.lastModifiedMs },
        termMs: 5000,
        homeIncarnation: 1,
      }),
      ack: () => {},
      // A count the u32 field cannot hold.
      invalidate: async () => ({ names: -1, acked: 0, expired: 0 }),
    };
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      handler: {
        ...base,
        // A STAT answer over the 65535-byte string limit.
        stat: async (n) => (n.key === 'huge' ? { ...info, ...n, etag: 'y'.repeat(70_000) } : info),
      },
      messages: homeMessages(leases),
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers that request INTERNAL, naming what could not be encoded, and keeps the connection', async () => {
    const c = client(server, { connections: 1 });
    expect(await c.stat(name)).toEqual(info); // connected
    const before = log.warnings.length;
    for (const [call, what] of [
      [() => requestLease(c, name, undefined), /LEASE_GRANT answer: version etag of 2000 bytes exceeds 1024/],
      [() => requestLease(c, name, held), /LEASE_RENEW answer: version etag of 2000 bytes exceeds 1024/],
      [() => requestInvalidate(c, name), /INVALIDATE answer/],
      [() => c.stat({ container: 'c', key: 'huge' }), /STAT answer: string field of 70000 bytes/],
    ] as const) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RemoteError);
      expect(err).toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(what) });
      // The same connection still serves.
      expect(await c.ping()).toBeGreaterThanOrEqual(0);
      expect(await c.stat(name)).toEqual(info);
    }
    const logged = log.warnings.slice(before).join('\n');
    expect(logged).toMatch(/refused by its encoder/);
    expect(logged).not.toMatch(/protocol error|connection closed/);
  });
});
