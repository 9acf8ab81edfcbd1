/**
 * The stand-in owner, with real node processes and sidecars on loopback
 * addresses: when a chunk's owner is down, the next member in rank fills it
 * once for the whole fleet (docs/cluster.md, "Stand-in owner") — not every
 * reader from the origin — and a sidecar that may not read the origin still
 * reads through it. The owner, back, copies its chunks from the stand-in.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChunkName, chunkCount, chunkKey, chunkName } from '../../src/chunk/name.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { homeOf } from '../../src/placement/ownership.js';
import { rank } from '../../src/placement/rendezvous.js';
import { TransportClient } from '../../src/transport/client.js';
import { addresses, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';

const CHUNK = 256 * 1024;
const running: NodeProcess[] = [];
const quiet = { warn() {}, info() {}, error() {}, debug() {} };

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

const asMembers = (a: readonly string[]) => a.map((address) => ({ address, weight: 1 }));

/**
 * A checkpoint whose object names are homed (docs/coherence.md) away from `avoid`:
 * these tests are about chunks, and a name whose home is down is resolved at the
 * origin — which a sidecar with originFallback off may not do.
 */
function model(members: readonly string[], ...avoid: string[]): Record<string, Buffer> {
  const sizes = [9 * CHUNK + 12_345, 7 * CHUNK, 5 * CHUNK + 1];
  const files: Record<string, Buffer> = {};
  let n = 0;
  for (const size of sizes) {
    let key: string;
    do key = `llama/model-${n++}.safetensors`;
    while (avoid.includes(homeOf({ container: 'models', key }, asMembers(members))));
    files[key] = randomBytes(size);
  }
  return files;
}

interface Placed {
  readonly name: ChunkName;
  readonly bytes: number;
  readonly ranked: string[];
}

/** Every chunk of `files` with its ranking over `members`, computed independently of the nodes. */
async function placed(
  root: string,
  files: Record<string, Buffer>,
  members: readonly string[],
): Promise<Placed[]> {
  const origin = new FsOrigin({ root });
  const out: Placed[] = [];
  for (const key of Object.keys(files)) {
    const info = await origin.stat({ container: 'models', key });
    for (let i = 0; i < chunkCount(info.size, CHUNK); i++) {
      const name = chunkName(origin.id, info, CHUNK, i);
      out.push({
        name,
        bytes: Math.min(CHUNK, info.size - i * CHUNK),
        ranked: rank(chunkKey(name), asMembers(members)).map((m) => m.address),
      });
    }
  }
  return out;
}

async function sum(ps: NodeProcess[], metric: string, labels?: Record<string, string>): Promise<number> {
  const vals = await Promise.all(ps.map((p) => p.metric(metric, labels)));
  return vals.reduce((a, b) => a + b, 0);
}

async function readAll(p: NodeProcess, files: Record<string, Buffer>): Promise<void> {
  for (const [key, bytes] of Object.entries(files)) {
    const res = await get(p.url, `/v1/objects/models/${key}`);
    expect(res.status, `${p.url} ${key}: ${res.body.toString().slice(0, 200)}`).toBe(200);
    expect(res.body.equals(bytes), `${p.url} ${key}`).toBe(true);
  }
}

/** Starts `members`, kills `members[dead]` with SIGKILL, and returns the live nodes by address. */
async function clusterWithDeadNode(root: string, members: string[], dead: number) {
  const nodes = await Promise.all(members.map((m) => startMember({ root, self: m, members, running })));
  await nodes[dead]!.kill();
  running.splice(running.indexOf(nodes[dead]!), 1);
  const live = new Map(members.map((m, i) => [m, nodes[i]!] as const).filter(([, _n], i) => i !== dead));
  return { nodes, live, deadDir: nodes[dead]!.dir };
}

