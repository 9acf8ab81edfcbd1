/**
 * Real S3 clients (boto3 1.44, s3fs) against the S3 door of a real node
 * process over an fs origin: listings with and without a delimiter and past
 * 1,000 keys, head, ranged gets, download_file, presigned URLs, conditional
 * gets and S3's errors; then signatures and scopes on a node with tokens.
 * Python scripts beside this file; clients from `npm run test:deps`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../src/auth/tokens.js';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CHUNK = 256 * 1024;

const files: Record<string, Buffer> = {
  'llama/config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
  'llama/model-00001-of-00002.safetensors': randomBytes(3 * CHUNK + 12_345),
  'llama/model-00002-of-00002.safetensors': randomBytes(CHUNK - 7),
  'llama/tokenizer/tokenizer.json': randomBytes(999),
  'odd/a b+c.bin': randomBytes(50),
  'odd/ü-模型.safetensors': randomBytes(51),
  'dirs/f.bin': randomBytes(3),
};
for (const d of ['a', 'b', 'c', 'd', 'e', 'g']) files[`dirs/${d}/1.bin`] = randomBytes(2);
const MANY = 1050;
for (let i = 0; i < MANY; i++) files[`many/k${String(i).padStart(4, '0')}.bin`] = Buffer.from(String(i));
const vocab = randomBytes(777);

const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
/** Python clients start slowly on a loaded machine (imports alone take seconds). */
const CLIENT_TEST_MS = 600_000;

