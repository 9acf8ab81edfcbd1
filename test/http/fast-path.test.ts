/**
 * The native door's fast path (docs/native-http-door.md, "The fast path"):
 *
 * - in this process, the door with a real native store, bindings and tokens:
 *   hits are answered while the JavaScript thread is blocked (a miss is not);
 *   a binding past its deadline is not used; a client that leaves in the
 *   middle of pipelined 4 MiB answers leaves no chunk reference behind;
 * - real node processes: an invalidation (a home's own binding) and a revoke
 *   (a sidecar's lease) remove the native binding before they are answered,
 *   so a read after the answer never gets the old version; a token outside
 *   its containers gets JavaScript's 403, with the fast path declining it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NativeBindings, NativeTokens } from '../../src/http/native-binding.js';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { createNativeStore, type NativeStore } from '../../src/store/native.js';
import { binding } from '../../src/transport/binding.js';
import { addresses, replaceAtOrigin, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { RawConnection } from '../harness/raw-http.js';
import { until } from '../harness/until.js';

const MiB = 2 ** 20;
const running: NodeProcess[] = [];
const doors: NativeHttpDoor[] = [];
afterEach(async () => {
  for (const d of doors.splice(0)) d.stop();
  await Promise.all(running.splice(0).map((p) => p.kill()));
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

interface InProcess {
  door: NativeHttpDoor;
  store: NativeStore;
  bindings: NativeBindings;
  tokens: NativeTokens;
  toJs: NativeHttpRequest[];
  url: string;
}

/** A door whose fast path reads a real native store; JavaScript answers 599-free 404s to whatever reaches it. */
function inProcess(): InProcess {
  const store = createNativeStore({ maxBytes: 64 * MiB });
  const bindings = new (binding().NativeBindings)();
  const tokens = new (binding().NativeTokens)();
  const toJs: NativeHttpRequest[] = [];
  const door = NativeHttpDoor.start(
    {
      host: '127.0.0.1',
      port: 0,
      threads: 1,
      fast: { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000 },
    },
    {
      onRequest(req) {
        toJs.push(req);
        door.respond(req.id, 404, { 'Content-Type': 'text/plain' }, Buffer.from('from javascript'));
      },
    },
  );
  doors.push(door);
  return { door, store, bindings, tokens, toJs, url: `http://127.0.0.1:${door.port}` };
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

describe('fast path, in process', () => {
  it('serves hits while the JavaScript thread is blocked; a miss waits for JavaScript', () => {
    const p = inProcess();
    const data = seed(p, 2);
    // execFileSync blocks this (the JavaScript) thread until curl is done: only the I/O thread can answer.
    const out = execFileSync('curl', [
      '-s',
      '-r',
      `${4 * MiB - 10}-${4 * MiB + 9}`,
      `${p.url}/v1/objects/models/w.bin`,
    ]);
    expect(out.equals(data.subarray(4 * MiB - 10, 4 * MiB + 10))).toBe(true);
    const miss = (() => {
      try {
        execFileSync('curl', [
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
    seed(p, 1, 300);
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
    await new Promise((r) => setTimeout(r, 400));
    expect((await ask()).status).toBe(404);
    expect(p.door.stats().fastNoBinding).toBe(1);
    expect(p.door.stats().fastHits).toBe(2);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FILE = 300_000;

/** Version `v` of the file: every byte says which. */
const content = (v: number) => Buffer.alloc(FILE, v);

async function readVersion(url: string, key: string): Promise<number> {
  const r = await get(url, `/v1/objects/models/${key}`);
  if (r.status !== 200 || !r.complete)
    throw new Error(`GET ${key}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  const v = r.body[0]!;
  if (!r.body.equals(content(v))) throw new Error('a body that mixes versions');
  return v;
}

async function invalidate(url: string, key: string): Promise<void> {
  const res = await fetch(`${url}/v1/invalidate`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ container: 'models', key }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/**
 * Reads through `reader` (its fast path warm), replaces the file, invalidates through
 * `home`, and reads again at once: `rounds` times, with a reader hammering the fast
 * path meanwhile. Every read after an answered invalidation must be of the new version.
 */
async function invalidateWhileHit(root: string, home: NodeProcess, reader: NodeProcess, rounds: number) {
  const key = 'f.bin';
  let stop = false;
  const hammer = (async () => {
    while (!stop) await readVersion(reader.url, key).catch(() => 0);
  })();
  try {
    for (let v = 1; v <= rounds; v++) {
      await until(async () => (await readVersion(reader.url, key)) === v, {
        what: `v${v} served`,
        timeoutMs: 20_000,
      });
      const hits = await reader.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
      await until(
        async () =>
          (await readVersion(reader.url, key)) === v &&
          (await reader.metric('weightcache_http_fastpath_requests_total', { result: 'hit' })) > hits,
        { what: `v${v} on the fast path`, timeoutMs: 20_000 },
      );
      replaceAtOrigin(root, key, content(v + 1));
      await invalidate(home.url, key);
      expect(await readVersion(reader.url, key)).toBe(v + 1);
    }
  } finally {
    stop = true;
    await hammer;
  }
  expect(await reader.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
}

describe('fast path, real node processes', () => {
  it('an invalidation removes a lone node’s binding before it is answered', async () => {
    const root = seedOrigin({ 'f.bin': content(1) });
    const node = await startNodeProcess({
      config: { http: { door: 'native', threads: 1 }, origin: { type: 'fs', fs: { root } } },
    });
    running.push(node);
    await invalidateWhileHit(root, node, node, 5);
  }, 120_000);

  it('a sidecar acknowledges a revoke only after its native binding is gone', async () => {
    const port = await freePort();
    const members = addresses(1, port, 61);
    const root = seedOrigin({ 'f.bin': content(1) });
    const leases = { leases: { term: '5s', margin: '500ms' } };
    const home = await startMember({ root, self: members[0]!, members, config: leases, running });
    const sc = await startSidecar({
      root,
      members,
      config: { ...leases, http: { door: 'native', threads: 1 } },
      running,
    });
    await sleep(6_000); // the home settles (waits out any predecessor's leases)
    await invalidateWhileHit(root, home, sc, 4);
    expect(await sc.metric('weightcache_lease_revokes_received_total')).toBeGreaterThan(0);
    expect(await sc.metric('weightcache_stale_reads_total')).toBe(0);
  }, 180_000);

  it('a token outside its containers gets the JavaScript door’s 403; inside, the fast path', async () => {
    const root = seedOrigin({ 'f.bin': content(1) });
    replaceAtOrigin(root, 'c.bin', content(3), 'other');
    const all = 'a'.repeat(32);
    const models = 'b'.repeat(32);
    const tokensFile = `${root}/tokens`;
    writeFileSync(tokensFile, `${all}\n${models} models\n`);
    const node = await startNodeProcess({
      config: {
        http: { door: 'native', threads: 1 },
        origin: { type: 'fs', fs: { root } },
        auth: { tokensFile },
      },
    });
    running.push(node);
    const ask = (token: string) =>
      get(node.url, '/v1/objects/other/c.bin', { Authorization: `Bearer ${token}` });
    expect((await ask(all)).status).toBe(200); // resolves and fills: bound, in DRAM
    const hits = await node.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
    expect((await ask(all)).status).toBe(200);
    expect(await node.metric('weightcache_http_fastpath_requests_total', { result: 'hit' })).toBe(hits + 1);
    const denied = await ask(models);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body.toString())).toEqual({
      code: 'FORBIDDEN',
      message: 'this token may not read container other',
    });
    expect(await node.metric('weightcache_http_fastpath_requests_total', { result: 'unauthorised' })).toBe(1);
  }, 120_000);
});
