/**
 * A real cluster: node processes on distinct loopback addresses
 * (127.0.0.11, .12, …) talking over the native transport, sidecars in front
 * of them, one fs origin. What a platform team relies on: every path serves
 * the origin's bytes, the origin is read once per chunk for the whole fleet,
 * a node dying under load costs no reader anything, and a scale-out moves
 * only the new member's share — copied from the previous owners, not
 * re-downloaded.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkCount, chunkKey, chunkName } from '../../src/chunk/name.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { rank } from '../../src/placement/rendezvous.js';
import { addresses, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';

const CHUNK = 256 * 1024;
const running: NodeProcess[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

function model(): Record<string, Buffer> {
  return {
    'llama/model-00001-of-00002.safetensors': randomBytes(9 * CHUNK + 12_345),
    'llama/model-00002-of-00002.safetensors': randomBytes(7 * CHUNK),
    'llama/config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
  };
}

function getUnix(socketPath: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => (res.complete ? resolve(Buffer.concat(parts)) : reject(new Error('short body'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function sum(ps: NodeProcess[], metric: string, labels?: Record<string, string>): Promise<number> {
  const vals = await Promise.all(ps.map((p) => p.metric(metric, labels)));
  return vals.reduce((a, b) => a + b, 0);
}

describe('a cluster of nodes and sidecars', () => {
  it('every path is byte-identical to the origin, and the origin is read once per chunk for the fleet', async () => {
    const files = model();
    const root = seedOrigin(files);
    const members = addresses(3, await freePort());
    const nodes = await Promise.all(
      members.map((m) => startMember({ root, self: m, members: members, running })),
    );
    const sidecars = [
      await startSidecar({ root, members: members, running }),
      await startSidecar({ root, members: members, running }),
    ];
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);

    for (const [key, bytes] of Object.entries(files)) {
      const path = `/v1/objects/models/${key}`;
      for (const p of [...sidecars, ...nodes]) {
        const res = await get(p.url, path);
        expect(res.status, `${p.url}${path}`).toBe(200);
        expect(res.body.equals(bytes), `${p.url}${path}`).toBe(true);
      }
      for (const s of sidecars) {
        expect((await getUnix(join(s.dir, 'weightcache.sock'), path)).equals(bytes)).toBe(true);
      }
    }
    // Only owners read the origin, once per chunk, whoever asked and however often.
    expect(await sum(nodes, 'weightcache_origin_bytes_total')).toBe(total);
    expect(await sum(sidecars, 'weightcache_origin_bytes_total')).toBe(0);
    expect(await sum(sidecars, 'weightcache_peer_requests_total', { result: 'error' })).toBe(0);
    // Chunks crossed the native transport from memory or files, never copied in user space.
    expect(await sum(nodes, 'weightcache_transport_payload_bytes_sent_total')).toBeGreaterThanOrEqual(total);
    expect(await sum(nodes, 'weightcache_transport_payload_bytes_copied_total')).toBe(0);
    expect(await sum(sidecars, 'weightcache_transport_payload_bytes_received_total')).toBeGreaterThanOrEqual(
      total,
    );
    const first = await get(sidecars[1]!.url, '/v1/objects/models/llama/config.json', { Range: 'bytes=0-0' });
    expect(first.headers['x-cache-source']).toBe('dram'); // the sidecar keeps what it read
    const status = JSON.parse((await get(sidecars[0]!.url, '/v1/status')).body.toString());
    expect(status.role).toBe('sidecar');
    expect(status.cluster.members).toEqual([...members].sort());
  });

  it('SIGKILL of a node while 4 clients read through sidecars: 0 wrong bytes, 0 failed reads', async () => {
    const files = model();
    const root = seedOrigin(files);
    const members = addresses(3, await freePort(), 21);
    const nodes = await Promise.all(
      members.map((m) => startMember({ root, self: m, members: members, running })),
    );
    // No local tier to speak of, so every read goes to the owners while one of them dies.
    const tiny = { cache: { chunkSize: '256KiB', dram: { maxBytes: '512KiB' }, nvme: null } };
    const sidecars = [
      await startSidecar({ root, members: members, config: tiny, running }),
      await startSidecar({ root, members: members, config: tiny, running }),
    ];
    let wrong = 0;
    let failed = 0;
    let reads = 0;
    const client = async (i: number) => {
      for (let round = 0; round < 8; round++) {
        for (const [key, bytes] of Object.entries(files)) {
          const res = await get(sidecars[i % 2]!.url, `/v1/objects/models/${key}`).catch(() => undefined);
          reads++;
          if (res?.status !== 200 || !res.complete) failed++;
          else if (!res.body.equals(bytes)) wrong++;
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await new Promise((r) => setTimeout(r, 100));
    await nodes[1]!.kill();
    await Promise.all(clients);
    expect(reads).toBe(4 * 8 * 3);
    expect(wrong).toBe(0);
    expect(failed).toBe(0);
    // The kill landed while reads were under way: sidecars saw the dead peer (a chunk read or a
    // lease request to it failed) and routed around it.
    const sawDead =
      (await sum(sidecars, 'weightcache_peer_requests_total', { result: 'error' })) +
      (await sum(sidecars, 'weightcache_lease_origin_fallbacks_total', { reason: 'unreachable' }));
    expect(sawDead).toBeGreaterThan(0);
    // The dead node's chunks were filled by their stand-in owners (the next in rank), not by
    // each sidecar from the origin (docs/cluster.md, "Stand-in owner").
    expect(await sum(sidecars, 'weightcache_origin_bytes_total')).toBe(0);
    const live = [nodes[0]!, nodes[2]!];
    expect(await sum(live, 'weightcache_stand_in_requests_total', { result: 'fill' })).toBeGreaterThan(0);
  });

  it('adding a node moves only its share of chunks, copied from the previous owners: 0 origin reads', async () => {
    const files = model();
    const root = seedOrigin(files);
    const port = await freePort();
    const three = addresses(3, port, 31);
    const four = addresses(4, port, 31);
    let nodes = await Promise.all(three.map((m) => startMember({ root, self: m, members: three, running })));
    const warm = await startSidecar({ root, members: three, running });
    for (const [key, bytes] of Object.entries(files)) {
      expect((await get(warm.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    // Scale out: every node restarts (warm, same data dirs) with the 4-member list; a new node joins.
    const dirs = nodes.map((n) => n.dir);
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) running.splice(running.indexOf(n), 1);
    nodes = await Promise.all(
      four.map((m, i) => startMember({ root, self: m, members: four, dir: dirs[i], running })),
    );
    const reader = await startSidecar({ root, members: four, running });
    for (const [key, bytes] of Object.entries(files)) {
      expect((await get(reader.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    expect(await sum(nodes, 'weightcache_origin_requests_total', { op: 'read' })).toBe(0);

    // Exactly the chunks the new member now owns were copied to it from the previous owners.
    const origin = new FsOrigin({ root });
    const members = four.map((address) => ({ address, weight: 1 }));
    let moved = 0;
    for (const key of Object.keys(files)) {
      const info = await origin.stat({ container: 'models', key });
      for (let i = 0; i < chunkCount(info.size, CHUNK); i++) {
        const k = chunkKey(chunkName(origin.id, info, CHUNK, i));
        if (rank(k, members)[0]!.address === four[3]) moved++;
      }
    }
    expect(moved).toBeGreaterThan(0);
    expect(await nodes[3]!.metric('weightcache_peer_requests_total', { result: 'hit' })).toBe(moved);
    expect(await sum(nodes.slice(0, 3), 'weightcache_peer_requests_total', { result: 'hit' })).toBe(0);
  });

  it('prefetch on one node warms every chunk at its owner: each owner pulls its own chunks once', async () => {
    const files = model();
    const root = seedOrigin(files);
    const members = addresses(3, await freePort(), 41);
    const nodes = await Promise.all(
      members.map((m) => startMember({ root, self: m, members: members, running })),
    );
    const post = await fetch(`${nodes[0]!.url}/v1/prefetch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ container: 'models', prefix: 'llama/' }),
    });
    expect(post.status).toBe(202);
    const { id } = (await post.json()) as { id: string };
    let state = 'running';
    for (let i = 0; i < 200 && state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      state = ((await (await fetch(`${nodes[0]!.url}/v1/prefetch/${id}`)).json()) as { state: string }).state;
    }
    expect(state).toBe('done');

    // Which node owns which bytes, computed independently of the nodes.
    const origin = new FsOrigin({ root });
    const ranked = members.map((address) => ({ address, weight: 1 }));
    const owned = new Map(members.map((m) => [m, 0]));
    let chunks = 0;
    for (const key of Object.keys(files)) {
      const info = await origin.stat({ container: 'models', key });
      for (let i = 0; i < chunkCount(info.size, CHUNK); i++) {
        const k = chunkKey(chunkName(origin.id, info, CHUNK, i));
        const o = rank(k, ranked)[0]!.address;
        owned.set(o, owned.get(o)! + Math.min(CHUNK, info.size - i * CHUNK));
        chunks++;
      }
    }
    for (const [i, m] of members.entries()) {
      expect(await nodes[i]!.metric('weightcache_origin_bytes_total'), m).toBe(owned.get(m));
    }
    // The prefetching node asked the other owners for one byte per chunk, not the chunks themselves.
    expect(await nodes[0]!.metric('weightcache_peer_bytes_total')).toBeLessThanOrEqual(chunks);
    // A GPU host now reads the whole model without a single origin read.
    const reader = await startSidecar({ root, members: members, running });
    for (const [key, bytes] of Object.entries(files)) {
      expect((await get(reader.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);
    expect(await sum(nodes, 'weightcache_origin_bytes_total')).toBe(total);
    expect(await reader.metric('weightcache_origin_bytes_total')).toBe(0);
  });

  it('a node restarted under a new address (a pod with a new IP) keeps its chunks useful: 0 origin reads', async () => {
    const files = { ...model(), 'llama/extra.safetensors': randomBytes(48 * CHUNK) };
    const root = seedOrigin(files);
    const port = await freePort();
    const before = addresses(3, port, 51); // .51 .52 .53
    const after = [before[0]!, before[1]!, `127.0.0.54:${port}`]; // .53 comes back as .54
    let nodes = await Promise.all(
      before.map((m) => startMember({ root, self: m, members: before, running })),
    );
    const warm = await startSidecar({ root, members: before, running });
    for (const [key, bytes] of Object.entries(files)) {
      expect((await get(warm.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    const dirs = nodes.map((n) => n.dir);
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) running.splice(running.indexOf(n), 1);
    // Same data directories; the third member restarts under another address, so ownership reshuffles.
    nodes = await Promise.all(
      after.map((m, i) => startMember({ root, self: m, members: after, dir: dirs[i], running })),
    );
    const reader = await startSidecar({ root, members: after, running });
    for (const [key, bytes] of Object.entries(files)) {
      expect((await get(reader.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    expect(await sum(nodes, 'weightcache_origin_requests_total', { op: 'read' })).toBe(0);

    // The case only probing beyond the next in rank saves: chunks held by a member that is
    // neither their new owner nor next in rank. Computed independently of the nodes.
    const origin = new FsOrigin({ root });
    const asMembers = (a: string[]) => a.map((address) => ({ address, weight: 1 }));
    const renamed = (a: string) => (a === before[2] ? after[2]! : a);
    let deep = 0;
    for (const key of Object.keys(files)) {
      const info = await origin.stat({ container: 'models', key });
      for (let i = 0; i < chunkCount(info.size, CHUNK); i++) {
        const k = chunkKey(chunkName(origin.id, info, CHUNK, i));
        const holder = renamed(rank(k, asMembers(before))[0]!.address);
        const now = rank(k, asMembers(after));
        if (now[0]!.address !== holder && now[1]!.address !== holder) deep++;
      }
    }
    expect(deep).toBeGreaterThan(0);
  });

  it('an owner whose origin fails passes that answer up: readers neither hit the origin themselves nor back the owner off', async () => {
    const { startHttpOriginServer } = await import('../harness/http-origin-server.js');
    const srv = await startHttpOriginServer();
    try {
      srv.put('models', 'x.bin', randomBytes(CHUNK));
      const self = `127.0.0.61:${await freePort()}`;
      const origin = { type: 'http', timeout: '2s', http: { baseUrl: srv.baseUrl } };
      await startMember({ self, members: [self], config: { origin }, running });
      const sidecar = await startSidecar({ members: [self], config: { origin }, running });
      // Both resolve the name first (HEAD), then the origin starts failing reads.
      expect((await get(sidecar.url, '/v1/objects/models/x.bin', {}, 'HEAD')).status).toBe(200);
      srv.setFault({ mode: 'error-500', methods: ['GET'] });
      for (let i = 0; i < 2; i++) {
        const res = await get(sidecar.url, '/v1/objects/models/x.bin');
        expect(res.status).toBe(502);
        expect(JSON.parse(res.body.toString()).code).toBe('ORIGIN_UNAVAILABLE');
      }
      expect(await sidecar.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(0);
      // Asked the owner both times: the answer did not put it in backoff.
      expect(await sidecar.metric('weightcache_peer_requests_total', { result: 'error' })).toBe(2);
      srv.setFault({ mode: 'ok' });
      expect((await get(sidecar.url, '/v1/objects/models/x.bin')).status).toBe(200);
    } finally {
      await srv.stop();
    }
  });
});
