/**
 * transport.nativeReads: a node's addon answers a peer's READ_CHUNK for a
 * chunk of a bound version that is whole in its DRAM store on the I/O thread,
 * with the frame JavaScript would send; everything else still goes to
 * JavaScript. Real node processes on 127.0.0.x over an fs origin; the peer is
 * either the real TransportClient or a raw socket speaking the protocol byte
 * by byte (an older build announcing no feature bits, a reader that stops
 * reading, one that disconnects, one that never authenticates).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import type { ChunkName } from '../../src/chunk/name.js';
import { EXT_CLIENT_NONCE, NONCE_BYTES } from '../../src/transport/auth.js';
import { TransportClient } from '../../src/transport/client.js';
import { encodeHello, encodeReadChunk, type ReadChunkRequest } from '../../src/transport/messages.js';
import { FLAG_RESPONSE, FrameType, HEADER_BYTES, PROTOCOL_VERSION } from '../../src/transport/protocol.js';
import { replaceAtOrigin, seedOrigin, startMember } from '../harness/cluster.js';
import { type NodeProcess, sumMetric } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';
import { helloFrame, rawFrame } from '../transport/raw-frame.js';
import { type RawConn, rawConnect } from '../transport/raw-socket.js';

const CHUNK = 256 * 1024;
/** leases.term's default, which these members run with, and leases.margin's (a holder's lease ends that much early). */
const LEASE_TERM_MS = 30_000;
const LEASE_MARGIN_MS = 1_000;
let bytes = randomBytes(5 * CHUNK + 1000);
const running: NodeProcess[] = [];
let root: string;
let native: NodeProcess; // transport.nativeReads: true (the default)
let js: NodeProcess; // transport.nativeReads: false: the answers JavaScript sends
let secured: NodeProcess; // with a cluster secret
let nativePort: number;
let jsPort: number;
let securedPort: number;
let etag: string;
/**
 * Until when (Date.now()) native's binding of w.bin is known to be in force. A binding lives one
 * lease term from its resolution, and a read through a binding in force does not renew it, so a
 * test whose reads must be answered natively asks for what it needs first (boundFor).
 */
let boundUntil = 0;