describe.skipIf(!run)('S3 door: boto3', { timeout: CLIENT_TEST_MS }, () => {
  let node: NodeProcess;
  let root: string;
  beforeAll(async () => {
    root = seedOrigin(files);
    seedOriginInto(root, 'tokenizers', { 't/vocab.json': vocab });
    node = await startNodeProcess({
      config: {
        origin: { type: 'fs', fs: { root } },
        cache: { chunkSize: '256KiB' },
        // The buckets ListBuckets shows; any other (tokenizers, though the origin has it) is NoSuchBucket.
        s3: { buckets: ['models'] },
      },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('lists, heads, reads ranges and downloads byte-exact; refuses what S3 would', async () => {
    const before = await node.metric('weightcache_object_reads_total', { door: 's3' });
    const out = await runPythonJson<ClientOutput>('main', join(here, 'boto3_client.py'), [
      `${node.url}/s3`,
      'any-key-id',
      'any-secret',
      'reads',
    ]);
    const many = Object.keys(files)
      .filter((k) => k.startsWith('many/'))
      .sort();
    expect(out.many_keys).toEqual(many);
    expect(out.many_pages).toBe(2);
    expect(out.first_page_count).toBe(1000);
    expect(out.top_prefixes).toEqual(['dirs/', 'llama/', 'many/', 'odd/']);
    expect(out.top_keys).toEqual([]);
    expect(Object.keys(out.llama).sort()).toEqual([
      'llama/config.json',
      'llama/model-00001-of-00002.safetensors',
      'llama/model-00002-of-00002.safetensors',
    ]);
    expect(out.llama['llama/config.json'].size).toBe(files['llama/config.json']!.length);
    expect(out.llama_prefixes).toEqual(['llama/tokenizer/']);
    expect(out.dirs_keys).toEqual(['dirs/f.bin']);
    expect(out.dirs_prefixes).toEqual(['dirs/a/', 'dirs/b/', 'dirs/c/', 'dirs/d/', 'dirs/e/', 'dirs/g/']);
    expect(out.start_after).toEqual([
      'llama/model-00001-of-00002.safetensors',
      'llama/model-00002-of-00002.safetensors',
      'llama/tokenizer/tokenizer.json',
    ]);
    expect(out.odd.sort()).toEqual(['odd/a b+c.bin', 'odd/ü-模型.safetensors'].sort());
    for (const k of out.odd) expect(out.odd_shas[k]).toBe(sha(files[k]!));
    expect(out.v1_keys).toHaveLength(4);

    const shard = files['llama/model-00001-of-00002.safetensors']!;
    expect(out.head.length).toBe(shard.length);
    expect(out.head.ranges).toBe('bytes');
    expect(out.range.status).toBe(206);
    expect(out.range.content_range).toBe(`bytes 1000-300000/${shard.length}`);
    expect(out.range.sha).toBe(sha(shard.subarray(1000, 300001)));
    expect(out.suffix_sha).toBe(sha(shard.subarray(-100)));
    expect(out.config_sha).toBe(sha(files['llama/config.json']!));
    expect(out.download_sha_0).toBe(sha(shard));
    expect(out.download_sha_1).toBe(sha(shard));
    expect(out.presigned_sha).toBe(sha(files['llama/config.json']!));

    expect(out.if_match_ok).toBe(206);
    expect(out.if_match_bad).toMatchObject({ code: 'PreconditionFailed', status: 412 });
    expect(out.if_none_match).toMatchObject({ status: 304 });
    expect(out.no_such_key).toMatchObject({ code: 'NoSuchKey', status: 404 });
    expect(out.head_missing).toMatchObject({ status: 404 });
    expect(out.bad_range).toMatchObject({ code: 'InvalidRange', status: 416 });
    expect(out.part_number).toMatchObject({ code: 'NotImplemented', status: 501 });
    expect(out.part_number.message).toContain('Range');
    expect(out.put).toMatchObject({ code: 'NotImplemented', status: 501 });
    expect(out.delete).toMatchObject({ code: 'NotImplemented', status: 501 });
    expect(out.location).toBeNull();
    expect(out.buckets).toEqual(['models']);
    expect(out.no_such_bucket).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(out.no_such_bucket_list).toMatchObject({ code: 'NoSuchBucket', status: 404 });
    expect(out.head_bucket).toBe(200);

    // Every object GET went through the shared read and is counted by door and source.
    expect(await node.metric('weightcache_object_reads_total', { door: 's3' })).toBeGreaterThan(before + 10);
  });

  it('s3fs lists (with and without a delimiter, past 1,000 keys), reads ranges and whole files', async () => {
    const out = await runPythonJson<ClientOutput>('s3fs', join(here, 's3fs_client.py'), [`${node.url}/s3`]);
    expect(out.ls_root).toEqual(['models/dirs', 'models/llama', 'models/many', 'models/odd']);
    expect(out.ls_llama).toEqual([
      'models/llama/config.json',
      'models/llama/model-00001-of-00002.safetensors',
      'models/llama/model-00002-of-00002.safetensors',
      'models/llama/tokenizer',
    ]);
    expect(out.find_many).toBe(MANY);
    expect(out.walk_dirs).toEqual([
      'models/dirs',
      ...['a', 'b', 'c', 'd', 'e', 'g'].map((d) => `models/dirs/${d}`),
    ]);
    const shard = files['llama/model-00001-of-00002.safetensors']!;
    expect(out.info).toEqual({ size: shard.length, type: 'file' });
    expect(out.range_sha).toBe(sha(shard.subarray(250_000, 550_000)));
    expect(out.cat_sha).toBe(sha(files['llama/config.json']!));
    expect(out.cat_range_sha).toBe(sha(shard.subarray(5, 70_005)));
    expect(out.exists_missing).toBe(false);
  });

  it('the Run:ai Model Streamer streams every shard of a checkpoint, every tensor equal to the file', async () => {
    const ckpt = mkdtempSync(join(tmpdir(), 'wc-ckpt-'));
    // torch's import alone takes seconds (minutes on a loaded machine).
    const made = await runPythonJson<ClientOutput>('main', join(here, 'runai_stream.py'), ['make', ckpt], {
      timeoutMs: CLIENT_TEST_MS,
    });
    for (const shard of made.shards as string[]) {
      replaceAtOrigin(root, `ckpt/${shard}`, readFileSync(join(ckpt, shard)));
    }
    const urls = (made.shards as string[]).map((s) => `s3://models/ckpt/${s}`);
    const out = await runPythonJson<ClientOutput>(
      'main',
      join(here, 'runai_stream.py'),
      ['stream', ckpt, ...urls],
      {
        env: {
          AWS_ENDPOINT_URL: `${node.url}/s3`,
          AWS_ACCESS_KEY_ID: 'any',
          AWS_SECRET_ACCESS_KEY: 'any',
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
          RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING: '0',
        },
      },
    );
    for (const url of urls) {
      expect(out[url].names.length, url).toBeGreaterThan(0);
      expect(out[url].names, url).toEqual(out[url].expected);
      expect(out[url].equal, url).toEqual(out[url].expected);
    }
  });

  it('answers path-style requests in absolute form and refuses dot segments', async () => {
    // The AWS CRT client (Run:ai's streamer) sends absolute-form targets, RFC 9112 §3.2.2.
    const res = await get(node.url, `${node.url}/s3/models/llama/config.json`);
    expect(res.status).toBe(200);
    expect(res.body.equals(files['llama/config.json']!)).toBe(true);
    const dots = await get(node.url, '/s3/models/llama/../odd/a%20b+c.bin');
    expect(dots.status).toBe(400);
  });
});

describe.skipIf(!run)('S3 door: signatures and scopes', { timeout: CLIENT_TEST_MS }, () => {
  const token = `scoped-${randomBytes(16).toString('hex')}`;
  let node: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(files);
    seedOriginInto(root, 'tokenizers', { 't/vocab.json': vocab });
    const dir = mkdtempSync(join(tmpdir(), 'wc-s3-auth-'));
    writeFileSync(join(dir, 'tokens'), `${token} tokenizers\n`);
    node = await startNodeProcess({
      dir,
      config: { origin: { type: 'fs', fs: { root } }, auth: { tokensFile: join(dir, 'tokens') } },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied for another bucket, reads its own', async () => {
    const out = await runPythonJson<ClientOutput>('main', join(here, 'boto3_client.py'), [
      `${node.url}/s3`,
      keyIdOf(token),
      token,
      'denied',
    ]);
    expect(out.wrong_secret).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(out.wrong_secret_list).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(out.unknown_key).toMatchObject({ code: 'InvalidAccessKeyId', status: 403 });
    expect(out.other_bucket).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(out.other_bucket_list).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect(out.own_bucket_sha).toBe(sha(vocab));
    expect(out.own_bucket_list).toEqual(['t/vocab.json']);
    expect(out.anonymous).toMatchObject({ code: 'AccessDenied', status: 403 });
  });

  it('bounds SigV4: clock skew, presigned expiry; accepts UNSIGNED-PAYLOAD, refuses a changed hash', async () => {
    const out = await runPythonJson<ClientOutput>('main', join(here, 'boto3_client.py'), [
      `${node.url}/s3`,
      keyIdOf(token),
      token,
      'limits',
    ]);
    expect(out.skewed).toMatchObject({ code: 'RequestTimeTooSkewed', status: 403 });
    expect(out.expired_presigned).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect(out.expired_presigned.body).toContain('expired');
    expect(out.v2_presigned).toMatchObject({ status: 400, code: 'InvalidRequest' });
    expect(out.v2_presigned.body).toContain('signature_version=&apos;s3v4&apos;');
    expect(out.v4_presigned).toEqual({ status: 200, sha: sha(vocab) });
    expect(out.unsigned_payload).toEqual({ status: 200, sha: sha(vocab) });
    expect(out.tampered).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });
});

function seedOriginInto(root: string, container: string, objects: Record<string, Buffer>): void {
  for (const [k, v] of Object.entries(objects)) replaceAtOrigin(root, k, v, container);
}
