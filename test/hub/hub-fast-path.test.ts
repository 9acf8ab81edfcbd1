/**
 * The Hub door's file downloads on the native door's fast path
 * (docs/native-http-door.md "The fast path", docs/doors.md): two real nodes
 * over one origin, one with the JavaScript door and one with the native door.
 * huggingface_hub downloads the same repo from both (byte-exact, one commit);
 * then the same raw requests (whole, ranged, HEAD, conditional, `main`,
 * missing files and repos, stale and unknown commits, tokens) get the same
 * status, the same headers in the same order (Date aside) and the same bytes
 * from both, with the native node's counters proving its I/O threads
 * answered the file reads of a kept revision themselves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startBothDoors } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';
import { exchangeLines, type SentAnswer } from '../harness/raw-http.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const REPO = 'acme/tiny-llama';
const CHUNK = 256 * 1024;
const files: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
  'model-00001-of-00002.safetensors': randomBytes(3 * CHUNK + 1234),
  'model-00002-of-00002.safetensors': randomBytes(300_001),
  'model.safetensors.index.json': Buffer.from('{"weight_map":{}}'),
  'tokenizer/tokenizer.json': randomBytes(5000),
};
const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;
const TOKEN = 'hub-fast-token-0123456789';
const OTHER = 'hub-other-token-0123456789';
const ADMIN = 'hub-admin-token-0123456789';

type Answer = SentAnswer;

/** One request on its own connection; header lines in order, Date left out. */
function raw(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return exchangeLines(url, method, target, headers);
}

function env(node: NodeProcess, token?: string): Record<string, string> {
  return {
    HF_ENDPOINT: `${node.url}/hf`,
    HF_HOME: mkdtempSync(join(tmpdir(), 'wc-hf-home-')),
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    HF_HUB_ETAG_TIMEOUT: '60',
    ...(token ? { HF_TOKEN: token } : {}),
  };
}

const hubHits = (n: NodeProcess) => n.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });

