/**
 * What every front door shares, on one real node: each answers under its
 * path on the HTTP port and at the root of a listener of its own, takes
 * absolute-form request targets (RFC 9112 §3.2.2) on both, and counts its
 * object GETs in weightcache_object_reads_total by door and by the source of
 * the first byte, as /v1/objects does.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOrigin } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';

/** One file per door and listener, so each one's first read is its own miss. */
const DOORS = ['objects', 's3', 'azure', 'hub'] as const;
type DoorName = (typeof DOORS)[number];
const files: Record<string, Buffer> = {};
for (const door of DOORS) {
  for (const where of ['shared', 'own']) files[`acme/${door}-${where}/w.bin`] = randomBytes(300_000);
}

/** The target of file `acme/{repo}/w.bin` of container `models` through `door`, under `prefix`. */
function target(door: DoorName, repo: string, prefix: string): string {
  switch (door) {
    case 'objects':
      return `/v1/objects/models/acme/${repo}/w.bin`;
    case 's3':
      return `${prefix}/models/acme/${repo}/w.bin`;
    case 'azure':
      return `${prefix}/acct/models/acme/${repo}/w.bin`;
    case 'hub':
      return `${prefix}/acme/${repo}/resolve/main/w.bin`;
  }
}

describe('every front door', { timeout: 300_000 }, () => {
  let node: NodeProcess;
  let own: Record<string, string>;
  beforeAll(async () => {
    const root = seedOrigin(files);
    const listen = '127.0.0.1:0';
    node = await startNodeProcess({
      config: {
        origin: { type: 'fs', fs: { root } },
        cache: { chunkSize: '256KiB' },
        s3: { listen },
        hub: { listen },
        azure: { listen },
      },
      timeoutMs: 120_000,
    });
    const ready = node.logs.find((l) => /weightcache \w+ ready/.test(l))!;
    own = JSON.parse(ready).doorListeners as Record<string, string>;
  }, 180_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('listens on its own address as well, and answers at the root there', () => {
    expect(Object.keys(own).sort()).toEqual(['azure', 'hub', 's3']);
  });

  for (const door of DOORS) {
    it(`${door}: absolute-form targets, on the HTTP port and on its own listener, counted by source`, async () => {
      const places: Array<{ repo: string; base: string; prefix: string }> = [
        { repo: `${door}-shared`, base: node.url, prefix: door === 'hub' ? '/hf' : `/${door}` },
      ];
      if (door !== 'objects') places.push({ repo: `${door}-own`, base: `http://${own[door]}`, prefix: '' });
      const count = (source: string) => node.metric('weightcache_object_reads_total', { door, source });
      for (const { repo, base, prefix } of places) {
        const want = files[`acme/${repo}/w.bin`]!;
        const path = target(door, repo, prefix);
        const fromOrigin = await count('origin');
        const fromDram = await count('dram');
        // absolute-form: the authority names the host, the rest is routed like the origin-form.
        const first = await get(base, `${base}${path}`);
        expect(first.status, `${door} ${base}${path}`).toBe(200);
        expect(first.body.equals(want)).toBe(true);
        expect(first.headers['x-cache-source'] ?? 'origin').toBe('origin');
        expect(await count('origin')).toBe(fromOrigin + 1);
        const again = await get(base, path);
        expect(again.status).toBe(200);
        expect(again.body.equals(want)).toBe(true);
        expect(await count('dram')).toBe(fromDram + 1);
        // A HEAD has no body to count.
        expect((await get(base, `${base}${path}`, {}, 'HEAD')).status).toBe(200);
        expect(await count('dram')).toBe(fromDram + 1);
      }
    });
  }
});

describe('front doors configured away from their defaults', { timeout: 300_000 }, () => {
  let node: NodeProcess;
  const bytes = randomBytes(5000);
  beforeAll(async () => {
    const root = seedOrigin({ 'acme/llama/w.bin': bytes }, 'weights');
    node = await startNodeProcess({
      config: {
        origin: { type: 'fs', fs: { root } },
        s3: { path: '/aws' },
        hub: { path: '/huggingface', container: 'weights' },
        azure: { path: '/blob', account: 'weights1' },
      },
      timeoutMs: 120_000,
    });
  }, 180_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('answers under the configured paths, from the configured container, for the configured account', async () => {
    for (const path of [
      '/aws/weights/acme/llama/w.bin',
      '/huggingface/acme/llama/resolve/main/w.bin',
      '/blob/weights1/weights/acme/llama/w.bin',
    ]) {
      const res = await get(node.url, path);
      expect(res.status, path).toBe(200);
      expect(res.body.equals(bytes), path).toBe(true);
    }
    // The default paths are no door now.
    expect((await get(node.url, '/s3/weights/acme/llama/w.bin')).status).toBe(404);
    // Another account than azure.account: Azure's error, naming the one to use.
    const other = await get(node.url, '/blob/someoneelse/weights/acme/llama/w.bin');
    expect(other.status).toBe(400);
    expect(other.headers['x-ms-error-code']).toBe('InvalidUri');
    expect(other.body.toString()).toContain('weights1');
  });
});
