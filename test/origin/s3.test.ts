/**
 * The S3 origin against moto's S3 server (a real S3-compatible HTTP server
 * from PyPI): the Origin contract, then what is S3's own: credentials from a
 * file and from an IRSA-style web identity exchanged at moto's STS, the
 * `bucket` mode, a dead endpoint.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../src/auth/tokens.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { S3Origin } from '../../src/origin/s3.js';
import { type CredentialSource, credentialSource } from '../../src/origin/s3-credentials.js';
import { signedHeaders, uriEncode } from '../../src/s3/sigv4.js';
import { seedOrigin } from '../harness/cluster.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { get } from '../harness/http-get.js';
import { type MotoHandle, startMoto } from '../harness/moto.js';
import { startNodeProcess } from '../harness/node-process.js';
import { hasVenv } from '../harness/python.js';
import { bytesOf, CONTAINER, collect, expectCode, originContract } from './contract.js';

const KEYS = { accessKeyId: 'AKIAMOTOTEST', secretAccessKey: 'moto-secret' };
const creds: CredentialSource = { get: async () => KEYS };
const run = hasVenv('main') || process.env.CI;

/** Uploads the way a publisher would: PUT (creating the bucket first), DELETE. */
function uploader(endpoint: string) {
  const made = new Set<string>();
  const send = async (method: string, path: string, body?: Buffer) => {
    const u = new URL(endpoint);
    const headers = signedHeaders({
      method,
      host: u.host,
      uri: path,
      query: [],
      payloadHash: 'UNSIGNED-PAYLOAD',
      region: 'us-east-1',
      service: 's3',
      credentials: KEYS,
      now: new Date(),
    });
    const res = await fetch(`${endpoint}${path}`, { method, headers, ...(body ? { body } : {}) });
    if (res.status >= 300 && !(method === 'PUT' && res.status === 409)) {
      throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    }
    await res.arrayBuffer();
  };
  return {
    async put(container: string, key: string, bytes: Buffer): Promise<void> {
      if (!made.has(container)) {
        await send('PUT', `/${container}`);
        made.add(container);
      }
      await send('PUT', `/${container}/${uriEncode(key, true)}`, bytes);
    },
    async remove(container: string, key: string): Promise<void> {
      await send('DELETE', `/${container}/${uriEncode(key, true)}`);
    },
  };
}

