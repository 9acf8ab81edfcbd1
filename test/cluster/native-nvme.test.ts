/**
 * READ_CHUNK for a chunk only on NVMe, answered on the transport's I/O thread
 * (docs/transport.md, "Served from the native store"): real node processes on
 * 127.0.0.x over an fs origin, restarted on their directories so their DRAM is
 * empty and every chunk they hold is only in their NVMe tier's chunk files.
 *   - a two-node cluster: the peer reads the whole object through HTTP, its
 *     owner's chunks come over the transport, read from the owner's chunk
 *     files and verified block by block without JavaScript, byte for byte the
 *     origin's;
 *   - a chunk file with one flipped byte is never served: the read fails its
 *     CRC32C, JavaScript answers (dropping and refetching the chunk), the peer
 *     gets the origin's bytes and the failure is counted.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import type { ChunkName } from '../../src/chunk/name.js';
import { ownerOf } from '../../src/placement/ownership.js';
import { addressOfName } from '../../src/store/address.js';
import { TransportClient } from '../../src/transport/client.js';
import { findChunkFile as chunkFile, damageChunkFile as damage } from '../harness/chunk-files.js';
import { seedOrigin, startMember } from '../harness/cluster.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';

const CHUNK = 256 * 1024; // the cluster harness's chunk size
const CHUNKS = 16;
const bytes = randomBytes(CHUNKS * CHUNK - 1000); // the last chunk short
const running: NodeProcess[] = [];
let root: string;
let etag: string;
let addrA: string;
let addrB: string;
let dirA: string;
let dirB: string;

const member = (self: string, dir?: string, config?: Record<string, unknown>) =>
  startMember({ root, self, members: [addrA, addrB], dir, running, timeoutMs: 60_000, config });

async function stop(n: NodeProcess): Promise<void> {
  expect(await n.stop()).toBe(0);
  running.splice(running.indexOf(n), 1);
}

async function nvmeEntries(n: NodeProcess): Promise<number> {
  const r = await fetch(`${n.url}/v1/status`);
  return (JSON.parse(await r.text()) as { tiers: { nvme: { entries: number } } }).tiers.nvme.entries;
}

function chunkName(index: number): ChunkName {
  return {
    originId: `fs:${resolve(root)}`,
    container: 'models',
    key: 'w.bin',
    etag,
    size: bytes.length,
    chunkSize: CHUNK,
    index,
  };
}

function extent(index: number): Buffer {
  return bytes.subarray(index * CHUNK, Math.min(bytes.length, (index + 1) * CHUNK));
}

const nvmeServed = (n: NodeProcess) => n.metric('weightcache_transport_native_nvme_served_total');
const passed = (n: NodeProcess, reason?: string) =>
  n.metric('weightcache_transport_native_passed_total', reason ? { reason } : {});

/** Binds the object's name on `n` (its first read is JavaScript's): one byte of the last chunk. */
async function bind(n: NodeProcess): Promise<void> {
  const r = await fetch(`${n.url}/v1/objects/models/w.bin`, {
    headers: { Range: `bytes=${bytes.length - 1}-` },
  });
  expect(r.status).toBe(206);
  expect(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(bytes.length - 1))).toBe(true);
}

