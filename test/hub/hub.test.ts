/**
 * huggingface_hub 2.4 against the Hub door of a real node over an fs origin,
 * configured with nothing but HF_ENDPOINT: hf_hub_download, snapshot_download
 * (every file byte-equal, one commit for all), HfFileSystem, a paged tree;
 * the library's own errors; then tokens. Python beside this file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceAtOrigin, seedOrigin } from '../harness/cluster.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const REPO = 'acme/tiny-llama';
const files: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 64 })),
  'model-00001-of-00002.safetensors': randomBytes(700_000),
  'model-00002-of-00002.safetensors': randomBytes(300_001),
  'model.safetensors.index.json': Buffer.from('{"weight_map":{}}'),
  'tokenizer/tokenizer.json': randomBytes(5000),
};
const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
/** Python clients start slowly on a loaded machine (imports alone take seconds). */
const CLIENT_TEST_MS = 600_000;

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

describe.skipIf(!run)('Hub door: huggingface_hub', { timeout: CLIENT_TEST_MS }, () => {
  let node: NodeProcess;
  let root: string;
  beforeAll(async () => {
    root = seedOrigin(Object.fromEntries(Object.entries(files).map(([k, v]) => [`${REPO}/${k}`, v])));
    node = await startNodeProcess({
      config: {
        origin: { type: 'fs', fs: { root } },
        cache: { chunkSize: '256KiB' },
        hub: { treePageSize: 2 },
      },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('downloads a file, a whole snapshot at one commit, and reads through HfFileSystem', async () => {
    const out = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['reads', REPO], {
      env: env(node),
      timeoutMs: 300_000,
    });
    expect(out.config_sha).toBe(sha(files['config.json']!));
    expect(out.snapshot_commit).toMatch(/^[0-9a-f]{40}$/);
    expect(out.config_commit).toBe(out.snapshot_commit);
    expect(out.info.sha).toBe(out.snapshot_commit);
    expect(out.info.id).toBe(REPO);
    expect(out.info.siblings).toEqual(Object.keys(files).sort());
    expect(Object.keys(out.snapshot_files).sort()).toEqual(Object.keys(files).sort());
    for (const [k, v] of Object.entries(files)) expect(out.snapshot_files[k], k).toBe(sha(v));
    // Five files and a folder, two entries per page: the tree was paged with Link: rel="next".
    expect(out.tree).toEqual([
      ['RepoFile', 'config.json'],
      ['RepoFile', 'model-00001-of-00002.safetensors'],
      ['RepoFile', 'model-00002-of-00002.safetensors'],
      ['RepoFile', 'model.safetensors.index.json'],
      ['RepoFolder', 'tokenizer'],
      ['RepoFile', 'tokenizer/tokenizer.json'],
    ]);
    expect(out.fs_ls).toEqual([
      `${REPO}/config.json`,
      `${REPO}/model-00001-of-00002.safetensors`,
      `${REPO}/model-00002-of-00002.safetensors`,
      `${REPO}/model.safetensors.index.json`,
      `${REPO}/tokenizer`,
    ]);
    const shard = files[out.fs_range.file]!;
    expect(out.fs_range.sha).toBe(sha(shard.subarray(1000, 71000)));
    expect(out.fs_cat_sha).toBe(sha(files['config.json']!));
    expect(out.fs_info_size).toBe(shard.length);
    expect(out.pinned_same_folder).toBe(true);
    expect(await node.metric('weightcache_object_reads_total', { door: 'hub' })).toBeGreaterThan(0);
  });

  it("raises the library's own errors for a missing repo, revision, file and a stale commit", async () => {
    const out = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['errors', REPO], {
      env: env(node),
      timeoutMs: 300_000,
    });
    expect(out.missing_repo.mro).toContain('RepositoryNotFoundError');
    expect(out.missing_repo.status).toBe(404);
    expect(out.missing_repo_info.mro).toContain('RepositoryNotFoundError');
    expect(out.missing_revision.mro).toContain('RevisionNotFoundError');
    expect(out.missing_file.mro).toContain('EntryNotFoundError');
    expect(out.stale_commit.mro).toContain('RevisionNotFoundError');
  });

  it('a file replaced after the listing is served from the new revision, never mixed', async () => {
    // main moves: the commit changes, the bytes follow; the old commit is refused, not mixed.
    const before = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['reads', REPO], {
      env: env(node),
      timeoutMs: 300_000,
    });
    const updated = Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 128 }));
    replaceAtOrigin(root, `${REPO}/config.json`, updated);
    const res = await fetch(`${node.url}/hf/${REPO}/resolve/main/config.json`);
    expect(Buffer.from(await res.arrayBuffer()).equals(updated)).toBe(true);
    const commit = res.headers.get('x-repo-commit');
    expect(commit).not.toBe(before.snapshot_commit);
    const old = await fetch(`${node.url}/hf/${REPO}/resolve/${before.snapshot_commit}/config.json`);
    // The old snapshot is still kept in memory here, but its config.json version is gone at the origin.
    expect(old.status).toBe(404);
    expect(old.headers.get('x-error-code')).toBe('RevisionNotFound');
    replaceAtOrigin(root, `${REPO}/config.json`, files['config.json']!);
  });
});

describe.skipIf(!run)('Hub door: tokens', { timeout: CLIENT_TEST_MS }, () => {
  const token = `hub-${randomBytes(16).toString('hex')}`;
  let node: NodeProcess;
  beforeAll(async () => {
    const root = seedOrigin(Object.fromEntries(Object.entries(files).map(([k, v]) => [`${REPO}/${k}`, v])));
    const dir = mkdtempSync(join(tmpdir(), 'wc-hub-auth-'));
    writeFileSync(join(dir, 'tokens'), `${token} models\n`);
    node = await startNodeProcess({
      dir,
      config: { origin: { type: 'fs', fs: { root } }, auth: { tokensFile: join(dir, 'tokens') } },
      timeoutMs: 120_000,
    });
  }, 300_000);
  afterAll(async () => {
    await node?.kill();
  });

  it('reads with HF_TOKEN; a bad token raises the 401 HfHubHTTPError; none reads as a private repo', async () => {
    const ok = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['reads', REPO], {
      env: env(node, token),
      timeoutMs: 300_000,
    });
    expect(ok.config_sha).toBe(sha(files['config.json']!));
    const bad = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['badtoken', REPO], {
      env: env(node, `wrong-${token}`),
      timeoutMs: 300_000,
    });
    expect(bad.bad_token.status).toBe(401);
    expect(bad.is_hf_http_error).toBe(true);
    expect(bad.bad_token.mro).not.toContain('RepositoryNotFoundError');
    const none = await runPythonJson<ClientOutput>('main', join(here, 'hf_client.py'), ['badtoken', REPO], {
      env: env(node),
      timeoutMs: 300_000,
    });
    expect(none.bad_token.mro).toContain('RepositoryNotFoundError');
  });
});
