/**
 * The native door's fast path (docs/native-http-door.md, "The fast path"):
 *
 * in this process, the door with a real native store, bindings and tokens:
 * hits are answered while the JavaScript thread is blocked (a miss is not); a
 * binding past its deadline is not used; tokens outside their containers go to
 * JavaScript; a client that leaves in the middle of pipelined 16 MiB answers
 * leaves no chunk reference behind. Also run under ASan+UBSan
 * (scripts/native-checks.mjs). Across real node processes:
 * fast-path-processes.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeFastPath } from '../../src/http/fast-path.js';
import type {
  NativeAccessRecord,
  NativeBindings,
  NativeHttpDoorOptions,
  NativeTokens,
} from '../../src/http/native-binding.js';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { createNativeStore, type NativeStore } from '../../src/store/native.js';
import { binding } from '../../src/transport/binding.js';
import { get } from '../harness/http-get.js';
import { RawConnection } from '../harness/raw-http.js';
import { until } from '../harness/until.js';

const MiB = 2 ** 20;
const doors: NativeHttpDoor[] = [];
afterEach(() => {
  for (const d of doors.splice(0)) d.stop();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

interface InProcess {
  door: NativeHttpDoor;
  store: NativeStore;
  bindings: NativeBindings;
  tokens: NativeTokens;
  toJs: NativeHttpRequest[];
  /** Access records of fast-path answers handed to JavaScript (with accessLog). */
  access: NativeAccessRecord[];
  url: string;
}

/** A door whose fast path reads a real native store; JavaScript answers 599-free 404s to whatever reaches it. */
function inProcess(extra: Partial<NativeHttpDoorOptions> = {}): InProcess {
  const store = createNativeStore({ maxBytes: 64 * MiB });
  const bindings = new (binding().NativeBindings)();
  const tokens = new (binding().NativeTokens)();
  const toJs: NativeHttpRequest[] = [];
  const access: NativeAccessRecord[] = [];
  const door = NativeHttpDoor.start(
    {
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      fast: { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000 },
      ...extra,
    },
    {
      onRequest(req) {
        toJs.push(req);
        door.respond(req.id, 404, { 'Content-Type': 'text/plain' }, Buffer.from('from javascript'));
      },
      onAccess(records) {
        access.push(...records);
      },
    },
  );
  doors.push(door);
  return { door, store, bindings, tokens, toJs, access, url: `http://127.0.0.1:${door.port}` };
}

const OBJECT_ID = createHash('sha256').update('fast-path test object').digest().subarray(0, 16);

/** models/w.bin: `chunks` chunks of 4 MiB in the store, bound for `validForMs`. */
function seed(p: InProcess, chunks: number, validForMs = 60_000): Buffer {
  const data = bytes(chunks * 4 * MiB, 7);
  for (let i = 0; i < chunks; i++) {
    const part = data.subarray(i * 4 * MiB, (i + 1) * 4 * MiB);
    expect(p.store.commit(OBJECT_ID, i, part, binding().crc32c(part), '')).toBeDefined();
  }
  expect(
    p.bindings.set({
      name: 'models/w.bin',
      objectId: OBJECT_ID,
      etag: 'v1',
      size: data.length,
      chunkSize: 4 * MiB,
      lastModified: new Date('2025-01-02T03:04:05Z').toUTCString(),
      contentType: 'application/octet-stream',
      validForMs,
    }),
  ).toBe(true);
  return data;
}

/**
 * curl, run synchronously: this (the JavaScript) thread is blocked until it is done. Without
 * the sanitizer runtime the ASan run preloads (curl under it can hang at start).
 */
function curl(args: string[]): Buffer {
  const { LD_PRELOAD: _, ...env } = process.env;
  return execFileSync('curl', args, { env });
}

