/**
 * Protected mode, cluster secrets between real node and sidecar processes,
 * and TLS on the HTTP and RESP doors (a certificate made by openssl here).
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { selfSignedCert } from '../harness/tls.js';

const running: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
});

async function start(opts: Parameters<typeof startNodeProcess>[0]): Promise<NodeProcess> {
  const p = await startNodeProcess(opts);
  running.push(p);
  return p;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'wc-auth2-'));
}

function secretFile(dir: string, name: string): string {
  const f = join(dir, name);
  writeFileSync(f, `${randomBytes(32).toString('hex')}\n`);
  return f;
}

describe('protected mode', () => {
  it('refuses to listen beyond loopback without auth, naming the door and the way out', async () => {
    const err = await startNodeProcess({ config: { http: { listen: '0.0.0.0:0' } } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited with 78/);
    expect((err as Error).message).toMatch(/protected mode: http\.listen \(0\.0\.0\.0\)/);
    expect((err as Error).message).toMatch(/auth\.insecure/);
    const transportErr = await startNodeProcess({
      config: { transport: { listen: '0.0.0.0:0' } },
    }).catch((e: Error) => e);
    expect((transportErr as Error).message).toMatch(/transport\.listen \(0\.0\.0\.0\)/);
  });

  it('starts beyond loopback with auth configured, or with the explicit insecure flag', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokens'), 'a-long-enough-token-0123456789\n');
    const withAuth = await start({
      dir,
      config: { http: { listen: '0.0.0.0:0' }, auth: { tokensFile: join(dir, 'tokens') } },
    });
    expect((await get(withAuth.url, '/healthz')).status).toBe(200);
    const insecure = await start({ config: { http: { listen: '0.0.0.0:0' }, auth: { insecure: true } } });
    expect((await get(insecure.url, '/healthz')).status).toBe(200);
  });

  it('a weak token file stops start-up with the file and line', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokens'), '# ok\nshort\n');
    const err = await startNodeProcess({ dir, config: { auth: { tokensFile: join(dir, 'tokens') } } }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toMatch(/tokens:2: token shorter than 16 characters/);
  });
});

describe('cluster secret between a node and sidecars', () => {
  it('a sidecar with a different secret, or none, cannot read from the node; the same secret can', async () => {
    const dir = tempDir();
    const root = join(dir, 'origin');
    mkdirSync(join(root, 'models'), { recursive: true });
    const bytes = randomBytes(300_000);
    writeFileSync(join(root, 'models', 'w.bin'), bytes);
    const secretA = secretFile(dir, 'a');
    const secretB = secretFile(dir, 'b');
    const self = `127.0.0.61:${await freePort()}`;
    const cache = { chunkSize: '64KiB' };
    await startMember({
      root,
      self,
      members: [self],
      config: { cache, auth: { clusterSecretFile: secretA } },
      running,
    });
    const sidecar = (secret: string | null) =>
      startSidecar({
        root,
        members: [self],
        config: { cache, sidecar: { originFallback: false }, auth: { clusterSecretFile: secret } },
        running,
      });
    for (const secret of [secretB, null]) {
      const s = await sidecar(secret);
      const res = await get(s.url, '/v1/objects/models/w.bin');
      // The sidecar cannot even get a lease on the name from its home: 503, and with origin
      // fallback off it never asks the origin itself.
      expect(res.status, `secret ${secret}`).toBe(503);
      expect(JSON.parse(res.body.toString()).code).toBe('PEER_UNAVAILABLE');
      expect(await s.metric('weightcache_peer_requests_total', { result: 'hit' })).toBe(0);
      expect(s.logs.join('\n')).toMatch(/cluster secret|requires a cluster secret/);
    }
    const good = await sidecar(secretA);
    const res = await get(good.url, '/v1/objects/models/w.bin');
    expect(res.status).toBe(200);
    expect(res.body.equals(bytes)).toBe(true);
    expect(await good.metric('weightcache_peer_requests_total', { result: 'hit' })).toBeGreaterThan(0);
  });
});

describe('TLS', () => {
  it('serves HTTPS and RESP over TLS with the configured certificate', async () => {
    const dir = tempDir();
    selfSignedCert(dir);
    mkdirSync(join(dir, 'origin', 'models'), { recursive: true });
    writeFileSync(join(dir, 'origin', 'models', 'f.txt'), 'over tls');
    const tls = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
    const respPort = await freePort();
    const node = await start({
      dir,
      config: { http: { tls }, resp: { listen: `127.0.0.1:${respPort}`, tls } },
    });
    const ca = readFileSync(join(dir, 'cert.pem'));
    const body = await new Promise<string>((resolve, reject) => {
      const u = new URL(node.url);
      request({ host: '127.0.0.1', port: u.port, path: '/v1/objects/models/f.txt', ca }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      })
        .on('error', reject)
        .end();
    });
    expect(body).toBe('over tls');
    // plain HTTP to the TLS port gets no answer it could mistake for data
    await expect(get(node.url, '/healthz')).rejects.toThrow();
    const r = new Redis({
      host: '127.0.0.1',
      port: respPort,
      tls: { ca },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await r.connect();
    try {
      expect(await r.get('models/f.txt')).toBe('over tls');
    } finally {
      r.disconnect();
    }
  });
});
