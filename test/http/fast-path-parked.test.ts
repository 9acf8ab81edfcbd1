/**
 * Parked misses on the native door, in process (addon/src/http/worker_fill.cc,
 * docs/native-http-door.md "Misses"): a miss waits on its I/O thread for a
 * fill JavaScript answers when it likes, hits on other connections go on
 * while the JavaScript thread is blocked, the binding is looked up again when
 * the fill is done (a binding removed meanwhile is never served from), and a
 * failed fill hands the request whole to JavaScript. Also run under
 * ASan+UBSan (scripts/native-checks.mjs). With real node processes:
 * fast-path-fill.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { NativeBindings, NativeFill } from '../../src/http/native-binding.js';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { createNativeStore, type NativeStore } from '../../src/store/native.js';
import { binding } from '../../src/transport/binding.js';
import { RawConnection, rawRequest } from '../harness/raw-http.js';
import { until } from '../harness/until.js';

const MiB = 2 ** 20;
const CHUNK = 4 * MiB;
const doors: NativeHttpDoor[] = [];
afterEach(() => {
  for (const d of doors.splice(0)) d.stop();
});

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** curl, run synchronously: the JavaScript thread is blocked until it is done. */
function curl(args: string[]): Buffer {
  const { LD_PRELOAD: _, ...env } = process.env;
  return execFileSync('curl', args, { env });
}

interface Parked {
  door: NativeHttpDoor;
  store: NativeStore;
  bindings: NativeBindings;
  fills: Array<{ id: number } & NativeFill>;
  toJs: NativeHttpRequest[];
  /** Ids of parked requests whose fill was cancelled (kFillCancel). */
  cancelled: number[];
  port: number;
}

function parkedDoor(): Parked {
  // 512 MiB: a parked miss may cover up to an eighth of it (16 chunks of 4 MiB).
  const store = createNativeStore({ maxBytes: 512 * MiB });
  const bindings = new (binding().NativeBindings)();
  const tokens = new (binding().NativeTokens)();
  const fills: Parked['fills'] = [];
  const toJs: NativeHttpRequest[] = [];
  const cancelled: number[] = [];
  const door = NativeHttpDoor.start(
    {
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      fast: { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000, fillMisses: true },
    },
    {
      onRequest(req) {
        toJs.push(req);
        door.respond(req.id, 404, { 'Content-Type': 'text/plain' }, Buffer.from('from javascript'));
      },
      onFill(id, f) {
        fills.push({ id, ...f });
      },
      onFillCancel(id) {
        cancelled.push(id);
      },
    },
  );
  doors.push(door);
  return { door, store, bindings, fills, toJs, cancelled, port: door.port };
}

const idOf = (s: string) => createHash('sha256').update(s).digest().subarray(0, 16);

/** Version `etag` of `name`; its chunks are stored under idOf(`name` for v1, `name@etag` otherwise). */
const idOfVersion = (name: string, etag: string) => idOf(etag === 'v1' ? name : `${name}@${etag}`);

function bind(b: NativeBindings, name: string, size: number, etag = 'v1'): void {
  expect(
    b.set({
      name,
      objectId: idOfVersion(name, etag),
      etag,
      size,
      chunkSize: CHUNK,
      lastModified: new Date('2025-01-02T03:04:05Z').toUTCString(),
      contentType: 'application/octet-stream',
      validForMs: 60_000,
    }),
  ).toBe(true);
}

function commit(s: NativeStore, name: string, data: Buffer, index: number, etag = 'v1'): void {
  const part = data.subarray(index * CHUNK, (index + 1) * CHUNK);
  expect(s.commit(idOfVersion(name, etag), index, part, binding().crc32c(part), '')).toBeDefined();
}