describe('version bindings', () => {
  const info = (etag: string) => ({
    container: 'models',
    key: 'w.bin',
    etag,
    size: 10,
    lastModified: new Date('2025-01-02T03:04:05Z'),
  });

  it('a binding JavaScript cannot hand over (an over-long ETag) removes the older one instead of throwing', () => {
    const fast = new NativeFastPath('fs:/origin', 4 * MiB, null);
    fast.bind(info('v1'), 60_000);
    expect(fast.bindings.size()).toBe(1);
    expect(() => fast.bind(info('x'.repeat(5000)), 60_000)).not.toThrow();
    expect(fast.bindings.size()).toBe(0);
  });

  it('counts the deadline from when JavaScript measured it, so time spent getting there shortens it', () => {
    const b = new (binding().NativeBindings)();
    const entry = {
      name: 'models/w.bin',
      objectId: OBJECT_ID,
      etag: 'v1',
      size: 10,
      chunkSize: 4 * MiB,
      lastModified: 'Thu, 02 Jan 2025 03:04:05 GMT',
      contentType: 'application/octet-stream',
    };
    const msAgo = (ms: number) => process.hrtime.bigint() - BigInt(ms) * 1_000_000n;
    // Measured 200 ms ago with 100 ms to go: over already, not installed.
    expect(b.set({ ...entry, validForMs: 100, measuredAtNs: msAgo(200) })).toBe(false);
    expect(b.size()).toBe(0);
    expect(b.set({ ...entry, validForMs: 60_000, measuredAtNs: msAgo(200) })).toBe(true);
    expect(b.size()).toBe(1);
    // A time in the future is a caller's bug, named.
    expect(() => b.set({ ...entry, validForMs: 100, measuredAtNs: msAgo(-60_000) })).toThrow(/measuredAtNs/);
  });
});