describe.skipIf(!run)('s3 origin', () => {
  originContract('s3 (moto)', async () => {
    const moto = await startMoto();
    // A pass-through proxy only to count requests: proves BAD_KEY is decided before any I/O.
    const proxy = await startFaultProxy({ target: moto.endpoint });
    const up = uploader(moto.endpoint);
    return {
      origin: new S3Origin({
        endpoint: `http://127.0.0.1:${proxy.port}`,
        region: 'us-east-1',
        bucket: null,
        pathStyle: true,
        credentials: creds,
        timeoutMs: 10_000,
      }),
      put: up.put,
      remove: up.remove,
      caps: { list: true },
      requests: () => proxy.requests.total,
      teardown: async () => {
        await proxy.stop();
        await moto.stop();
      },
    };
  });

  describe('credentials, bucket mode, faults', () => {
    let moto: MotoHandle;
    let up: ReturnType<typeof uploader>;
    beforeAll(async () => {
      moto = await startMoto();
      up = uploader(moto.endpoint);
      await up.put('shared', 'team-a/llama/config.json', bytesOf(100, 1));
      await up.put('shared', 'team-a/llama/w.bin', bytesOf(5000, 2));
      await up.put('shared', 'team-b/x.bin', bytesOf(10, 3));
    });
    afterAll(async () => {
      await moto?.stop();
    });

    it('id names endpoint, region and bucket, never a key', () => {
      const o = new S3Origin({
        endpoint: moto.endpoint,
        region: 'eu-west-1',
        bucket: 'shared',
        pathStyle: true,
        credentials: creds,
        timeoutMs: 1000,
      });
      expect(o.id).toBe(`s3:${moto.endpoint}/eu-west-1/shared`);
      expect(o.id).not.toContain(KEYS.secretAccessKey);
    });

    it('bucket mode: containers are key prefixes in one bucket', async () => {
      const o = new S3Origin({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        bucket: 'shared',
        pathStyle: true,
        credentials: creds,
        timeoutMs: 10_000,
      });
      const v = await o.stat({ container: 'team-a', key: 'llama/w.bin' });
      expect(v.size).toBe(5000);
      expect((await o.read(v, v, 10, 100)).equals(bytesOf(5000, 2).subarray(10, 110))).toBe(true);
      expect((await collect(o.list('team-a', 'llama/'))).map((f) => f.key)).toEqual([
        'llama/config.json',
        'llama/w.bin',
      ]);
      expect((await collect(o.list('team-b', ''))).map((f) => f.key)).toEqual(['x.bin']);
      await o.close();
    });

    it('reads with credentials from a shared credentials file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wc-s3-creds-'));
      const file = join(dir, 'credentials');
      writeFileSync(
        file,
        `[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[loader]\naws_access_key_id = ${KEYS.accessKeyId}\naws_secret_access_key = ${KEYS.secretAccessKey}\n`,
      );
      const source = credentialSource({ source: 'file', file, profile: 'loader' }, 'us-east-1');
      expect(await source.get()).toMatchObject(KEYS);
      const o = new S3Origin({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        bucket: null,
        pathStyle: true,
        credentials: source,
        timeoutMs: 10_000,
      });
      expect((await o.stat({ container: 'shared', key: 'team-b/x.bin' })).size).toBe(10);
      await o.close();
      expect(() => credentialSource({ source: 'file', file, profile: 'nope' }, 'us-east-1')).toThrow(
        /profile \[nope\]/,
      );
    });

    it('exchanges a web identity token at STS for temporary credentials and keeps them until shortly before expiry', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wc-s3-irsa-'));
      const tokenFile = join(dir, 'token');
      // moto's STS accepts any JWT-shaped token; the kubelet would project a real one here.
      writeFileSync(
        tokenFile,
        'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2FjaGU6d2MifQ.c2ln',
      );
      const source = credentialSource(
        {
          source: 'webIdentity',
          roleArn: 'arn:aws:iam::123456789012:role/weightcache',
          tokenFile,
          stsEndpoint: moto.endpoint,
          sessionName: 'weightcache',
        },
        'us-east-1',
      );
      const first = await source.get();
      expect(first?.accessKeyId).toMatch(/^ASIA/);
      expect(first?.sessionToken).toBeTruthy();
      expect(await source.get()).toBe(first); // kept until five minutes before it expires
      const o = new S3Origin({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        bucket: null,
        pathStyle: true,
        credentials: source,
        timeoutMs: 10_000,
      });
      const v = await o.stat({ container: 'shared', key: 'team-a/llama/config.json' });
      expect((await o.read(v, v, 0, 100)).equals(bytesOf(100, 1))).toBe(true);
      await o.close();
    });

    it('missing settings are CONFIG_INVALID naming what is missing', () => {
      expect(() => credentialSource({ source: 'env' }, 'us-east-1', {})).toThrow(/AWS_ACCESS_KEY_ID/);
      expect(() =>
        credentialSource(
          { source: 'webIdentity', roleArn: null, tokenFile: null, stsEndpoint: null, sessionName: 'x' },
          'us-east-1',
          {},
        ),
      ).toThrow(/roleArn and tokenFile/);
      let err: unknown;
      try {
        new S3Origin({
          endpoint: 'ftp://x',
          region: 'us-east-1',
          bucket: null,
          pathStyle: true,
          credentials: creds,
          timeoutMs: 1000,
        });
      } catch (e) {
        err = e;
      }
      expect(CacheError.is(err, 'CONFIG_INVALID')).toBe(true);
    });

    it("reads through another node's S3 door, signed with a token's key id: one SigV4 on both sides", async () => {
      const token = `chain-${randomBytes(16).toString('hex')}`;
      const dir = mkdtempSync(join(tmpdir(), 'wc-s3-chain-'));
      writeFileSync(join(dir, 'tokens'), `${token} weights\n`);
      const root = seedOrigin(
        { 'llama/a b+c.bin': bytesOf(70_000, 9), 'llama/config.json': bytesOf(10, 8) },
        'weights',
      );
      const upstream = await startNodeProcess({
        dir,
        config: {
          origin: { type: 'fs', fs: { root } },
          auth: { tokensFile: join(dir, 'tokens') },
          s3: { baseDomain: 's3.test' },
        },
        timeoutMs: 120_000,
      });
      try {
        const signed: CredentialSource = {
          get: async () => ({ accessKeyId: keyIdOf(token), secretAccessKey: token }),
        };
        const o = new S3Origin({
          endpoint: `${upstream.url}/s3`,
          region: 'eu-west-1',
          bucket: null,
          pathStyle: true,
          credentials: signed,
          timeoutMs: 10_000,
        });
        const v = await o.stat({ container: 'weights', key: 'llama/a b+c.bin' });
        expect((await o.read(v, v, 1000, 5000)).equals(bytesOf(70_000, 9).subarray(1000, 6000))).toBe(true);
        expect((await collect(o.list('weights', 'llama/'))).map((f) => f.key)).toEqual([
          'llama/a b+c.bin',
          'llama/config.json',
        ]);
        await o.close();
        const wrong = new S3Origin({
          endpoint: `${upstream.url}/s3`,
          region: 'us-east-1',
          bucket: null,
          pathStyle: true,
          credentials: { get: async () => ({ accessKeyId: keyIdOf(token), secretAccessKey: 'wrong' }) },
          timeoutMs: 10_000,
        });
        await expectCode(
          wrong.stat({ container: 'weights', key: 'llama/config.json' }),
          'ORIGIN_UNAVAILABLE',
        );
        await wrong.close();
        // Virtual-host style at the door: the Host names the bucket (s3.baseDomain).
        const vh = await get(upstream.url, '/s3/llama/config.json', { Host: 'weights.s3.test' });
        expect(vh.status).toBe(403); // unsigned: the door with tokens refuses it, having found the bucket
        expect(vh.body.toString()).toContain('<Code>AccessDenied</Code>');
      } finally {
        await upstream.kill();
      }
    });

    it('a dead endpoint is ORIGIN_UNAVAILABLE, quickly', async () => {
      const o = new S3Origin({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        bucket: null,
        pathStyle: true,
        credentials: creds,
        timeoutMs: 3000,
      });
      await expectCode(o.stat({ container: CONTAINER, key: 'x' }), 'ORIGIN_UNAVAILABLE');
      await o.close();
    });
  });
});
