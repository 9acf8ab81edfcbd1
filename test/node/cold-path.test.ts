/**
 * The cold path on a real node process: a model shard read the way loaders
 * read it (one chunk per request, two connections, in order) is fetched
 * ahead of the requests (read-ahead across requests), every byte is right,
 * and the origin still reads each byte once. Reads that jump around do not
 * trigger read-ahead beyond a first chunk.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';

const CHUNK = 256 * 1024;
const CHUNKS = 32;
const seq = randomBytes(CHUNKS * CHUNK);
const rnd = randomBytes(CHUNKS * CHUNK);
let node: NodeProcess;

beforeAll(async () => {
  node = await startNodeProcess({ config: { cache: { chunkSize: '256KiB', readAhead: 4 } } });
  const dir = join(node.dir, 'origin', 'models', 'm');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'seq.bin'), seq);
  writeFileSync(join(dir, 'rnd.bin'), rnd);
});
afterAll(async () => {
  await node?.kill();
});

async function readChunk(key: string, i: number, bytes: Buffer): Promise<void> {
  const res = await get(node.url, `/v1/objects/models/m/${key}`, {
    Range: `bytes=${i * CHUNK}-${(i + 1) * CHUNK - 1}`,
  });
  expect(res.status).toBe(206);
  expect(res.body.equals(bytes.subarray(i * CHUNK, (i + 1) * CHUNK))).toBe(true);
}

describe('cold reads', () => {
  it('fetch ahead of a sequential reader, each origin byte once', async () => {
    const before = await node.metric('weightcache_origin_bytes_total');
    let next = 0;
    const worker = async () => {
      while (next < CHUNKS) await readChunk('seq.bin', next++, seq);
    };
    await Promise.all([worker(), worker()]);
    expect(await node.metric('weightcache_read_ahead_chunks_total')).toBeGreaterThan(CHUNKS / 4);
    expect((await node.metric('weightcache_origin_bytes_total')) - before).toBe(seq.length);
  });

  it('do not fetch ahead of a reader that jumps around', async () => {
    const ahead = await node.metric('weightcache_read_ahead_chunks_total');
    for (const i of [17, 3, 29, 11, 23, 7]) await readChunk('rnd.bin', i, rnd);
    expect(await node.metric('weightcache_read_ahead_chunks_total')).toBe(ahead);
  });
});