describe('a stand-in owner fills a dead owner’s chunks once for the fleet', () => {
  it('3 nodes, 2 sidecars, one node SIGKILLed: the dead share is read from the origin once, then copied back to the restarted owner', async () => {
    const members = addresses(3, await freePort(), 71);
    const dead = members[1]!;
    const files = model(members, dead);
    const root = seedOrigin(files);
    const chunks = await placed(root, files, members);
    const deadShare = chunks.filter((c) => c.ranked[0] === dead);
    expect(deadShare.length, 'the dead node owns chunks of the model').toBeGreaterThan(0);
    const total = chunks.reduce((n, c) => n + c.bytes, 0);

    const { live } = await clusterWithDeadNode(root, members, 1);
    const sidecars = await Promise.all([
      startSidecar({ root, members, running }),
      startSidecar({ root, members, running }),
    ]);
    // Both GPU hosts load the whole model at once.
    await Promise.all(sidecars.map((s) => readAll(s, files)));

    // Each chunk was read from the origin exactly once for the whole fleet: live owners
    // their own, and for the dead node's share the next in rank — not each sidecar.
    expect(await sum(sidecars, 'weightcache_origin_bytes_total')).toBe(0);
    expect(await sum([...live.values()], 'weightcache_origin_bytes_total')).toBe(total);
    for (const [address, node] of live) {
      const expected = chunks
        .filter((c) => c.ranked[0] === address || (c.ranked[0] === dead && c.ranked[1] === address))
        .reduce((n, c) => n + c.bytes, 0);
      expect(await node.metric('weightcache_origin_bytes_total'), address).toBe(expected);
    }
    expect(
      await sum([...live.values()], 'weightcache_stand_in_requests_total', { result: 'fill' }),
    ).toBeGreaterThan(0);
    // The sidecars did find the owner down (then backed it off, not asking it per chunk).
    expect(await sum(sidecars, 'weightcache_peer_requests_total', { result: 'error' })).toBeGreaterThan(0);
    expect(await sum(sidecars, 'weightcache_peer_requests_total', { result: 'error' })).toBeLessThanOrEqual(
      2 * deadShare.length,
    );

    // The owner comes back (a new, empty disk) and a third host reads the model: the owner
    // probes the others first and copies its chunks from the stand-in, 0 origin bytes.
    const back = await startMember({ root, self: dead, members, running });
    const reader = await startSidecar({ root, members, running });
    await readAll(reader, files);
    expect(await back.metric('weightcache_origin_bytes_total')).toBe(0);
    expect(await back.metric('weightcache_peer_requests_total', { result: 'hit' })).toBe(deadShare.length);
    expect(await reader.metric('weightcache_origin_bytes_total')).toBe(0);
    expect(await sum([...live.values()], 'weightcache_origin_bytes_total')).toBe(total);
  });

  it('with sidecar.originFallback off the sidecars read through the stand-in: no EIO/503 while healthy nodes exist', async () => {
    const members = addresses(3, await freePort(), 81);
    const dead = members[0]!;
    const files = model(members, dead);
    const root = seedOrigin(files);
    const chunks = await placed(root, files, members);
    expect(chunks.some((c) => c.ranked[0] === dead)).toBe(true);
    const total = chunks.reduce((n, c) => n + c.bytes, 0);

    const { live } = await clusterWithDeadNode(root, members, 0);
    const noOrigin = { sidecar: { originFallback: false } };
    const sidecars = await Promise.all([
      startSidecar({ root, members, config: noOrigin, running }),
      startSidecar({ root, members, config: noOrigin, running }),
    ]);
    await Promise.all(sidecars.map((s) => readAll(s, files)));
    expect(await sum(sidecars, 'weightcache_origin_bytes_total')).toBe(0);
    expect(await sum([...live.values()], 'weightcache_origin_bytes_total')).toBe(total);
  });

  it('two of three nodes SIGKILLed: the last one stands in for both, reported down together, and fills each chunk once', async () => {
    const members = addresses(3, await freePort(), 101);
    const files = model(members, members[0]!, members[1]!);
    const root = seedOrigin(files);
    const chunks = await placed(root, files, members);
    // Chunks the survivor ranks third for: both members above it are down.
    expect(chunks.some((c) => c.ranked[2] === members[2])).toBe(true);
    const total = chunks.reduce((n, c) => n + c.bytes, 0);
    const nodes = await Promise.all(members.map((m) => startMember({ root, self: m, members, running })));
    for (const n of nodes.slice(0, 2)) {
      await n.kill();
      running.splice(running.indexOf(n), 1);
    }
    const sidecar = await startSidecar({
      root,
      members,
      config: { sidecar: { originFallback: false } },
      running,
    });
    await readAll(sidecar, files);
    expect(await sidecar.metric('weightcache_origin_bytes_total')).toBe(0);
    expect(await nodes[2]!.metric('weightcache_origin_bytes_total')).toBe(total);
    // Both dead members were found down, then skipped in backoff — not asked per chunk
    // (a few reads in flight together may each fail on them before the first failure lands).
    const errors = await sidecar.metric('weightcache_peer_requests_total', { result: 'error' });
    expect(errors).toBeGreaterThanOrEqual(2);
    expect(errors).toBeLessThan(chunks.filter((c) => c.ranked[0] !== members[2]).length);
  });

  it('a member refuses to stand in while the owner is up in its view and the asker did not report it down', async () => {
    const members = addresses(3, await freePort(), 91);
    const files = { 'x.bin': randomBytes(2 * CHUNK) };
    const root = seedOrigin(files);
    const nodes = await Promise.all(members.map((m) => startMember({ root, self: m, members, running })));
    const byAddress = new Map(members.map((m, i) => [m, nodes[i]!]));
    const [c] = await placed(root, files, members);
    const [owner, second, third] = c!.ranked as [string, string, string];
    const i = second.lastIndexOf(':');
    const client = new TransportClient({
      host: second.slice(0, i),
      port: Number(second.slice(i + 1)),
      timeoutMs: 10_000,
      logger: quiet,
    });
    try {
      // Reporting only a member ranked below it down: the owner is up here, so NOT_FOUND.
      await expect(client.readChunk(c!.name, 0, c!.bytes, { standInFor: [third] })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(
        await byAddress.get(second)!.metric('weightcache_stand_in_requests_total', { result: 'refused' }),
      ).toBe(1);
      expect(await byAddress.get(second)!.metric('weightcache_origin_bytes_total')).toBe(0);
      // A plain (non-stand-in) request to a non-owner does not fill either, as before.
      await expect(client.readChunk(c!.name, 0, c!.bytes)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await byAddress.get(second)!.metric('weightcache_origin_bytes_total')).toBe(0);
      // The third in rank refuses even when the owner is reported down: the second is up there.
      const j = third.lastIndexOf(':');
      const toThird = new TransportClient({
        host: third.slice(0, j),
        port: Number(third.slice(j + 1)),
        timeoutMs: 10_000,
        logger: quiet,
      });
      try {
        await expect(toThird.readChunk(c!.name, 0, c!.bytes, { standInFor: [owner] })).rejects.toMatchObject({
          code: 'NOT_FOUND',
        });
      } finally {
        await toThird.close();
      }
      expect(await byAddress.get(third)!.metric('weightcache_origin_bytes_total')).toBe(0);
      // The asker's report that the owner is down is a failure observed by the stand-in
      // (members are authenticated peers): it fills, once, and keeps the chunk.
      const got = await client.readChunk(c!.name, 0, c!.bytes, { standInFor: [owner] });
      expect(got.data.equals(files['x.bin'].subarray(0, c!.bytes))).toBe(true);
      expect(await byAddress.get(second)!.metric('weightcache_origin_bytes_total')).toBe(c!.bytes);
      expect(await byAddress.get(owner)!.metric('weightcache_origin_bytes_total')).toBe(0);
    } finally {
      await client.close();
    }
  });
});