describe('fast path, in process', () => {
  it('serves hits while the JavaScript thread is blocked; a miss waits for JavaScript', () => {
    const p = inProcess();
    const data = seed(p, 2);
    // execFileSync blocks this (the JavaScript) thread until curl is done: only the I/O thread can answer.
    const out = curl(['-s', '-r', `${4 * MiB - 10}-${4 * MiB + 9}`, `${p.url}/v1/objects/models/w.bin`]);
    expect(out.equals(data.subarray(4 * MiB - 10, 4 * MiB + 10))).toBe(true);
    const miss = (() => {
      try {
        curl([
          '-s',
          '--max-time',
          '1',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          `${p.url}/v1/objects/models/other.bin`,
        ]);
        return 'answered';
      } catch (err) {
        return (err as { status?: number }).status === 28 ? 'timed out' : String(err);
      }
    })();
    expect(miss).toBe('timed out');
    expect(p.door.stats().fastHits).toBe(1);
    expect(p.door.stats().fastNoBinding).toBe(1);
  });

  it('stops using a binding at its deadline, and a token outside its containers goes to JavaScript', async () => {
    const p = inProcess();
    // Long enough for the requests below on a loaded machine (or under ASan); waited out at the end.
    const validMs = 3_000;
    seed(p, 1, validMs);
    const boundAt = Date.now(); // the binding's deadline is at most validMs from here
    const token = 't'.repeat(32);
    p.tokens.replace(true, [
      { digest: createHash('sha256').update(token).digest(), admin: false, containers: ['models'] },
    ]);
    const ask = (auth?: string) =>
      get(p.url, '/v1/objects/models/w.bin', auth ? { Authorization: auth } : {});
    expect((await ask(`Bearer ${token}`)).status).toBe(200);
    expect((await ask('Bearer wrong-token-wrong-token')).status).toBe(404); // JavaScript's answer
    expect((await ask()).status).toBe(404);
    p.tokens.replace(true, [
      { digest: createHash('sha256').update(token).digest(), admin: false, containers: ['other'] },
    ]);
    expect((await ask(`Bearer ${token}`)).status).toBe(404);
    expect(p.door.stats().fastUnauthorised).toBe(3);
    p.tokens.replace(false, []);
    expect((await ask()).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, boundAt + validMs + 100 - Date.now())));
    expect((await ask()).status).toBe(404);
    expect(p.door.stats().fastNoBinding).toBe(1);
    expect(p.door.stats().fastHits).toBe(2);
  });

  it('holds fast-path answers for slow clients within maxFastQueuedBytes, all connections; past it JavaScript answers', async () => {
    const p = inProcess({ maxFastQueuedBytes: 6 * MiB });
    seed(p, 4); // a 16 MiB object
    const slow = await RawConnection.open(p.door.port);
    slow.socket.pause(); // never reads: its 16 MiB answer stays queued (counted until written)
    slow.send('GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => (p.door.stats().fastQueuedBytes ?? 0) >= 6 * MiB, {
      what: 'a fast-path answer queued past the bound',
      timeoutMs: 20_000,
    });
    // Another client's hit now goes to JavaScript (which would reserve in its send budget).
    const r = await get(p.url, '/v1/objects/models/w.bin');
    expect({ status: r.status, body: r.body.toString() }).toEqual({ status: 404, body: 'from javascript' });
    expect(p.door.stats().fastOverBudget).toBe(1);
    expect(p.door.stats().fastHits).toBe(1);
    slow.close();
    await until(() => p.door.stats().fastQueuedBytes === 0 && p.door.stats().connectionsOpen === 0, {
      what: 'the slow client gone, its bytes no longer counted',
      timeoutMs: 20_000,
    });
    // Below the bound again: the fast path answers.
    const again = await get(p.url, '/v1/objects/models/w.bin', { Range: 'bytes=0-99' });
    expect(again.status).toBe(206);
    expect(p.door.stats().fastHits).toBe(2);
    // Uncounted once written: the I/O thread counts after its write returns, which the client may beat.
    await until(() => p.door.stats().fastQueuedBytes === 0, { what: 'the small answer no longer counted' });
  });

  it('keeps at most 10,000 access records for a blocked JavaScript thread and counts the ones it drops', async () => {
    const p = inProcess({ accessLog: true });
    seed(p, 1);
    // 10,100 one-byte range hits over one keep-alive connection while this (the JavaScript) thread
    // is blocked in execFileSync: only the I/O thread answers, and nothing takes its records.
    const n = 10_100;
    const config = join(mkdtempSync(join(tmpdir(), 'wc-access-')), 'curl.conf');
    const url = `url = "${p.url}/v1/objects/models/w.bin"\noutput = "/dev/null"\n`;
    writeFileSync(config, `range = "0-0"\n${url.repeat(n)}`);
    curl(['-s', '-K', config]);
    expect(p.door.stats().fastHits).toBe(n);
    await until(() => p.access.length + p.door.stats().accessDropped >= n, {
      what: 'every record taken or dropped',
      timeoutMs: 20_000,
    });
    expect(p.access.length).toBe(10_000);
    expect(p.door.stats().accessDropped).toBe(n - 10_000);
    expect(p.access[0]).toMatchObject({
      method: 'GET',
      target: '/v1/objects/models/w.bin',
      status: 206,
      bytes: 1,
    });
    // Taken records free their places: the next answers are logged again.
    curl(['-s', '-r', '0-0', '-o', '/dev/null', `${p.url}/v1/objects/models/w.bin`]);
    await until(() => p.access.length === 10_001, { what: 'a record after the drain', timeoutMs: 20_000 });
    expect(p.door.stats().accessDropped).toBe(n - 10_000);
  });

  it('a client that leaves mid-body leaves no chunk reference behind', async () => {
    const p = inProcess();
    seed(p, 4);
    const before = p.store.stats().outstandingRefs;
    const c = await RawConnection.open(p.door.port);
    c.socket.pause(); // never reads: 16 MiB answers wait in the door (reading stops at maxBufferedBytes)
    const req = 'GET /v1/objects/models/w.bin HTTP/1.1\r\nHost: x\r\n\r\n';
    c.send(req.repeat(8));
    await until(() => (p.door.stats().fastHits ?? 0) >= 1, {
      what: 'a fast-path answer queued',
      timeoutMs: 20_000,
    });
    await sleep(200);
    expect(p.door.stats().bytesWritten).toBeLessThan(16 * MiB); // still in the middle of its body
    expect(p.door.stats().fastChunkRefs).toBeGreaterThan(0);
    c.close();
    await until(() => p.door.stats().fastChunkRefs === 0 && p.door.stats().connectionsOpen === 0, {
      what: 'chunk references released',
      timeoutMs: 20_000,
    });
    // The store's own count agrees (the Buffers commit() returned may have been collected meanwhile).
    expect(p.store.stats().outstandingRefs).toBeLessThanOrEqual(before);
    expect(p.door.stats().inFlight).toBe(0);
    expect(p.door.stats().bufferedBytes).toBe(0);
  });
});