beforeAll(async () => {
  root = seedOrigin({ 'w.bin': bytes });
  const [pa, pb] = await Promise.all([freePort(), freePort()]);
  addrA = `127.0.0.61:${pa}`;
  addrB = `127.0.0.62:${pb}`;
  // Filled once through A: each member's chunks land in its DRAM and its NVMe tier.
  const [a, b] = await Promise.all([member(addrA), member(addrB)]);
  dirA = a.dir;
  dirB = b.dir;
  const r = await fetch(`${a.url}/v1/objects/models/w.bin`);
  expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
  etag = r.headers.get('etag')!.replace(/"/g, '');
  await until(async () => (await nvmeEntries(a)) + (await nvmeEntries(b)) >= CHUNKS, {
    what: 'the NVMe tiers holding every chunk',
    timeoutMs: 20_000,
  });
  await Promise.all([stop(a), stop(b)]);
}, 120_000);

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

describe('READ_CHUNK of a chunk only on NVMe, answered on the I/O thread', () => {
  it('a peer reads its owner’s NVMe-only chunks through the transport without JavaScript, byte for byte', async () => {
    // Started again on their directories: DRAM empty, every chunk only in a chunk file.
    const [a, b] = await Promise.all([member(addrA, dirA), member(addrB, dirB)]);
    await Promise.all([bind(a), bind(b)]);
    const [servedA, servedB] = await Promise.all([nvmeServed(a), nvmeServed(b)]);
    const [passedA, passedB] = await Promise.all([passed(a), passed(b)]);
    const r = await fetch(`${b.url}/v1/objects/models/w.bin`);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
    // B read A's chunks from A: A's I/O thread read them from its chunk files (and its
    // JavaScript chunk server was handed none of them).
    expect((await nvmeServed(a)) - servedA).toBeGreaterThan(0);
    expect((await passed(a)) - passedA).toBe(0);
    expect((await nvmeServed(b)) + (await passed(b)) - servedB - passedB).toBe(0);
    expect(await a.metric('weightcache_nvme_native_reads_total', { result: 'corrupt' })).toBe(0);
    await until(async () => (await a.metric('weightcache_transport_native_chunk_references')) === 0, {
      what: 'native chunk references back to 0',
    });
    await until(async () => (await a.metric('weightcache_nvme_native_read_buffer_bytes')) === 0, {
      what: 'read buffers released',
    });
    await Promise.all([stop(a), stop(b)]);
  }, 120_000);

  it('serves a sub-range from NVMe with its CRC32C, and never a damaged block: JavaScript answers with the origin’s bytes', async () => {
    // The chunks A holds on NVMe (its own, and any it kept of B's); the last chunk binds the name.
    const held = Array.from({ length: CHUNKS - 1 }, (_, i) => i).filter((i) => chunkFile(dirA, i));
    expect(held.length).toBeGreaterThanOrEqual(2);
    const [bad, good] = [held[0]!, held[1]!];
    damage(chunkFile(dirA, bad)!, 100_000);
    // B runs (the name's lease needs its members) but reads nothing: A's transport answers only ours.
    const [a, b] = await Promise.all([member(addrA, dirA), member(addrB, dirB)]);
    await bind(a);
    const client = new TransportClient({
      host: '127.0.0.61',
      port: Number(addrA.split(':')[1]),
      timeoutMs: 20_000,
    });
    try {
      const served = await nvmeServed(a);
      // A sub-range of an intact chunk: only its blocks read, its CRC32C computed on the I/O thread.
      const part = await client.readChunk(chunkName(good), 5000, 70_000);
      expect(part.data.equals(extent(good).subarray(5000, 75_000))).toBe(true);
      expect(part.crc32c >>> 0).toBe(crc32c(extent(good).subarray(5000, 75_000)) >>> 0);
      expect((await nvmeServed(a)) - served).toBe(1);
      // The whole intact chunk, with the CRC32C its file's header holds.
      const whole = await client.readChunk(chunkName(good), 0, extent(good).length);
      expect(whole.data.equals(extent(good))).toBe(true);
      expect(whole.crc32c >>> 0).toBe(crc32c(extent(good)) >>> 0);
      expect((await nvmeServed(a)) - served).toBe(2);
      // The damaged chunk: the right bytes, from JavaScript's fallback.
      const fixed = await client.readChunk(chunkName(bad), 0, extent(bad).length);
      expect(fixed.data.equals(extent(bad))).toBe(true);
      expect(fixed.crc32c >>> 0).toBe(crc32c(extent(bad)) >>> 0);
      expect((await nvmeServed(a)) - served).toBe(2);
      expect(await passed(a, 'nvme_failed')).toBe(1);
      expect(await a.metric('weightcache_nvme_native_reads_total', { result: 'corrupt' })).toBe(1);
      expect(await a.metric('weightcache_checksum_failures_total')).toBeGreaterThanOrEqual(1);
      // And again: the refetched chunk, right (from DRAM now, natively).
      const again = await client.readChunk(chunkName(bad), 0, extent(bad).length);
      expect(again.data.equals(extent(bad))).toBe(true);
    } finally {
      await client.close();
    }
    await until(async () => (await a.metric('weightcache_nvme_native_read_buffer_bytes')) === 0, {
      what: 'read buffers released',
    });
    await Promise.all([stop(a), stop(b)]);
  }, 120_000);

  it('with transport.nativeReads off, JavaScript sends a part of an NVMe chunk only after verifying its blocks', async () => {
    // Chunks A owns and holds on NVMe that the tests above left intact: one to damage, one to read.
    const members = [addrA, addrB].map((address) => ({ address, weight: 1 }));
    const owned = Array.from({ length: CHUNKS - 1 }, (_, i) => i).filter(
      (i) => chunkFile(dirA, i) && ownerOf(addressOfName(chunkName(i)).key, members) === addrA,
    );
    expect(owned.length).toBeGreaterThanOrEqual(3);
    const [bad, good] = [owned.at(-1)!, owned.at(-2)!];
    damage(chunkFile(dirA, bad)!, 100_000);
    const [a, b] = await Promise.all([
      member(addrA, dirA, { transport: { nativeReads: false } }),
      member(addrB, dirB),
    ]);
    const client = new TransportClient({
      host: '127.0.0.61',
      port: Number(addrA.split(':')[1]),
      timeoutMs: 20_000,
    });
    try {
      const part = await client.readChunk(chunkName(good), 5000, 70_000);
      expect(part.data.equals(extent(good).subarray(5000, 75_000))).toBe(true);
      expect(part.crc32c >>> 0).toBe(crc32c(extent(good).subarray(5000, 75_000)) >>> 0);
      // The damaged block's range: never its bytes with a CRC32C computed over them; the origin's.
      const fixed = await client.readChunk(chunkName(bad), 90_000, 20_000);
      expect(fixed.data.equals(extent(bad).subarray(90_000, 110_000))).toBe(true);
      expect(fixed.crc32c >>> 0).toBe(crc32c(extent(bad).subarray(90_000, 110_000)) >>> 0);
      expect(await a.metric('weightcache_checksum_failures_total')).toBeGreaterThanOrEqual(1);
      expect(await nvmeServed(a)).toBe(0);
    } finally {
      await client.close();
    }
    await Promise.all([stop(a), stop(b)]);
  }, 120_000);
});
