/**
 * Serving a range far larger than the DRAM budget needs memory bounded by the
 * read-ahead window, not by the range: a client that stops reading makes the
 * node wait on backpressure instead of buffering. Peak RSS is read from the
 * kernel (/proc/<pid>/status VmHWM), not estimated.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';

const SIZE = 1024 * 2 ** 20; // 1 GiB, sparse: the origin reads zeros from the page cache
let node: NodeProcess;

function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

beforeAll(async () => {
  node = await startNodeProcess({
    config: { cache: { chunkSize: '4MiB', readAhead: 4, dram: { maxBytes: '64MiB' }, nvme: null } },
  });
  const dir = join(node.dir, 'origin', 'big');
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'sparse.bin'), 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
});
afterAll(async () => {
  await node?.kill();
});

describe('large ranges', () => {
  it('a 1 GiB read with a stalled client holds bounded memory and completes byte-exact', async () => {
    const u = new URL(node.url);
    const baseline = peakRssBytes(node.proc.pid!);
    const result = await new Promise<{ bytes: number; nonZero: number; peakWhilePaused: number }>(
      (resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: '/v1/objects/big/sparse.bin' }, (res) => {
          let bytes = 0;
          let nonZero = 0;
          let paused = false;
          let peakWhilePaused = 0;
          res.on('data', (d: Buffer) => {
            bytes += d.length;
            for (let i = 0; i < d.length; i += 4096) if (d[i] !== 0) nonZero++;
            if (!paused && bytes > SIZE / 4) {
              paused = true;
              res.pause(); // the client stops reading: the node must wait, not buffer
              setTimeout(() => {
                peakWhilePaused = peakRssBytes(node.proc.pid!);
                res.resume();
              }, 1500);
            }
          });
          res.on('end', () => resolve({ bytes, nonZero, peakWhilePaused }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(result.bytes).toBe(SIZE);
    expect(result.nonZero).toBe(0);
    const peak = peakRssBytes(node.proc.pid!);
    // 64 MiB DRAM + (readAhead+1) × 4 MiB in flight + socket buffers + the runtime:
    // far below the 1 GiB range. Generous bound for allocator slack; 1 GiB would fail it.
    expect(peak - baseline).toBeLessThan(256 * 2 ** 20);
    expect(result.peakWhilePaused).toBeLessThan(baseline + 256 * 2 ** 20);
  });
});
