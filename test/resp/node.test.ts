/** The node starts the RESP door when `resp` is configured and stops it on close. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningNode, startNode } from '../../src/node/node.js';
import { doorUnderTest } from './harness.js';

let dir: string;
let node: RunningNode;
const bytes = randomBytes(300_000);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wc-resp-node-'));
  await mkdir(join(dir, 'origin', 'models'), { recursive: true });
  await writeFile(join(dir, 'origin', 'models', 'w.bin'), bytes);
  const config = configSchema.parse({
    http: { listen: '127.0.0.1:0' },
    resp: { listen: '127.0.0.1:0', maxGetBytes: '128KiB', door: doorUnderTest() },
    origin: { type: 'fs', fs: { root: join(dir, 'origin') } },
    cache: { chunkSize: '64KiB', nvme: null },
  });
  node = await startNode(config, createLogger('silent'));
});
afterAll(async () => {
  await node?.close();
  await rm(dir, { recursive: true, force: true });
});

it('serves RESP from the node read path with the configured limits, and closes it', async () => {
  expect(node.resp).not.toBeNull();
  const port = node.resp!.address.port;
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  await r.connect();
  expect((await r.getrangeBuffer('models/w.bin', 1000, 100_000)).equals(bytes.subarray(1000, 100_001))).toBe(
    true,
  );
  await expect(r.getBuffer('models/w.bin')).rejects.toThrow('over the GET limit of 131072 bytes');
  const served = await node.metrics.total(node.metrics.requests, { protocol: 'resp' });
  expect(served).toBeGreaterThanOrEqual(2);
  r.disconnect();
  await node.close();
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  expect(refused).toBe(true);
});
