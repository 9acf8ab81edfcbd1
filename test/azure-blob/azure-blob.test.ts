/**
 * azure-storage-blob 12.31 and adlfs against the Azure Blob door of a real
 * node over an fs origin, configured by a connection string only: downloads
 * with offset/length (and a range MD5), properties, listings with paging,
 * SAS URLs, errors with x-ms-error-code; then SharedKey and SAS checked
 * against the node's tokens, with a SAS's signed protocol (spr) and source
 * addresses (sip), over HTTP and HTTPS. Python beside this file.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { selfSignedCert } from '../harness/tls.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const files: Record<string, Buffer> = {
  'llama/config.json': Buffer.from('{"model_type":"llama"}'),
  'llama/model-00001-of-00002.safetensors': randomBytes(900_000),
  'llama/tokenizer/tokenizer.json': randomBytes(300),
  'llama/empty.bin': Buffer.alloc(0),
};
const MANY = 1001;
for (let i = 0; i < MANY; i++) files[`many/b${String(i).padStart(4, '0')}`] = Buffer.from(String(i));
const vocab = randomBytes(500);
const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;

/** A connection string as a user writes it for the door: the account key is base64 of a token. */
function connectionString(node: NodeProcess, account: string, token: string): string {
  const key = Buffer.from(token).toString('base64');
  return `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};BlobEndpoint=${node.url}/azure/${account}`;
}

describe.skipIf(!run)('Azure Blob door: azure-storage-blob and adlfs', { timeout: CLIENT_TEST_MS }, () => {
  let node: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(files);
    node = await startNodeProcess({
      config: { origin: { type: 'fs', fs: { root } }, cache: { chunkSize: '256KiB' } },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('downloads, reads ranges, properties and lists with paging; errors carry x-ms-error-code', async () => {
    const out = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['reads', connectionString(node, 'anyaccount', 'any-key-the-node-does-not-check')],
      { timeoutMs: CLIENT_TEST_MS },
    );
    const shard = files['llama/model-00001-of-00002.safetensors']!;
    expect(out.whole_sha).toBe(sha(shard));
    expect(out.range_sha).toBe(sha(shard.subarray(1000, 301_000)));
    expect(out.chunked_sha).toBe(sha(shard));
    expect(out.md5_range_sha).toBe(sha(shard.subarray(10, 50_010)));
    expect(out.props.size).toBe(shard.length);
    expect(out.props.type).toBe('BlockBlob');
    expect(out.props.md5).toBeNull();
    expect(out.config_sha).toBe(sha(files['llama/config.json']!));
    expect(out.empty_len).toBe(0);
    expect(out.many).toEqual(
      Object.keys(files)
        .filter((k) => k.startsWith('many/'))
        .sort(),
    );
    expect(out.many_pages).toBe(3);
    expect([...out.walk].sort()).toEqual([
      'llama/config.json',
      'llama/empty.bin',
      'llama/model-00001-of-00002.safetensors',
      'llama/tokenizer/',
    ]);
    expect(out.missing).toMatchObject({ status: 404, code: 'BlobNotFound', header: 'BlobNotFound' });
    expect(out.missing_props).toMatchObject({ status: 404, header: 'BlobNotFound' });
    expect(out.bad_range).toMatchObject({ status: 416, header: 'InvalidRange' });
    expect(out.write).toMatchObject({ status: 405, header: 'UnsupportedHttpVerb' });
    expect(out.container_exists).toBe(true);
    expect(out.sas_sha).toBe(sha(files['llama/config.json']!));
    expect(out.sas_list).toHaveLength(4);
    expect(out.adlfs_ls).toEqual([
      'models/llama/config.json',
      'models/llama/empty.bin',
      'models/llama/model-00001-of-00002.safetensors',
      'models/llama/tokenizer',
    ]);
    expect(out.adlfs_info).toBe(shard.length);
    expect(out.adlfs_range_sha).toBe(sha(shard.subarray(123_456, 323_456)));
    expect(out.adlfs_cat_sha).toBe(sha(files['llama/config.json']!));
    expect(out.adlfs_find).toBe(MANY);
    expect(await node.metric('weightcache_object_reads_total', { door: 'azure' })).toBeGreaterThan(5);
  });

  it('answers every error with x-ms-error-code, HEAD included', async () => {
    for (const [method, path] of [
      ['GET', '/azure/acct/models/llama/nope.bin'],
      ['HEAD', '/azure/acct/models/llama/nope.bin'],
      ['GET', '/azure/acct/models?restype=container&comp=list&maxresults=-1'],
      ['PUT', '/azure/acct/models/x'],
      ['GET', '/azure/acct/Bad_Container/x'],
    ] as const) {
      const res = await get(node.url, path, {}, method);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(res.headers['x-ms-error-code'], `${method} ${path}`).toBeTruthy();
    }
  });
});

describe.skipIf(!run)('Azure Blob door: SharedKey and SAS', { timeout: CLIENT_TEST_MS }, () => {
  const all = `all-${randomBytes(16).toString('hex')}`;
  const scoped = `tok-${randomBytes(16).toString('hex')}`;
  let node: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(files);
    replaceAtOrigin(root, 't/vocab.json', vocab, 'tokenizers');
    const dir = mkdtempSync(join(tmpdir(), 'wc-az-auth-'));
    writeFileSync(join(dir, 'tokens'), `${all}\n${scoped} tokenizers\n`);
    node = await startNodeProcess({
      dir,
      config: { origin: { type: 'fs', fs: { root } }, auth: { tokensFile: join(dir, 'tokens') } },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('a token as the account key reads; a wrong key is 403 AuthenticationFailed; scopes hold', async () => {
    const ok = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['reads', connectionString(node, 'acct', all)],
      {
        timeoutMs: CLIENT_TEST_MS,
      },
    );
    expect(ok.config_sha).toBe(sha(files['llama/config.json']!));
    expect(ok.sas_sha).toBe(sha(files['llama/config.json']!));
    const bad = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['denied', connectionString(node, 'acct', `not-${all}`)],
      {
        timeoutMs: CLIENT_TEST_MS,
      },
    );
    expect(bad.bad_key).toMatchObject({
      status: 403,
      code: 'AuthenticationFailed',
      header: 'AuthenticationFailed',
    });
    expect(bad.bad_key_list).toMatchObject({ status: 403, header: 'AuthenticationFailed' });
    const mine = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['scoped', connectionString(node, 'acct', scoped)],
      {
        timeoutMs: CLIENT_TEST_MS,
      },
    );
    expect(mine.other).toMatchObject({ status: 403, header: 'AuthorizationPermissionMismatch' });
    expect(mine.own_sha).toBe(sha(vocab));
    expect(mine.bad_sas).toMatchObject({ status: 403, header: 'AuthenticationFailed' });
    const anonymous = await get(node.url, '/azure/acct/tokenizers/t/vocab.json');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['x-ms-error-code']).toBe('NoAuthenticationInformation');
  });

  it("a SAS's signed protocol (spr) and source addresses (sip) hold over plain HTTP from 127.0.0.1", async () => {
    const out = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['sas_limits', connectionString(node, 'acct', all)],
      { timeoutMs: CLIENT_TEST_MS },
    );
    const config = { sha: sha(files['llama/config.json']!) };
    const protocol = {
      status: 403,
      code: 'AuthorizationProtocolMismatch',
      header: 'AuthorizationProtocolMismatch',
    };
    const source = {
      status: 403,
      code: 'AuthorizationSourceIPMismatch',
      header: 'AuthorizationSourceIPMismatch',
    };
    expect(out.https_only).toEqual(protocol);
    expect(out.https_or_http).toEqual(config);
    expect(out.ip_other).toEqual(source);
    expect(out.ip_mine).toEqual(config);
    expect(out.range_mine).toEqual(config);
    expect(out.range_other).toEqual(source);
    expect(out.ip_garbage).toMatchObject({ status: 403, header: 'AuthenticationFailed' });
    expect(out.account_sas).toEqual(protocol);
    expect(out.list_ip_other).toEqual(source);
  });
});

