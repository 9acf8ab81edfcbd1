/**
 * The access log, from a real node process: one JSON line per request on every
 * door (objects, S3 with a presigned URL, the Hub, Azure Blob, RESP), with
 * method, target, status, bytes, source, durationMs and client; never a token, an
 * Authorization header, a presigned signature or a SAS sig. Off at info
 * unless `log.access: true`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../src/auth/tokens.js';
import { redactTarget } from '../../src/log/access.js';
import { presignedQuery, uriEncode } from '../../src/s3/sigv4.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';

const TOKEN = 'access-log-token-0123456789abcdef';
const SAS_SIG = 'c2VjcmV0LXNhcy1zaWduYXR1cmUtdmFsdWU';
const BYTES = randomBytes(3 * 1024 * 1024 + 5);

let node: NodeProcess;
let quiet: NodeProcess;
let native: NodeProcess;
let respPort: number;

interface Line {
  component?: string;
  method: string;
  target: string;
  status: number | string;
  bytes: number;
  source?: string;
  durationMs: number;
  client: string;
  aborted?: boolean;
}

function seed(dir: string): void {
  mkdirSync(join(dir, 'origin', 'models', 'm'), { recursive: true });
  writeFileSync(join(dir, 'origin', 'models', 'm', 'w.bin'), BYTES);
  mkdirSync(join(dir, 'origin', 'models', 'acme', 'llama'), { recursive: true });
  writeFileSync(join(dir, 'origin', 'models', 'acme', 'llama', 'config.json'), '{"model_type":"llama"}');
  writeFileSync(join(dir, 'tokens'), `${TOKEN}\n`);
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-access-'));
  const quietDir = mkdtempSync(join(tmpdir(), 'wc-access-off-'));
  const nativeDir = mkdtempSync(join(tmpdir(), 'wc-access-native-'));
  seed(dir);
  seed(quietDir);
  seed(nativeDir);
  respPort = await freePort();
  const auth = (d: string) => ({ tokensFile: join(d, 'tokens') });
  [node, quiet, native] = await Promise.all([
    startNodeProcess({
      dir,
      config: {
        auth: auth(dir),
        resp: { listen: `127.0.0.1:${respPort}` },
        log: { level: 'info', access: true },
        hub: { container: 'models' },
      },
    }),
    startNodeProcess({ dir: quietDir, config: { auth: auth(quietDir), log: { level: 'info' } } }),
    // At debug the access log is on without log.access; the native door answers through the same server.
    startNodeProcess({
      dir: nativeDir,
      config: { auth: auth(nativeDir), http: { door: 'native' }, log: { level: 'debug' } },
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([node?.kill(), quiet?.kill(), native?.kill()]);
});

function accessLines(n: NodeProcess): Line[] {
  return n.logs.filter((l) => l.includes('"component":"access"')).map((l) => JSON.parse(l) as Line);
}

/** The access line of the request whose target starts with `target`, once the async logger wrote it. */
function lineFor(n: NodeProcess, method: string, target: string): Promise<Line> {
  return until(() => accessLines(n).find((l) => l.method === method && l.target.startsWith(target)), {
    what: `the access line of ${method} ${target}`,
    timeoutMs: 10_000,
  });
}

const bearer = { Authorization: `Bearer ${TOKEN}` };

