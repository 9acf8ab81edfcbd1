/**
 * The front doors in a cluster: boto3 and azure-storage-blob through a
 * sidecar, huggingface_hub through a node, reading one model in rounds while
 * another node is SIGKILLed. Every read is byte-exact and none fails: the
 * doors sit on the same read path that routes around a dead peer.
 */

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addresses, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { hasVenv, venvPython } from '../harness/python.js';

const CHUNK = 256 * 1024;
const running: NodeProcess[] = [];
const run = hasVenv('main') || process.env.CI;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

afterAll(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

describe.skipIf(!run)('front doors in a cluster', { timeout: 900_000 }, () => {
  it('boto3, azure-storage-blob and huggingface_hub read byte-exact while a node is SIGKILLed', async () => {
    const files: Record<string, Buffer> = {
      'acme/llama/model-00001-of-00002.safetensors': randomBytes(6 * CHUNK + 1234),
      'acme/llama/model-00002-of-00002.safetensors': randomBytes(3 * CHUNK),
      'acme/llama/config.json': Buffer.from('{"model_type":"llama"}'),
    };
    const root = seedOrigin(files);
    const members = addresses(3, await freePort(), 31);
    const nodes = await Promise.all(
      members.map((self) => startMember({ root, self, members, running, timeoutMs: 120_000 })),
    );
    const sidecar = await startSidecar({
      root,
      members,
      // A tiny local tier: reads keep going to the owners while one of them dies.
      config: { cache: { dram: { maxBytes: '512KiB' }, nvme: null } },
      running,
      timeoutMs: 120_000,
    });
    const expected = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha(v)]));
    const child = spawn(
      venvPython('main'),
      [
        join(import.meta.dirname, 'doors_reads.py'),
        sidecar.url,
        nodes[0]!.url,
        '4',
        JSON.stringify(expected),
      ],
      {
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
      },
    );
    let stdout = '';
    let stderr = '';
    let killed = false;
    const done = new Promise<number | null>((r) => child.on('close', r));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // After the first round every client is warm and reading: kill a node under them.
      if (!killed && stdout.includes('round 0')) {
        killed = true;
        void nodes[1]!.kill();
      }
    });
    const code = await done;
    expect(code, stderr).toBe(0);
    expect(killed).toBe(true);
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(out.reads).toBe(4 * 3 * 3);
    expect(out.wrong).toEqual([]);
    expect(out.failed).toEqual([]);
    // The kill landed under the reads: the sidecar and the node saw the dead peer and routed around it.
    let sawDead = 0;
    for (const p of [sidecar, nodes[0]!]) {
      sawDead += await p.metric('weightcache_peer_requests_total', { result: 'error' });
      sawDead += await p.metric('weightcache_lease_origin_fallbacks_total', { reason: 'unreachable' });
    }
    expect(sawDead).toBeGreaterThan(0);
    expect(await sidecar.metric('weightcache_object_reads_total', { door: 's3' })).toBeGreaterThan(0);
    expect(await sidecar.metric('weightcache_object_reads_total', { door: 'azure' })).toBeGreaterThan(0);
    expect(await nodes[0]!.metric('weightcache_object_reads_total', { door: 'hub' })).toBeGreaterThan(0);
  });
});
