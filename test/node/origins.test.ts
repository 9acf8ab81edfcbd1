/**
 * A real node in front of real origins other than a folder: Azure Blob
 * (Azurite) and a plain HTTP server, the latter with faults injected. What a
 * client sees when the origin is slow, dead, lying, or changes mid-read.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { BlobServiceClient } from '@azure/storage-blob';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzuriteHandle, startAzurite } from '../harness/azurite.js';
import { get } from '../harness/http-get.js';
import { type HttpOriginServer, startHttpOriginServer } from '../harness/http-origin-server.js';
import { type NodeProcess, startNodeProcess, TEST_HTTP_DOOR } from '../harness/node-process.js';

const CHUNK = 256 * 1024;

describe('node over Azure Blob (Azurite)', () => {
  let az: AzuriteHandle;
  let node: NodeProcess;
  const blobs: Record<string, Buffer> = {
    'llama/model-00001.safetensors': randomBytes(6 * CHUNK + 777),
    'llama/config.json': Buffer.from('{"model_type":"llama"}'),
  };

  beforeAll(async () => {
    az = await startAzurite();
    const svc = BlobServiceClient.fromConnectionString(az.connectionString);
    const ctr = svc.getContainerClient('models');
    await ctr.create();
    for (const [k, b] of Object.entries(blobs)) await ctr.getBlockBlobClient(k).uploadData(b);
    node = await startNodeProcess({
      config: {
        origin: { type: 'azure', timeout: '10s', azure: { connectionString: az.connectionString } },
        cache: { chunkSize: '256KiB' },
      },
    });
  });
  afterAll(async () => {
    await node?.kill();
    await az?.stop();
  });

  it('serves random ranges byte-exact, cold then warm; the warm pass reads nothing from Azure', async () => {
    const arb = fc.constantFrom(...Object.keys(blobs)).chain((key) => {
      const size = blobs[key]!.length;
      return fc.tuple(fc.constant(key), fc.nat(size - 1), fc.nat(size - 1));
    });
    const check = async ([key, a, b]: [string, number, number]) => {
      const [s, e] = a <= b ? [a, b] : [b, a];
      const res = await get(node.url, `/v1/objects/models/${key}`, { Range: `bytes=${s}-${e}` });
      expect(res.status).toBe(206);
      expect(res.body.equals(blobs[key]!.subarray(s, e + 1))).toBe(true);
    };
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: 1000, seed: 1 });
    for (const [key, bytes] of Object.entries(blobs)) {
      expect((await get(node.url, `/v1/objects/models/${key}`)).body.equals(bytes)).toBe(true);
    }
    const reads = await node.metric('weightcache_origin_requests_total', { op: 'read' });
    expect(reads).toBe(7 + 1); // one per chunk, ever
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: 1000, seed: 2 });
    expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(reads);
    const manifest = JSON.parse((await get(node.url, '/v1/manifests/models/llama/')).body.toString());
    expect(manifest.files.map((f: { key: string }) => f.key)).toEqual(Object.keys(blobs).sort());
  });
});

describe('node over an HTTP origin with faults', () => {
  let srv: HttpOriginServer;
  let node: NodeProcess;

  beforeAll(async () => {
    srv = await startHttpOriginServer();
    node = await startNodeProcess({
      config: {
        origin: { type: 'http', timeout: '1500ms', http: { baseUrl: srv.baseUrl } },
        cache: { chunkSize: '256KiB', readAhead: 0 },
        leases: { term: '100ms' },
      },
    });
  });
  afterAll(async () => {
    await node?.kill();
    await srv?.stop();
  });

  it('coalesces 50 concurrent cold reads of one chunk into 1 origin read', async () => {
    const bytes = randomBytes(CHUNK);
    srv.put('models', 'hot.bin', bytes);
    await get(node.url, '/v1/objects/models/hot.bin', {}, 'HEAD'); // resolve the name first
    srv.setFault({ mode: 'ok', delayMs: 400, methods: ['GET'] });
    const before = await node.metric('weightcache_origin_requests_total', { op: 'read' });
    const all = await Promise.all(
      Array.from({ length: 50 }, () => get(node.url, '/v1/objects/models/hot.bin')),
    );
    srv.setFault({ mode: 'ok' });
    for (const r of all) expect(r.body.equals(bytes)).toBe(true);
    expect((await node.metric('weightcache_origin_requests_total', { op: 'read' })) - before).toBe(1);
    // Every read that arrived while the fill ran joined it; on a loaded machine a few may
    // arrive after it finished and be DRAM hits instead, which is just as good.
    const joined = all.filter((r) => r.headers['x-cache-source'] !== 'dram').length - 1;
    expect(joined).toBeGreaterThan(0);
    expect(await node.metric('weightcache_coalesced_fills_total')).toBeGreaterThanOrEqual(joined);
  });

  it('a short origin body is a 502 and is never cached', async () => {
    const bytes = randomBytes(2 * CHUNK);
    srv.put('models', 'short.bin', bytes);
    srv.setFault({ mode: 'short-body', methods: ['GET'], times: 1 });
    const bad = await get(node.url, '/v1/objects/models/short.bin');
    expect(bad.status).toBe(502);
    expect(JSON.parse(bad.body.toString()).code).toBe('ORIGIN_BAD_RESPONSE');
    const good = await get(node.url, '/v1/objects/models/short.bin');
    expect(good.status).toBe(200);
    expect(good.body.equals(bytes)).toBe(true);
  });

  it('a stalled origin is a 504 within the origin timeout', async () => {
    srv.put('models', 'slow.bin', randomBytes(1000));
    await new Promise((r) => setTimeout(r, 150)); // let the lease lapse so the node must ask the origin
    srv.setFault({ mode: 'stall' });
    const res = await get(node.url, '/v1/objects/models/slow.bin');
    srv.setFault({ mode: 'ok' });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body.toString()).code).toBe('ORIGIN_TIMEOUT');
  });

  it('a dead origin is a 502 with a stable code; cached chunks keep being served', async () => {
    const bytes = randomBytes(CHUNK);
    srv.put('models', 'cached.bin', bytes);
    expect((await get(node.url, '/v1/objects/models/cached.bin')).body.equals(bytes)).toBe(true);
    srv.put('models', 'cold.bin', randomBytes(10));
    srv.setFault({ mode: 'close-immediately' });
    await new Promise((r) => setTimeout(r, 150));
    const res = await get(node.url, '/v1/objects/models/cold.bin');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).code).toBe('ORIGIN_UNAVAILABLE');
    srv.setFault({ mode: 'ok' });
  });

  it('a version replaced mid-read fails the read cleanly: never bytes of two versions', async () => {
    const v1 = randomBytes(8 * CHUNK);
    const v2 = randomBytes(8 * CHUNK);
    srv.put('models', 'swap.bin', v1);
    await new Promise((r) => setTimeout(r, 150));
    srv.setFault({ mode: 'ok', delayMs: 100, methods: ['GET'] });
    const u = new URL(node.url);
    const received = await new Promise<{ body: Buffer; complete: boolean; status: number }>(
      (resolve, reject) => {
        const req = request(
          { host: u.hostname, port: u.port, path: '/v1/objects/models/swap.bin' },
          (res) => {
            const parts: Buffer[] = [];
            let swapped = false;
            res.on('data', (d: Buffer) => {
              parts.push(d);
              if (!swapped) {
                swapped = true;
                srv.put('models', 'swap.bin', v2); // a new upload while the read is under way
              }
            });
            const done = () =>
              resolve({ body: Buffer.concat(parts), complete: res.complete, status: res.statusCode ?? 0 });
            res.on('end', done);
            res.on('aborted', done);
            res.on('error', done);
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    srv.setFault({ mode: 'ok' });
    expect(received.status).toBe(200);
    if (received.complete) {
      // The native door fills a parked miss of up to 16 chunks whole before its first byte
      // (docs/native-http-door.md, "Misses"): the upload after that byte changes nothing sent.
      expect(TEST_HTTP_DOOR).toBe('native');
      expect(received.body.equals(v1)).toBe(true);
    } else {
      expect(received.body.length).toBeLessThan(v1.length); // cut short: Content-Length tells the client
      expect(received.body.equals(v1.subarray(0, received.body.length))).toBe(true); // only v1 bytes
      expect(await node.metric('weightcache_version_changed_reads_total')).toBeGreaterThanOrEqual(1);
    }
    // the next read resolves the new version and serves it whole
    const next = await get(node.url, '/v1/objects/models/swap.bin');
    expect(next.status).toBe(200);
    // Whole, one version: v2 once a read saw the change; v1 still, within its lease, when no
    // read did (the native door's whole answer above read nothing after the upload).
    expect(next.body.equals(v2) || (received.complete && next.body.equals(v1))).toBe(true);
  });
});