describe('access log', () => {
  it('objects: one line per request with status, bytes and where the bytes came from', async () => {
    const first = await get(node.url, '/v1/objects/models/m/w.bin', bearer);
    expect(first.status).toBe(200);
    const l1 = await lineFor(node, 'GET', '/v1/objects/models/m/w.bin');
    expect(l1).toMatchObject({ status: 200, bytes: BYTES.length, source: 'origin', client: '127.0.0.1' });
    expect(l1.durationMs).toBeGreaterThan(0);

    const ranged = await get(node.url, '/v1/objects/models/m/w.bin?x=1', { ...bearer, Range: 'bytes=10-19' });
    expect(ranged.status).toBe(206);
    const l2 = await lineFor(node, 'GET', '/v1/objects/models/m/w.bin?x=1');
    expect(l2).toMatchObject({ status: 206, bytes: 10, source: 'dram' });

    const head = await get(node.url, '/v1/objects/models/m/w.bin?h=1', bearer, 'HEAD');
    expect(head.status).toBe(200);
    expect(await lineFor(node, 'HEAD', '/v1/objects/models/m/w.bin?h=1')).toMatchObject({ bytes: 0 });

    const missing = await get(node.url, '/v1/objects/models/m/nope.bin', bearer);
    expect(missing.status).toBe(404);
    const l4 = await lineFor(node, 'GET', '/v1/objects/models/m/nope.bin');
    expect(l4.status).toBe(404);
    expect(l4.source).toBeUndefined();

    const refused = await get(node.url, '/v1/objects/models/m/w.bin?no=token');
    expect(refused.status).toBe(401);
    expect((await lineFor(node, 'GET', '/v1/objects/models/m/w.bin?no=token')).status).toBe(401);
  });

  it('S3 door with a presigned URL: logged, the signature and credential redacted', async () => {
    const host = new URL(node.url).host;
    const uri = '/s3/models/m/w.bin';
    const q = presignedQuery({
      method: 'GET',
      host,
      uri,
      query: [],
      region: 'us-east-1',
      service: 's3',
      credentials: { accessKeyId: keyIdOf(TOKEN), secretAccessKey: TOKEN },
      now: new Date(),
      expiresSeconds: 600,
    });
    const signature = q.find(([k]) => k === 'X-Amz-Signature')![1];
    const query = q.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
    const r = await get(node.url, `${uri}?${query}`, { Range: 'bytes=0-1048575' });
    expect(r.status, r.body.toString()).toBe(206);
    const l = await lineFor(node, 'GET', uri);
    expect(l).toMatchObject({ status: 206, bytes: 1_048_576, source: 'dram' });
    expect(l.target).toContain('X-Amz-Signature=REDACTED');
    expect(l.target).toContain('X-Amz-Credential=REDACTED');
    expect(l.target).toContain('X-Amz-Expires=600');
    expect(node.logs.join('\n')).not.toContain(signature);
  });

  it('Azure Blob door with a SAS: the sig is never logged, even when refused', async () => {
    const target = `/azure/models/m/w.bin?sv=2022-11-02&sp=r&se=2099-01-01T00%3A00%3A00Z&sig=${SAS_SIG}`;
    const r = await get(node.url, target);
    expect(r.status).toBe(403);
    const l = await lineFor(node, 'GET', '/azure/models/m/w.bin');
    expect(l.status).toBe(403);
    expect(l.target).toBe(
      '/azure/models/m/w.bin?sv=2022-11-02&sp=r&se=2099-01-01T00%3A00%3A00Z&sig=REDACTED',
    );
    expect(node.logs.join('\n')).not.toContain(SAS_SIG);
  });

  it('Hub door: logged with its source', async () => {
    const r = await get(node.url, '/hf/acme/llama/resolve/main/config.json', bearer);
    expect(r.status, r.body.toString()).toBe(200);
    expect(await lineFor(node, 'GET', '/hf/acme/llama/resolve/main/config.json')).toMatchObject({
      status: 200,
      bytes: 22,
      source: 'origin',
    });
  });

  it('RESP: the command and its key, never AUTH arguments', async () => {
    const redis = new Redis({
      port: respPort,
      host: '127.0.0.1',
      password: TOKEN,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await redis.connect();
      const got = (await redis.getrangeBuffer('models/m/w.bin', 0, 99)) as Buffer;
      expect(got.equals(BYTES.subarray(0, 100))).toBe(true);
      await expect(redis.get('models/m/none.bin')).resolves.toBeNull();
      await expect(redis.call('GETRANGE', 'models/m/x.bin', 'zero', '1')).rejects.toThrow(/^ERR/);
    } finally {
      redis.disconnect();
    }
    expect(await lineFor(node, 'GETRANGE', 'models/m/w.bin')).toMatchObject({
      status: 'OK',
      bytes: 100,
      source: 'dram',
    });
    expect(await lineFor(node, 'GETRANGE', 'models/m/x.bin')).toMatchObject({ status: 'ERR', bytes: 0 });
    expect(await lineFor(node, 'GET', 'models/m/none.bin')).toMatchObject({ status: 'OK', bytes: 0 });
    // ioredis authenticates with HELLO ... AUTH or AUTH: logged without its arguments.
    const auth = await until(() =>
      accessLines(node).find((l) => l.method === 'AUTH' || l.method === 'HELLO'),
    );
    expect(auth).toMatchObject({ status: 'OK', target: '' });
  });

  it('never logs a token or an Authorization header', () => {
    const all = node.logs.join('\n');
    expect(all).not.toContain(TOKEN);
    expect(all.toLowerCase()).not.toContain('bearer');
    expect(all.toLowerCase()).not.toContain('authorization');
  });

  it('the native HTTP door logs through the same place; at debug it is on by itself', async () => {
    const r = await get(native.url, '/v1/objects/models/m/w.bin', { ...bearer, Range: 'bytes=0-99' });
    expect(r.status).toBe(206);
    const l = await lineFor(native, 'GET', '/v1/objects/models/m/w.bin');
    expect(l).toMatchObject({ status: 206, bytes: 100, source: 'origin', client: '127.0.0.1' });
    expect(native.logs.find((x) => x.includes('"component":"access"'))).toContain('"level":20');
    expect(native.logs.join('\n')).not.toContain(TOKEN);
  });

  it('is off at info without log.access', async () => {
    expect((await get(quiet.url, '/v1/objects/models/m/w.bin', bearer)).status).toBe(200);
    expect((await get(quiet.url, '/v1/objects/models/m/none', bearer)).status).toBe(404);
    // A line would have been written by now: the response is complete, and the node logged its start.
    await new Promise((r) => setTimeout(r, 300));
    expect(accessLines(quiet)).toEqual([]);
  });
});

describe('redactTarget', () => {
  it('keeps names, redacts values of credential-bearing parameters, keeps the rest as sent', () => {
    expect(redactTarget('/a/b')).toBe('/a/b');
    expect(redactTarget('/a?prefix=x%2Fy&list-type=2')).toBe('/a?prefix=x%2Fy&list-type=2');
    expect(redactTarget('/a?X-Amz-Signature=abc&x-amz-security-token=t&sig=s&Token=1&flag')).toBe(
      '/a?X-Amz-Signature=REDACTED&x-amz-security-token=REDACTED&sig=REDACTED&Token=REDACTED&flag',
    );
    expect(redactTarget('/a?%73ig=secret')).toBe('/a?%73ig=REDACTED');
    expect(redactTarget(`/${'x'.repeat(5000)}`).length).toBeLessThan(2100);
  });
});