describe.skipIf(!run)('Hub door on the native fast path', { timeout: CLIENT_TEST_MS }, () => {
  let js: NodeProcess;
  let native: NodeProcess;
  let root: string;
  beforeAll(async () => {
    root = seedOrigin(Object.fromEntries(Object.entries(files).map(([k, v]) => [`${REPO}/${k}`, v])));
    const dir = mkdtempSync(join(tmpdir(), 'wc-hub-fast-'));
    writeFileSync(join(dir, 'tokens'), `${TOKEN} models\n${OTHER} elsewhere\n`);
    writeFileSync(join(dir, 'admin'), `${ADMIN}\n`);
    const config = (door: 'js' | 'native') => ({
      http: { door, threads: 1 },
      origin: { type: 'fs', fs: { root } },
      cache: { chunkSize: '256KiB' },
      auth: { tokensFile: join(dir, 'tokens'), adminTokensFile: join(dir, 'admin') },
      hub: {},
    });
    [js, native] = await startBothDoors(config);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([js?.kill(), native?.kill()]);
  });

  it('huggingface_hub downloads the same bytes and commit from both; the second download is answered natively', async () => {
    const reads = (n: NodeProcess) =>
      runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['reads', REPO], {
        env: env(n, TOKEN),
        timeoutMs: 300_000,
      });
    const fromJs = await reads(js);
    const first = await reads(native); // fills the cache (misses go to JavaScript)
    const hits = await hubHits(native);
    const hubReads = await native.metric('weightcache_object_reads_total', { door: 'hub', source: 'dram' });
    const second = await reads(native);
    for (const out of [first, second]) {
      expect(out.snapshot_commit).toBe(fromJs.snapshot_commit);
      expect(out.snapshot_files).toEqual(fromJs.snapshot_files);
      expect(out.fs_range).toEqual(fromJs.fs_range);
      expect(out.fs_cat_sha).toBe(fromJs.fs_cat_sha);
    }
    for (const [k, v] of Object.entries(files)) expect(second.snapshot_files[k], k).toBe(sha(v));
    // snapshot_download fetches the 4 files hf_hub_download (at `main`, JavaScript's) left it, each with a
    // HEAD and a GET at the commit: all 8 answered on the fast path now, counted as the Hub door's reads.
    expect((await hubHits(native)) - hits).toBeGreaterThanOrEqual(8);
    expect(
      (await native.metric('weightcache_object_reads_total', { door: 'hub', source: 'dram' })) - hubReads,
    ).toBeGreaterThanOrEqual(4);
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('the same raw requests get the same answers from both doors, the file reads of a kept commit natively', async () => {
    const info = (await (
      await fetch(`${js.url}/hf/api/models/${REPO}`, { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as { sha: string };
    const commit = info.sha;
    await fetch(`${native.url}/hf/api/models/${REPO}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const shard = `/hf/${REPO}/resolve/${commit}/model-00001-of-00002.safetensors`;
    const etag = `"${(await raw(js.url, 'HEAD', shard, auth)).head.find((l) => l.startsWith('ETag:'))!.slice(6)}"`;
    // [request, answered on the fast path once warm]
    const cases: [string, string, Record<string, string>, boolean][] = [
      ['GET', shard, auth, true],
      ['HEAD', shard, auth, true],
      ['GET', shard, { ...auth, Range: 'bytes=1000-70999' }, true],
      ['GET', shard, { ...auth, Range: `bytes=${CHUNK - 10}-${2 * CHUNK + 9}` }, true],
      ['GET', shard, { ...auth, Range: 'bytes=-100' }, true],
      ['GET', shard, { ...auth, Range: 'bytes=5-' }, true],
      ['GET', shard, { ...auth, Range: 'bytes=0-0,5-9' }, true], // one range only: the whole file
      ['HEAD', shard, { ...auth, Range: 'bytes=10-20' }, true],
      ['GET', shard, { ...auth, 'If-None-Match': etag }, true],
      ['GET', shard, { ...auth, 'If-None-Match': `W/${etag}` }, true],
      ['GET', shard, { ...auth, 'If-None-Match': '"other"' }, true],
      ['GET', shard, { ...auth, Range: 'bytes=0-99', 'If-Range': etag }, true],
      ['GET', shard, { ...auth, Range: 'bytes=0-99', 'If-Range': '"other"' }, true],
      ['GET', `/hf/${REPO}/resolve/${commit}/config.json`, auth, true],
      ['GET', `/hf/${REPO}/resolve/${commit}/tokenizer/tokenizer.json`, auth, true],
      ['GET', shard, { ...auth, Range: 'bytes=99999999-' }, false], // 416
      ['GET', shard, { ...auth, 'If-Match': '"other"' }, false],
      ['GET', shard, { ...auth, 'If-Modified-Since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, false],
      ['GET', `/hf/${REPO}/resolve/main/config.json`, auth, false],
      ['GET', `/hf/${REPO}/resolve/${commit}/no-such-file.bin`, auth, false],
      ['GET', `/hf/nobody/nothing/resolve/${commit}/config.json`, auth, false],
      ['GET', `/hf/${REPO}/resolve/${'0'.repeat(40)}/config.json`, auth, false],
      ['GET', `/hf/${REPO}/resolve/v9/config.json`, auth, false],
      ['GET', shard, {}, false], // no token: 401
      ['GET', shard, { Authorization: 'Bearer nope' }, false], // unknown token: 401
      ['GET', shard, { Authorization: `Bearer ${OTHER}` }, false], // another container: 403
      ['POST', shard, auth, false],
    ];
    // Warm both: every file filled, every revision resolved.
    for (const [m, p, h] of cases) {
      await raw(js.url, m, p, h);
      await raw(native.url, m, p, h);
    }
    for (const [m, p, h, fast] of cases) {
      const before = await hubHits(native);
      const a = await raw(js.url, m, p, h);
      const b = await raw(native.url, m, p, h);
      const what = `${m} ${p} ${JSON.stringify(h)}`;
      expect(b.head, what).toEqual(a.head);
      expect(b.body.equals(a.body), what).toBe(true);
      expect((await hubHits(native)) - before, what).toBe(fast ? 1 : 0);
    }
    expect(await native.metric('weightcache_http_fastpath_chunk_references')).toBe(0);
  });

  it('a commit whose file changed at the origin is refused on both doors, never served natively from the old version', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const commitOf = async (n: NodeProcess) =>
      ((await (await fetch(`${n.url}/hf/api/models/${REPO}`, { headers: auth })).json()) as { sha: string })
        .sha;
    const commit = await commitOf(native);
    const path = `/hf/${REPO}/resolve/${commit}/config.json`;
    await raw(native.url, 'GET', path, auth);
    const hits = await hubHits(native);
    expect((await raw(native.url, 'GET', path, auth)).status).toBe(200);
    expect(await hubHits(native)).toBe(hits + 1);
    replaceAtOrigin(root, `${REPO}/config.json`, Buffer.from('{"model_type":"changed"}'));
    for (const n of [js, native]) {
      const inv = await fetch(`${n.url}/v1/invalidate`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ container: 'models', key: `${REPO}/config.json` }),
      });
      expect(inv.status).toBe(200);
    }
    const a = await raw(js.url, 'GET', `/hf/${REPO}/resolve/${commit}/config.json`, auth);
    const b = await raw(native.url, 'GET', path, auth);
    expect(a.status).toBe(404);
    expect(b.head).toEqual(a.head);
    expect(b.body.equals(a.body)).toBe(true);
    replaceAtOrigin(root, `${REPO}/config.json`, files['config.json']!);
  });
});
