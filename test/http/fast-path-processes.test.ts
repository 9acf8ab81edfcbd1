/**
 * The native door's fast path across real node processes
 * (docs/coherence.md, "The native binding"): an invalidation (a lone node's
 * own binding) and a revoke (a sidecar's lease from its home) remove the
 * native binding before they are answered, so a read after the answer never
 * gets the old version, while another reader keeps the fast path busy; a
 * token outside its containers gets the JavaScript door's 403, the fast path
 * declining it.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, replaceAtOrigin, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { RawConnection, rawRequest } from '../harness/raw-http.js';
import { until } from '../harness/until.js';

const running: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
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

  it('a GET pipelined behind an invalidation on the same connection gets the new version', async () => {
    const root = seedOrigin({ 'f.bin': content(1) });
    const node = await startNodeProcess({
      config: { http: { door: 'native', threads: 1 }, origin: { type: 'fs', fs: { root } } },
    });
    running.push(node);
    await until(
      async () =>
        (await readVersion(node.url, 'f.bin')) === 1 && (await readVersion(node.url, 'f.bin')) === 1,
    );
    const hits = await node.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
    expect(await readVersion(node.url, 'f.bin')).toBe(1);
    expect(await node.metric('weightcache_http_fastpath_requests_total', { result: 'hit' })).toBeGreaterThan(
      hits,
    );
    replaceAtOrigin(root, 'f.bin', content(2));
    const c = await RawConnection.open(Number(new URL(node.url).port));
    try {
      // One write: the fast path sees the GET while the invalidation is still in JavaScript.
      const body = JSON.stringify({ container: 'models', key: 'f.bin' });
      c.send(
        rawRequest('POST', '/v1/invalidate', { 'Content-Type': 'application/json' }, body) +
          rawRequest('GET', '/v1/objects/models/f.bin'),
      );
      expect((await c.read()).status).toBe(200);
      const got = await c.read();
      expect(got.status).toBe(200);
      expect(got.body.equals(content(2))).toBe(true);
    } finally {
      c.close();
    }
    expect(await node.metric('weightcache_http_fastpath_requests_total', { result: 'busy' })).toBeGreaterThan(
      0,
    );
  }, 120_000);

  it('names served only on the fast path are renewed ahead: they do not lapse to JavaScript every term', async () => {
    const root = seedOrigin({ 'f.bin': content(1) });
    const node = await startNodeProcess({
      config: {
        http: { door: 'native', threads: 1 },
        origin: { type: 'fs', fs: { root } },
        leases: { term: '2s' },
      },
    });
    running.push(node);
    const metric = (result: string) => node.metric('weightcache_http_fastpath_requests_total', { result });
    await readVersion(node.url, 'f.bin'); // resolves, fills, binds
    const lapsed = await metric('no_binding');
    const hits = await metric('hit');
    const until = Date.now() + 7_000; // three and a half terms
    while (Date.now() < until) expect(await readVersion(node.url, 'f.bin')).toBe(1);
    expect(await metric('hit')).toBeGreaterThan(hits + 50);
    // Without renewal every term would end in a request to JavaScript (3 or more here).
    expect((await metric('no_binding')) - lapsed).toBeLessThanOrEqual(1);
  }, 60_000);

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
