/**
 * sidecar.receiveInPlace: a sidecar keeps the chunks it reads from nodes without copying them: the
 * addon reads each READ_CHUNK answer (≥ 64 KiB) straight into DRAM store
 * memory, and the read path publishes it in place after the CRC32C check. A
 * payload corrupted on the way never becomes visible. Real node and sidecar
 * processes on 127.0.0.x; the corruption comes from a TCP proxy between them
 * that flips one byte inside one answer's payload (its framing stays intact).
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLAG_RESPONSE, FrameType, HEADER_BYTES } from '../../src/transport/protocol.js';
import { seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';

const CHUNK = 256 * 1024;
const bytes = randomBytes(6 * CHUNK + 1000);
const running: NodeProcess[] = [];
const servers: Server[] = [];
let root: string;
let node: NodeProcess;
let flips = 0;
let seen: string;

/**
 * Forwards 127.0.0.96:port → the node; in the node → sidecar direction it flips one payload byte
 * of the next READ_CHUNK answer of at least 64 KiB while `flips` > 0.
 */
async function corruptingProxy(port: number, target: number): Promise<void> {
  const server = createServer((client: Socket) => {
    const up = connect({ host: '127.0.0.95', port: target });
    client.on('error', () => {});
    up.on('error', () => {});
    client.pipe(up);
    let pending = Buffer.alloc(0);
    let skip = 0; // payload bytes of the current frame still to pass through unparsed
    up.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      const out: Buffer[] = [];
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, pending.length);
          out.push(pending.subarray(0, n));
          pending = pending.subarray(n);
          skip -= n;
          if (skip > 0 || pending.length === 0) break;
          continue;
        }
        if (pending.length < HEADER_BYTES) break;
        const meta = pending.readUInt32LE(12);
        if (pending.length < HEADER_BYTES + meta) break;
        const payload = Number(pending.readBigUInt64LE(16));
        const isAnswer =
          pending[3] === FrameType.READ_CHUNK && (pending.readUInt16LE(4) & FLAG_RESPONSE) !== 0;
        out.push(pending.subarray(0, HEADER_BYTES + meta));
        pending = pending.subarray(HEADER_BYTES + meta);
        if (isAnswer && payload >= 64 * 1024 && flips > 0 && pending.length > 100) {
          flips--;
          const copy = Buffer.from(pending);
          copy[100]! ^= 0xff;
          pending = copy;
        }
        skip = payload;
      }
      if (out.length) client.write(Buffer.concat(out));
    });
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.96', r));
}

beforeAll(async () => {
  root = seedOrigin({ 'w.bin': bytes });
  const port = await freePort();
  const self = `127.0.0.95:${port}`;
  seen = `127.0.0.96:${port}`;
  // The node advertises the proxy's address: every peer read crosses it.
  node = await startMember({ root, self: seen, listen: self, members: [seen], running });
  await corruptingProxy(port, port);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('peer chunks kept in DRAM without a copy', () => {
  it('reads answers into store memory and publishes them in place; a corrupted one is never kept', async () => {
    const sidecar = await startSidecar({
      root,
      members: [seen],
      running,
      config: { sidecar: { receiveInPlace: true } },
    });
    flips = 1;
    const first = await fetch(`${sidecar.url}/v1/objects/models/w.bin`);
    expect(Buffer.from(await first.arrayBuffer()).equals(bytes)).toBe(true);
    expect(flips).toBe(0); // one answer was corrupted on the way
    // Whole 256 KiB chunks came from the node into store memory (the corrupted one was refused and
    // read again); only the 1000-byte tail (under 64 KiB) went through the receive pool and a copy.
    const intoStore = await sidecar.metric('weightcache_transport_payload_bytes_received_into_store_total');
    expect(intoStore).toBeGreaterThanOrEqual(6 * CHUNK);
    expect(await sidecar.metric('weightcache_dram_copied_bytes')).toBeLessThanOrEqual(1000);
    // What the sidecar kept is the origin's bytes: a second read is served from its DRAM.
    const peerBytes = await node.metric('weightcache_transport_payload_bytes_sent_total');
    const again = await fetch(`${sidecar.url}/v1/objects/models/w.bin`);
    expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).toBe(true);
    expect(await node.metric('weightcache_transport_payload_bytes_sent_total')).toBe(peerBytes);
  });
});