describe.skipIf(!run)('Azure Blob door over HTTPS: spr=https', { timeout: CLIENT_TEST_MS }, () => {
  const all = `all-${randomBytes(16).toString('hex')}`;
  let node: NodeProcess;
  let dir: string;
  beforeAll(async () => {
    const root = seedOrigin(files);
    dir = mkdtempSync(join(tmpdir(), 'wc-az-tls-'));
    selfSignedCert(dir);
    writeFileSync(join(dir, 'tokens'), `${all}\n`);
    node = await startNodeProcess({
      dir,
      config: {
        origin: { type: 'fs', fs: { root } },
        auth: { tokensFile: join(dir, 'tokens') },
        http: { tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') } },
      },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('a SAS that allows HTTPS only reads over HTTPS; sip still holds there', async () => {
    const https = { ...node, url: node.url.replace(/^http:/, 'https:') };
    const out = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'azure_client.py'),
      ['sas_limits', connectionString(https, 'acct', all), join(dir, 'cert.pem')],
      { timeoutMs: CLIENT_TEST_MS },
    );
    const config = { sha: sha(files['llama/config.json']!) };
    const source = {
      status: 403,
      code: 'AuthorizationSourceIPMismatch',
      header: 'AuthorizationSourceIPMismatch',
    };
    expect(out.https_only).toEqual(config);
    expect(out.https_or_http).toEqual(config);
    expect(out.ip_other).toEqual(source);
    expect(out.ip_mine).toEqual(config);
    // Over HTTPS the protocol holds, so the account SAS fails on its source address instead.
    expect(out.account_sas).toEqual(source);
  });
});