describe('parked misses, in process', () => {
  it('a miss waits for its fill while hits on another connection go on with JavaScript blocked', async () => {
    const p = parkedDoor();
    const data = bytes(2 * CHUNK, 3);
    bind(p.bindings, 'models/w.bin', data.length);
    commit(p.store, 'models/w.bin', data, 0);
    const c = await RawConnection.open(p.port);
    // Chunk 1 is in no tier: parked, and JavaScript asked for exactly it.
    c.send(rawRequest('GET', '/v1/objects/models/w.bin', { Range: `bytes=${CHUNK - 5}-${CHUNK + 4}` }));
    await until(() => p.fills.length === 1, { what: 'a fill asked for' });
    expect(p.fills[0]).toMatchObject({ name: 'models/w.bin', pin: '', etag: 'v1', first: 0, last: 1 });
    expect(p.door.stats().fastFillWaiting).toBe(1);
    // The JavaScript thread blocked (curl runs synchronously): a hit on another connection is answered.
    const hit = curl(['-s', '-r', '0-9', `http://127.0.0.1:${p.port}/v1/objects/models/w.bin`]);
    expect(hit.equals(data.subarray(0, 10))).toBe(true);
    // Filled: answered on the fast path, JavaScript never saw the request.
    commit(p.store, 'models/w.bin', data, 1);
    p.door.fillDone(p.fills[0]!.id, true);
    const a = await c.read();
    expect(a.status).toBe(206);
    expect(a.headers['x-cache-source']).toBe('dram');
    expect(a.body.equals(data.subarray(CHUNK - 5, CHUNK + 5))).toBe(true);
    expect(p.toJs).toHaveLength(0);
    const st = p.door.stats();
    expect([st.fastFillParked, st.fastFillResumed, st.fastFillFallback, st.fastFillWaiting]).toEqual([
      1, 1, 0, 0,
    ]);
    c.close();
    await until(() => p.door.stats().fastChunkRefs === 0, { what: 'chunk references released' });
  });

  it('a binding removed before the fill is done is looked up again; a failed fill goes to JavaScript whole', async () => {
    const p = parkedDoor();
    const data = bytes(CHUNK, 5);
    bind(p.bindings, 'models/r.bin', data.length);
    const c = await RawConnection.open(p.port);
    // Pipelined: the parked miss, then a hit of another name; answered in order.
    const other = bytes(CHUNK, 6);
    bind(p.bindings, 'models/h.bin', other.length);
    commit(p.store, 'models/h.bin', other, 0);
    c.send(rawRequest('GET', '/v1/objects/models/r.bin') + rawRequest('GET', '/v1/objects/models/h.bin'));
    await until(() => p.fills.length === 1, { what: 'a fill asked for' });
    // A revoke between the fill and the answer: the binding goes, the old version's chunk arrives.
    p.bindings.remove('models/r.bin');
    commit(p.store, 'models/r.bin', data, 0);
    p.door.fillDone(p.fills[0]!.id, true);
    // Not served from the store: no binding now, so the name is to be resolved again.
    await until(() => p.fills.length === 2, { what: 'a second fill asked for' });
    expect(p.fills[1]).toMatchObject({ name: 'models/r.bin', etag: '', first: -1 });
    // That fill fails: JavaScript answers the request whole, then the hit behind it follows.
    p.door.fillDone(p.fills[1]!.id, false);
    const first = await c.read();
    expect(first.status).toBe(404);
    expect(first.body.toString()).toBe('from javascript');
    expect(p.toJs.map((r) => r.target)).toEqual(['/v1/objects/models/r.bin']);
    const second = await c.read();
    expect(second.status).toBe(200);
    expect(second.body.equals(other)).toBe(true);
    expect(p.door.stats().fastFillFallback).toBe(1);
    expect(p.door.stats().fastFillWaiting).toBe(0);
    c.close();
  });

  it('a miss over 16 chunks is not parked: JavaScript streams it', async () => {
    const p = parkedDoor();
    bind(p.bindings, 'models/big.bin', 17 * CHUNK);
    const c = await RawConnection.open(p.port);
    c.send(rawRequest('GET', '/v1/objects/models/big.bin', { Range: `bytes=0-${16 * CHUNK}` }));
    expect((await c.read()).status).toBe(404); // this test's JavaScript
    expect(p.fills).toHaveLength(0);
    // 16 chunks are parked.
    c.send(rawRequest('GET', '/v1/objects/models/big.bin', { Range: `bytes=0-${16 * CHUNK - 1}` }));
    await until(() => p.fills.length === 1, { what: 'a fill asked for' });
    expect(p.fills[0]).toMatchObject({ first: 0, last: 15 });
    p.door.fillDone(p.fills[0]!.id, false);
    expect((await c.read()).status).toBe(404);
    c.close();
  });

  it('after a version change between two fills, the answer reports the source of the bytes it serves', async () => {
    const p = parkedDoor();
    const name = 'models/vc.bin';
    const v1 = bytes(CHUNK, 11);
    const v2 = bytes(CHUNK, 12);
    bind(p.bindings, name, CHUNK);
    const c = await RawConnection.open(p.port);
    c.send(rawRequest('GET', `/v1/objects/${name}`));
    await until(() => p.fills.length === 1, { what: 'a fill asked for' });
    expect(p.fills[0]).toMatchObject({ etag: 'v1', first: 0, last: 0 });
    // The fill read version 1's chunk from the origin; meanwhile the name moved on to version 2.
    commit(p.store, name, v1, 0);
    bind(p.bindings, name, CHUNK, 'v2');
    p.door.fillDone(p.fills[0]!.id, true, 'origin');
    await until(() => p.fills.length === 2, { what: 'a fill of version 2 asked for' });
    expect(p.fills[1]).toMatchObject({ id: p.fills[0]!.id, etag: 'v2', first: 0, last: 0 });
    // Another reader had made version 2's chunk resident: this fill fetched nothing.
    commit(p.store, name, v2, 0, 'v2');
    p.door.fillDone(p.fills[1]!.id, true, 'dram');
    const a = await c.read();
    expect(a.status).toBe(200);
    expect(a.headers.etag).toBe('"v2"');
    expect(a.body.equals(v2)).toBe(true);
    // Not the first fill's origin: that was version 1's chunk.
    expect(a.headers['x-cache-source']).toBe('dram');
    expect(p.toJs).toHaveLength(0);
    c.close();
    await until(() => p.door.stats().fastChunkRefs === 0, { what: 'chunk references released' });
  });

  it('a client that goes away while parked: nothing left waiting, a late fill finds nothing', async () => {
    const p = parkedDoor();
    bind(p.bindings, 'models/g.bin', CHUNK);
    const c = await RawConnection.open(p.port);
    c.send(rawRequest('GET', '/v1/objects/models/g.bin'));
    await until(() => p.fills.length === 1, { what: 'a fill asked for' });
    c.socket.destroy();
    await until(() => p.door.stats().fastFillWaiting === 0 && p.door.stats().connectionsOpen === 0, {
      what: 'the parked request forgotten',
    });
    // JavaScript is told, so its fill starts no chunk nobody waits for (native-server.ts).
    await until(() => p.cancelled.length === 1, { what: 'the fill cancelled' });
    expect(p.cancelled).toEqual([p.fills[0]!.id]);
    p.door.fillDone(p.fills[0]!.id, true);
    // A request answered after the late fillDone was handed over: the I/O thread (the only one) took
    // the fillDone before it (it rang the thread's doorbell first), so what it did with it is counted.
    // A fixed pause would prove nothing on a thread slower than the pause.
    const after = await RawConnection.open(p.port);
    after.send(rawRequest('GET', '/probe')); // not the fast path's: straight to JavaScript
    expect((await after.read()).status).toBe(404); // JavaScript's answer
    after.close();
    expect(p.door.stats().fastFillResumed).toBe(0);
    expect(p.door.stats().fastChunkRefs).toBe(0);
    expect(p.toJs.map((r) => r.target)).toEqual(['/probe']); // never the parked one
  });
});