beforeAll(async () => {
  root = seedOrigin({ 'w.bin': bytes });
  const secretFile = join(root, 'secret');
  writeFileSync(secretFile, randomBytes(32).toString('hex'));
  [nativePort, jsPort, securedPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const solo = (addr: string, config?: Record<string, unknown>) =>
    startMember({ root, self: addr, members: [addr], running, config });
  [native, js, secured] = await Promise.all([
    solo(`127.0.0.91:${nativePort}`),
    solo(`127.0.0.92:${jsPort}`, { transport: { nativeReads: false } }),
    solo(`127.0.0.93:${securedPort}`, { auth: { clusterSecretFile: secretFile } }),
  ]);
  // Each node reads the object once through HTTP: its chunks land in DRAM and its name is bound.
  for (const n of [native, js, secured]) {
    const at = Date.now();
    const r = await fetch(`${n.url}/v1/objects/models/w.bin`);
    expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
    etag = r.headers.get('etag')!.replace(/"/g, '');
    // A fresh node's first resolution: the home grants a whole term, the holder publishes it less the margin.
    if (n === native) boundUntil = at + LEASE_TERM_MS - 2 * LEASE_MARGIN_MS;
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

function chunkName(index: number, over: Partial<ChunkName> = {}): ChunkName {
  return {
    originId: `fs:${resolve(root)}`,
    container: 'models',
    key: 'w.bin',
    etag,
    size: bytes.length,
    chunkSize: CHUNK,
    index,
    ...over,
  };
}

function extent(index: number): Buffer {
  return bytes.subarray(index * CHUNK, Math.min(bytes.length, (index + 1) * CHUNK));
}

/** Resolutions native's lease table asked the origin for (each one binds the name afresh). */
async function originResolutions(): Promise<number> {
  const text = await (await fetch(`${native.url}/metrics`)).text();
  return ['resolved', 'revalidated_same', 'revalidated_changed', 'refreshed']
    .map((result) => sumMetric(text, 'weightcache_lease_resolutions_total', { result }))
    .reduce((a, b) => a + b, 0);
}

/**
 * Makes sure native's binding of w.bin (version `want`) stays in force for `ms` more. When it may
 * not, reads w.bin through HTTP until a read has to resolve it at the origin (the binding in force
 * ran out): the binding that read makes is in force for at least half a term (what a home grants
 * at the least) from when the read started. Under ASan a test's steps take seconds, and a binding
 * made in beforeAll, or by an invalidation a term ago, can run out between two of its reads.
 */
async function boundFor(ms: number, want = bytes): Promise<void> {
  if (Date.now() + ms <= boundUntil) return;
  await until(
    async () => {
      const before = await originResolutions();
      const at = Date.now();
      const r = await fetch(`${native.url}/v1/objects/models/w.bin`);
      expect(Buffer.from(await r.arrayBuffer()).equals(want)).toBe(true);
      if ((await originResolutions()) === before) return false;
      boundUntil = at + LEASE_TERM_MS / 2 - LEASE_MARGIN_MS;
      return true;
    },
    { what: 'a read of w.bin that binds it afresh', stepMs: 1000 },
  );
}

const served = (n: NodeProcess) => n.metric('weightcache_transport_native_served_total');
const refs = (n: NodeProcess) => n.metric('weightcache_transport_native_chunk_references');

interface Frame {
  readonly raw: Buffer;
  readonly type: number;
  readonly flags: number;
  readonly requestId: number;
  readonly payloadCrc: number;
  readonly payload: Buffer;
}

/** The whole frames in `buf`, in order. */
function frames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  for (let at = 0; at + HEADER_BYTES <= buf.length; ) {
    const meta = buf.readUInt32LE(at + 12);
    const payload = Number(buf.readBigUInt64LE(at + 16));
    const end = at + HEADER_BYTES + meta + payload;
    if (end > buf.length) break;
    out.push({
      raw: buf.subarray(at, end),
      type: buf[at + 3]!,
      flags: buf.readUInt16LE(at + 4),
      requestId: buf.readUInt32LE(at + 8),
      payloadCrc: buf.readUInt32LE(at + 24),
      payload: buf.subarray(end - payload, end),
    });
    at = end;
  }
  return out;
}

/** A raw connection through HELLO (features 0: a build that knows no feature bit). */
async function rawPeer(port: number, host: string): Promise<RawConn> {
  const c = await rawConnectTo(port, host);
  c.sock.write(helloFrame());
  await until(() => frames(c.received()).length >= 1, { what: 'the HELLO answer', timeoutMs: 10_000 });
  return c;
}

function rawConnectTo(port: number, host: string): Promise<RawConn> {
  // rawConnect dials 127.0.0.1; the members listen on their own 127.0.0.x.
  return rawConnect(port, undefined, host);
}

function readFrame(q: ReadChunkRequest, requestId: number): Buffer {
  return rawFrame({ type: FrameType.READ_CHUNK, requestId, meta: encodeReadChunk(q) });
}

describe('READ_CHUNK answered from the native store (transport.nativeReads)', () => {
  it('serves whole chunks and sub-ranges of a bound version with their bytes and CRC32C, holding no reference after', async () => {
    await boundFor(10_000); // 18 reads answered natively: bound throughout
    const client = new TransportClient({ host: '127.0.0.91', port: nativePort, timeoutMs: 10_000 });
    try {
      const before = await served(native);
      for (let i = 0; i < 6; i++) {
        const whole = await client.readChunk(chunkName(i), 0, extent(i).length);
        expect(whole.data.equals(extent(i))).toBe(true);
        expect(whole.crc32c >>> 0).toBe(crc32c(extent(i)) >>> 0);
        const part = await client.readChunk(chunkName(i), 100, 900);
        expect(part.data.equals(extent(i).subarray(100, 1000))).toBe(true);
        // A hit is local: LOCAL_ONLY probes of it are served natively too.
        const probe = await client.readChunk(chunkName(i), 0, 1, { localOnly: true });
        expect(probe.data.equals(extent(i).subarray(0, 1))).toBe(true);
      }
      expect((await served(native)) - before).toBe(18);
      await until(async () => (await refs(native)) === 0, { what: 'native chunk references back to 0' });
    } finally {
      await client.close();
    }
  });

  it('answers with the frame JavaScript sends, byte for byte, to a peer that announces no feature bits', async () => {
    const reqs: ReadChunkRequest[] = [
      { name: chunkName(0), offset: 0, length: CHUNK },
      { name: chunkName(5), offset: 0, length: 1000 },
      { name: chunkName(2), offset: 4097, length: 70_001 },
    ];
    const answers: Buffer[][] = [];
    for (const [port, host] of [
      [nativePort, '127.0.0.91'],
      [jsPort, '127.0.0.92'],
    ] as const) {
      const c = await rawPeer(port, host);
      for (const [i, q] of reqs.entries()) c.sock.write(readFrame(q, i + 1));
      await until(() => frames(c.received()).length >= 1 + reqs.length, { what: 'three answers' });
      answers.push(
        frames(c.received())
          .slice(1)
          .sort((a, b) => a.requestId - b.requestId)
          .map((f) => Buffer.from(f.raw)),
      );
      c.sock.destroy();
    }
    expect(answers[0]!.length).toBe(3);
    for (let i = 0; i < reqs.length; i++) expect(answers[0]![i]!.equals(answers[1]![i]!)).toBe(true);
    const f = frames(Buffer.concat(answers[0]!));
    expect(f.map((x) => [x.type, x.flags])).toEqual(reqs.map(() => [FrameType.READ_CHUNK, FLAG_RESPONSE]));
    for (const [i, q] of reqs.entries()) {
      const want = extent(q.name.index).subarray(q.offset, q.offset + q.length);
      expect(f[i]!.payload.equals(want)).toBe(true);
      expect(f[i]!.payloadCrc).toBe(crc32c(want) >>> 0);
    }
    expect(await served(js)).toBe(0);
  });

  it('leaves another version, another origin, a bad range and a stand-in request to JavaScript', async () => {
    const c = await rawPeer(nativePort, '127.0.0.91');
    try {
      const before = await served(native);
      const passedBefore = await native.metric('weightcache_transport_native_passed_total');
      const odd: ReadChunkRequest[] = [
        { name: chunkName(0, { etag: 'other' }), offset: 0, length: 10, localOnly: true },
        { name: chunkName(0, { originId: 'fs:/elsewhere' }), offset: 0, length: 10 },
        { name: chunkName(6), offset: 0, length: 10 },
        { name: chunkName(5), offset: 990, length: 11 },
        { name: chunkName(1), offset: 0, length: 10, standInFor: ['127.0.0.99:1'] },
      ];
      for (const [i, q] of odd.entries()) c.sock.write(readFrame(q, i + 1));
      await until(() => frames(c.received()).length >= 1 + odd.length, { what: 'five answers' });
      const got = frames(c.received()).slice(1);
      // JavaScript's answers: errors for all but the stand-in hit, which it serves itself.
      expect(got.filter((f) => f.type === FrameType.ERROR).length).toBe(4);
      expect((await served(native)) - before).toBe(0);
      expect((await native.metric('weightcache_transport_native_passed_total')) - passedBefore).toBe(5);
    } finally {
      c.sock.destroy();
    }
  });

  it('keeps replies in flight intact while their version is replaced and invalidated; the old version then goes to JavaScript', async () => {
    await boundFor(10_000); // the replies below are the I/O thread's: bound until they are queued
    const c = await rawPeer(nativePort, '127.0.0.91');
    c.sock.pause();
    const n = 128; // 32 MiB of answers: more than the socket buffers take, so replies wait on the I/O thread
    for (let i = 0; i < n; i++) {
      c.sock.write(readFrame({ name: chunkName(i % 5), offset: 0, length: CHUNK }, i + 1));
    }
    await until(async () => (await refs(native)) > 0, { what: 'native replies held in flight' });
    const old = { bytes, etag };
    const next = randomBytes(bytes.length);
    replaceAtOrigin(root, 'w.bin', next);
    const inv = await fetch(`${native.url}/v1/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ container: 'models', key: 'w.bin' }),
    });
    expect(inv.status).toBe(200);
    // The binding is gone, but the chunks under the queued replies are still held.
    expect(await refs(native)).toBeGreaterThan(0);
    c.sock.resume();
    await until(() => frames(c.received()).length >= 1 + n, { what: `${n} answers`, stepMs: 200 });
    const got = frames(c.received()).slice(1);
    expect(got.length).toBe(n);
    for (const f of got) {
      const want = old.bytes.subarray(((f.requestId - 1) % 5) * CHUNK, (((f.requestId - 1) % 5) + 1) * CHUNK);
      expect(f.type).toBe(FrameType.READ_CHUNK);
      expect(f.payload.equals(want)).toBe(true);
      expect(f.payloadCrc).toBe(crc32c(want) >>> 0);
    }
    await until(async () => (await refs(native)) === 0, { what: 'native chunk references back to 0' });
    // The invalidation itself took about a term (a home this young waits until no predecessor's lease
    // can be alive), so the binding its re-resolve made may be about to run out: read the new version
    // through HTTP until a read binds it afresh, so that the reads below find it bound.
    boundUntil = 0;
    await boundFor(10_000, next);
    // The new version through HTTP; a read of the old version is JavaScript's now.
    const r = await fetch(`${native.url}/v1/objects/models/w.bin`);
    expect(Buffer.from(await r.arrayBuffer()).equals(next)).toBe(true);
    bytes = next;
    etag = r.headers.get('etag')!.replace(/"/g, '');
    expect(etag).not.toBe(old.etag);
    const before = await served(native);
    c.sock.write(readFrame({ name: chunkName(0, { etag: old.etag }), offset: 0, length: 10 }, n + 1));
    await until(() => frames(c.received()).length >= 2 + n, { what: "JavaScript's answer", stepMs: 100 });
    expect((await served(native)) - before).toBe(0);
    // JavaScript found the old version gone at the origin: that must not unbind the new one.
    c.sock.write(readFrame({ name: chunkName(0), offset: 0, length: 10 }, n + 2));
    await until(() => frames(c.received()).length >= 3 + n, { what: 'one more answer', stepMs: 100 });
    expect((await served(native)) - before).toBe(1);
    const last = frames(c.received()).find((f) => f.requestId === n + 2)!;
    expect(last.payload.equals(next.subarray(0, 10))).toBe(true);
    c.sock.destroy();
  });

  it('drops every reference when the peer disconnects mid-reply', async () => {
    // Bound and in DRAM now, whatever time the tests before took (a binding lives one lease term).
    await boundFor(10_000);
    const r = await fetch(`${native.url}/v1/objects/models/w.bin`);
    expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
    const c = await rawPeer(nativePort, '127.0.0.91');
    c.sock.pause();
    const before = await served(native);
    for (let i = 0; i < 128; i++) {
      c.sock.write(readFrame({ name: chunkName(i % 5), offset: 0, length: CHUNK }, i + 1));
    }
    await until(async () => (await refs(native)) > 0, {
      what: 'native replies held in flight',
      timeoutMs: 60_000,
    });
    expect((await served(native)) - before).toBeGreaterThan(0);
    c.sock.destroy();
    await until(async () => (await refs(native)) === 0, {
      what: 'native chunk references back to 0 after the disconnect',
      timeoutMs: 60_000,
    });
  });

  it('never serves a peer that has not authenticated', async () => {
    const c = await rawConnectTo(securedPort, '127.0.0.93');
    const hello = encodeHello({
      minVersion: 1,
      maxVersion: PROTOCOL_VERSION,
      features: 0,
      maxFrameBytes: 16 << 20,
      maxInFlight: 256,
      nodeId: 'stranger',
      extensions: [{ tag: EXT_CLIENT_NONCE, value: randomBytes(NONCE_BYTES) }],
    });
    c.sock.write(rawFrame({ type: FrameType.HELLO, meta: hello }));
    await until(() => frames(c.received()).length >= 1, { what: 'the HELLO answer' });
    // No AUTH: a READ_CHUNK of a chunk the node holds and has bound is refused, not served.
    c.sock.write(readFrame({ name: chunkName(0), offset: 0, length: CHUNK }, 7));
    await c.closed;
    const got = frames(c.received());
    expect(got.some((f) => f.type === FrameType.READ_CHUNK)).toBe(false);
    expect(got.at(-1)!.type).toBe(FrameType.ERROR);
    expect(await served(secured)).toBe(0);
  });
});
