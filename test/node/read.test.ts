/**
 * A real node process in front of a real fs origin: byte-exact reads under
 * random ranges (cold, then warm), warm restarts, and what a user sees for
 * bad input. Reads go over real HTTP; counts come from /metrics.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';

const CHUNK = 256 * 1024;
const files: Record<string, Buffer> = {
  'm/empty.bin': Buffer.alloc(0),
  'm/one.bin': randomBytes(1),
  'm/exact.bin': randomBytes(4 * CHUNK),
  'm/odd.bin': randomBytes(5 * CHUNK + 12_345),
  'm/deep/dir/shard.safetensors': randomBytes(3 * CHUNK - 1),
};

function seed(root: string): void {
  for (const [key, bytes] of Object.entries(files)) {
    const p = join(root, 'models', key);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, bytes);
  }
}

const config = { cache: { chunkSize: '256KiB', readAhead: 2 } };
let node: NodeProcess;

beforeAll(async () => {
  node = await startNodeProcess({ config });
  seed(join(node.dir, 'origin'));
});
afterAll(async () => {
  await node?.kill();
});

const rangeArb = fc.constantFrom(...Object.keys(files).filter((k) => files[k]!.length > 0)).chain((key) => {
  const size = files[key]!.length;
  return fc.tuple(fc.constant(key), fc.nat(size - 1), fc.nat(size - 1));
});

async function checkRange(key: string, a: number, b: number): Promise<void> {
  const [start, end] = a <= b ? [a, b] : [b, a];
  const res = await get(node.url, `/v1/objects/models/${key}`, { Range: `bytes=${start}-${end}` });
  expect(res.status).toBe(206);
  expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${files[key]!.length}`);
  expect(res.body.equals(files[key]!.subarray(start, end + 1))).toBe(true);
}

describe('node over an fs origin', () => {
  it('serves random ranges byte-exact, cold then warm, and the warm pass reads nothing from the origin', async () => {
    const seedRuns = { seed: 42, numRuns: 2000 };
    await fc.assert(
      fc.asyncProperty(rangeArb, ([k, a, b]) => checkRange(k, a, b)),
      seedRuns,
    );
    const originBytes = await node.metric('weightcache_origin_bytes_total');
    // every chunk of every file has now been read exactly once (coalesced, cached)
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);
    expect(originBytes).toBeLessThanOrEqual(total);
    await fc.assert(
      fc.asyncProperty(rangeArb, ([k, a, b]) => checkRange(k, a, b)),
      { seed: 7, numRuns: 2000 },
    );
    // whole objects too
    for (const [key, bytes] of Object.entries(files)) {
      const res = await get(node.url, `/v1/objects/models/${key}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(bytes.length));
      expect(res.body.equals(bytes)).toBe(true);
    }
    expect(await node.metric('weightcache_origin_bytes_total')).toBe(total);
  });

  it('answers RFC 9110 edge cases', async () => {
    const key = '/v1/objects/models/m/odd.bin';
    const size = files['m/odd.bin']!.length;
    const zero = await get(node.url, key, { Range: 'bytes=0-0' });
    expect(zero.status).toBe(206);
    expect(zero.headers['content-range']).toBe(`bytes 0-0/${size}`);
    expect(zero.headers['content-length']).toBe('1');
    expect(zero.headers['accept-ranges']).toBe('bytes');
    expect(zero.headers['x-cache-source']).toMatch(/^(dram|nvme|origin)$/);
    const etag = zero.headers.etag as string;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(zero.headers['last-modified']).toBeTruthy();

    const suffix = await get(node.url, key, { Range: 'bytes=-10' });
    expect(suffix.body.equals(files['m/odd.bin']!.subarray(size - 10))).toBe(true);
    const open = await get(node.url, key, { Range: `bytes=${size - 3}-` });
    expect(open.headers['content-range']).toBe(`bytes ${size - 3}-${size - 1}/${size}`);

    const past = await get(node.url, key, { Range: `bytes=${size}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${size}`);
    expect(JSON.parse(past.body.toString()).code).toBe('RANGE_NOT_SATISFIABLE');
    const huge = await get(node.url, key, { Range: `bytes=${'9'.repeat(40)}-` });
    expect(huge.status).toBe(416);

    for (const bad of ['bytes=5-1', 'lines=1-2', 'bytes=x-']) {
      const r = await get(node.url, key, { Range: bad });
      expect(r.status, bad).toBe(200);
      expect(r.body.length).toBe(size);
    }

    const multi = await get(node.url, key, { Range: 'bytes=0-9,100-109' });
    expect(multi.status).toBe(206);
    expect(multi.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=/);
    expect(Number(multi.headers['content-length'])).toBe(multi.body.length);
    expect(multi.body.includes(files['m/odd.bin']!.subarray(100, 110))).toBe(true);
    const hundreds = Array.from({ length: 300 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
    const many = await get(node.url, key, { Range: `bytes=${hundreds}` });
    expect(many.status).toBe(200); // more distinct ranges than http.maxRanges: ignored

    expect((await get(node.url, key, { 'If-None-Match': etag })).status).toBe(304);
    expect((await get(node.url, key, { 'If-Match': etag, Range: 'bytes=0-0' })).status).toBe(206);
    const failed = await get(node.url, key, { 'If-Match': '"other"' });
    expect(failed.status).toBe(412);
    expect(JSON.parse(failed.body.toString()).code).toBe('PRECONDITION_FAILED');
    const stale = await get(node.url, key, { 'If-Range': '"other"', Range: 'bytes=0-0' });
    expect(stale.status).toBe(200);
    expect((await get(node.url, `${key}?version=${etag.slice(1, -1)}`, { Range: 'bytes=0-0' })).status).toBe(
      206,
    );
    expect((await get(node.url, `${key}?version=nope`)).status).toBe(412);

    const head = await get(node.url, key, { Range: 'bytes=0-99' }, 'HEAD');
    expect(head.status).toBe(206);
    expect(head.headers['content-length']).toBe('100');
    expect(head.body.length).toBe(0);

    const empty = await get(node.url, '/v1/objects/models/m/empty.bin');
    expect(empty.status).toBe(200);
    expect(empty.headers['content-length']).toBe('0');
    expect((await get(node.url, '/v1/objects/models/m/empty.bin', { Range: 'bytes=0-0' })).status).toBe(416);
  });

  it('refuses traversal and bad names with 400, missing objects with 404, all as JSON {code,message}', async () => {
    const cases: Array<[string, number, string]> = [
      ['/v1/objects/models/../../../etc/passwd', 400, 'BAD_KEY'],
      ['/v1/objects/models/m/../../x', 400, 'BAD_KEY'],
      ['/v1/objects/models/%2e%2e/%2E%2E/etc/passwd', 400, 'BAD_KEY'],
      ['/v1/objects/models/a%2f..%2f..%2fetc', 400, 'BAD_KEY'],
      ['/v1/objects/models//etc/passwd', 400, 'BAD_KEY'],
      ['/v1/objects/models/a%00b', 400, 'BAD_KEY'],
      ['/v1/objects/models/a%5cb', 400, 'BAD_KEY'],
      ['/v1/objects/models/a\\b', 400, 'BAD_KEY'], // a raw backslash, refused by the HTTP adapter itself
      ['/v1/objects/models/m/', 400, 'BAD_KEY'],
      ['/v1/objects/models/bad%zz', 400, 'BAD_KEY'],
      ['/v1/objects/..%2fetc/passwd', 400, 'BAD_KEY'],
      ['/v1/objects/models', 400, 'BAD_KEY'],
      ['/v1/objects/models/m/none.bin', 404, 'NOT_FOUND'],
      ['/v1/objects/nocontainer/x', 404, 'NOT_FOUND'],
      ['/v1/nothing', 404, 'NOT_FOUND'],
    ];
    for (const [path, status, code] of cases) {
      const res = await get(node.url, path);
      expect(res.status, path).toBe(status);
      const body = JSON.parse(res.body.toString());
      expect(body.code, path).toBe(code);
      expect(typeof body.message).toBe('string');
    }
  });

  it('reports status, metrics, health and manifests', async () => {
    const status = JSON.parse((await get(node.url, '/v1/status')).body.toString());
    expect(status.ready).toBe(true);
    expect(status.origin.type).toBe('fs');
    expect(status.tiers.dram.capacityBytes).toBe(64 * 2 ** 20);
    expect(status.tiers.dram.entries).toBeGreaterThan(0);
    expect(status.tiers.nvme.capacityBytes).toBe(2 ** 30);
    expect((await get(node.url, '/healthz')).status).toBe(200);
    expect((await get(node.url, '/readyz')).status).toBe(200);
    const manifest = JSON.parse((await get(node.url, '/v1/manifests/models/m/')).body.toString());
    expect(manifest.files.map((f: { key: string }) => f.key)).toEqual([
      'm/deep/dir/shard.safetensors',
      'm/empty.bin',
      'm/exact.bin',
      'm/odd.bin',
      'm/one.bin',
    ]);
    expect(manifest.files[2]).toMatchObject({ size: 4 * CHUNK, version: expect.any(String) });
    expect(
      await node.metric('weightcache_requests_total', { protocol: 'http', result: 'ok' }),
    ).toBeGreaterThan(0);
    expect(await node.metric('weightcache_served_bytes_total', { source: 'dram' })).toBeGreaterThan(0);
    expect(await node.metric('weightcache_tier_capacity_bytes', { tier: 'nvme' })).toBe(2 ** 30);
  });
});

describe('chunk checksums on the wire', () => {
  it('a response that is exactly one chunk carries its CRC32C; others do not', async () => {
    const { crc32c } = await import('../../src/chunk/checksum.js');
    const bytes = files['m/odd.bin']!;
    const whole = await get(node.url, '/v1/objects/models/m/odd.bin', {
      Range: `bytes=${CHUNK}-${2 * CHUNK - 1}`,
    });
    expect(whole.headers['x-chunk-crc32c']).toBe(
      crc32c(bytes.subarray(CHUNK, 2 * CHUNK))
        .toString(16)
        .padStart(8, '0'),
    );
    const tail = await get(node.url, '/v1/objects/models/m/odd.bin', { Range: `bytes=${5 * CHUNK}-` });
    expect(tail.headers['x-chunk-crc32c']).toBe(
      crc32c(bytes.subarray(5 * CHUNK))
        .toString(16)
        .padStart(8, '0'),
    );
    const part = await get(node.url, '/v1/objects/models/m/odd.bin', { Range: 'bytes=1-100' });
    expect(part.headers['x-chunk-crc32c']).toBeUndefined();
    const two = await get(node.url, '/v1/objects/models/m/odd.bin', { Range: `bytes=0-${2 * CHUNK - 1}` });
    expect(two.headers['x-chunk-crc32c']).toBeUndefined();
  });
});

describe('pinned versions against a lease', () => {
  it('a read pinned to a newer version than the lease knows revalidates instead of answering 412', async () => {
    const { renameSync } = await import('node:fs');
    const { FsOrigin } = await import('../../src/origin/fs.js');
    const dir = join(node.dir, 'origin', 'models', 'p');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'f.bin'), 'version one');
    const first = await get(node.url, '/v1/objects/models/p/f.bin'); // binds the name for a 30 s term
    expect(first.body.toString()).toBe('version one');
    writeFileSync(join(dir, 'f.tmp'), 'version two!');
    renameSync(join(dir, 'f.tmp'), join(dir, 'f.bin'));
    // A client that listed the new version at the origin (a manifest) pins it:
    const v2 = await new FsOrigin({ root: join(node.dir, 'origin') }).stat({
      container: 'models',
      key: 'p/f.bin',
    });
    const pinned = await get(node.url, '/v1/objects/models/p/f.bin', { 'If-Match': `"${v2.etag}"` });
    expect(pinned.status).toBe(200);
    expect(pinned.body.toString()).toBe('version two!');
    const byQuery = await get(node.url, `/v1/objects/models/p/f.bin?version=${v2.etag}`);
    expect(byQuery.body.toString()).toBe('version two!');
    // Pinning a version that exists nowhere is still refused.
    expect((await get(node.url, '/v1/objects/models/p/f.bin', { 'If-Match': '"nope"' })).status).toBe(412);
  });
});

describe('an fs origin file rewritten in place during a read', () => {
  it('with its mtime restored (rsync -t, cp -p, tar): the read is cut, never a mix, and nothing mixed stays cached', async () => {
    const { openSync, utimesSync, writeSync, closeSync } = await import('node:fs');
    const { request } = await import('node:http');
    const path = join(node.dir, 'origin', 'models', 'inplace', 'shard.bin');
    mkdirSync(join(path, '..'), { recursive: true });
    // Larger than read-ahead plus every socket buffer between the node and us, so most
    // chunks are read from the origin after the rewrite.
    const v1 = randomBytes(32 * 2 ** 20);
    const v2 = randomBytes(v1.length);
    writeFileSync(path, v1);
    const pinned = 1_700_000_000; // whole seconds: utimes restores it to the ns
    utimesSync(path, pinned, pinned);
    const rewriteKeepingMtime = () => {
      const fd = openSync(path, 'r+');
      writeSync(fd, v2, 0, v2.length, 0);
      closeSync(fd);
      utimesSync(path, pinned, pinned);
    };
    const u = new URL(node.url);
    const first = await new Promise<{ body: Buffer; complete: boolean; status: number }>(
      (resolve, reject) => {
        const req = request(
          { host: u.hostname, port: u.port, path: '/v1/objects/models/inplace/shard.bin' },
          (res) => {
            const parts: Buffer[] = [];
            let rewritten = false;
            res.on('data', (d: Buffer) => {
              parts.push(d);
              if (rewritten) return;
              rewritten = true;
              res.pause(); // let the node fill its read-ahead and the socket buffers, then rewrite
              setTimeout(() => {
                rewriteKeepingMtime();
                res.resume();
              }, 300);
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
    expect(first.status).toBe(200);
    expect(
      first.body.equals(v1.subarray(0, first.body.length)),
      'only bytes of the version that was resolved',
    ).toBe(true);
    expect(first.complete, 'cut short: Content-Length tells the client').toBe(false);
    expect(await node.metric('weightcache_version_changed_reads_total')).toBeGreaterThanOrEqual(1);
    // The next read resolves the new version: every byte new, none of the old version's chunks reused.
    const again = await get(node.url, '/v1/objects/models/inplace/shard.bin');
    expect(again.status).toBe(200);
    expect(again.complete).toBe(true);
    expect(again.body.equals(v2)).toBe(true);
  });
});
