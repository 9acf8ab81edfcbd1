/**
 * One version per load, through a real mount of a real node process:
 * a transformers-style loader (config.json, the index, every shard through
 * safetensors.safe_open, no huggingface_hub) reads every tensor equal to the
 * origin's; and while such loads run in a loop, a new version is uploaded
 * file by file (each file replaced atomically at the origin): every load is
 * entirely one version, `weightcache invalidate --prefix` flips new loads to
 * the new one, and a handle opened before keeps reading the old bytes.
 * Skipped, saying why, only without /dev/fuse or root, or the Python venv
 * outside CI.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/cli-process.js';
import { replaceAtOrigin } from '../harness/cluster.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { hasVenv, runPythonJson, venvPython } from '../harness/python.js';
import { until } from '../harness/until.js';
import { writeCheckpoint } from './checkpoint.js';

const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;
const withPython = hasVenv('main') || Boolean(process.env.CI);
if (!canMount)
  console.warn('test/mount: skipped: mounting FUSE needs /dev/fuse and root (CAP_SYS_ADMIN) here');
else if (!withPython) console.warn('test/mount/versions: skipped: no venv-main (npm run test:deps)');
const LOADER = join(import.meta.dirname, 'transformers_load.py');

type Digests = Record<string, string>;
interface Load {
  t0: number;
  t1: number;
  snapshot?: string;
  digests?: Digests;
  error?: string;
}

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

describe.skipIf(!canMount || !withPython)('FUSE mount: one version per load', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-mount-versions-'));
  const origin = join(dir, 'origin');
  const mnt = join(dir, 'mnt');
  let node: NodeProcess;
  let loader: ChildProcess | undefined;

  beforeAll(async () => {
    writeCheckpoint(join(origin, 'models', 'llama'), 3);
    writeCheckpoint(join(origin, 'models', 'mistral'), 2);
    node = await startNodeProcess({
      dir,
      config: {
        origin: { type: 'fs', fs: { root: origin } },
        // listInterval 1 h: only the invalidation may flip the names in this test.
        mount: { path: mnt, containers: ['models'], listInterval: '1h', requestTimeout: '20s' },
      },
    });
  });

  afterAll(async () => {
    loader?.kill('SIGKILL');
    await node?.kill();
    if (mounted(mnt)) execFileSync('umount', ['-l', mnt]);
  });

  it('a transformers-style load by path reads every tensor equal to the origin', async () => {
    const r = await runPythonJson('main', LOADER, [
      'once',
      join(mnt, 'models', 'llama'),
      join(origin, 'models', 'llama'),
    ]);
    expect(r).toMatchObject({ model_type: 'llama', tensors: 9, expected: 9, equal: 9 });
    expect(r.files).toEqual([
      'config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(r.bytes as number).toBeGreaterThan(6_000_000);
  });

  it('an upload during a loop of loads: each load is one version; invalidate flips new loads, old handles keep theirs', async () => {
    const model = join(mnt, 'models', 'mistral');
    const atOrigin = join(origin, 'models', 'mistral');
    const versionA = await runPythonJson<Digests>('main', LOADER, ['digest', atOrigin]);
    // Version B, written beside the origin, then uploaded into it file by file.
    const staging = join(dir, 'staging');
    writeCheckpoint(staging, 2);
    writeFileSync(join(staging, 'config.json'), JSON.stringify({ model_type: 'llama', revision: 'B' }));
    const versionB = await runPythonJson<Digests>('main', LOADER, ['digest', staging]);
    expect(versionB['config.json']).not.toBe(versionA['config.json']);
    expect(versionB['model-00001-of-00002.safetensors']).not.toBe(
      versionA['model-00001-of-00002.safetensors'],
    );

    // A handle opened in version A before anything changes, that has read only its first bytes.
    const snapA = realpathSync(model);
    const shard = 'model-00002-of-00002.safetensors';
    const shardA = readFileSync(join(atOrigin, shard));
    const held = await open(join(snapA, shard));
    const head = Buffer.alloc(4096);
    await held.read(head, 0, head.length, 0);
    expect(head.equals(shardA.subarray(0, 4096))).toBe(true);

    const stop = join(dir, 'stop');
    const loads: Load[] = [];
    let stderr = '';
    const child = spawn(venvPython('main'), [LOADER, 'loop', model, stop], {
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    loader = child;
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l.trim()) loads.push(JSON.parse(l) as Load);
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    await until(() => loads.length >= 2, { what: `two loads before the upload (${stderr})` });

    // The upload: each file replaced atomically, with loads running between the files.
    const uploadStart = Date.now() / 1000;
    for (const f of readdirSync(staging, { recursive: true, withFileTypes: true })) {
      if (!f.isFile()) continue;
      const rel = join(f.parentPath, f.name).slice(staging.length + 1);
      replaceAtOrigin(origin, `mistral/${rel}`, readFileSync(join(staging, rel)));
      const n = loads.length;
      await until(() => loads.length > n, { what: `a load while ${rel} is new at the origin` });
    }
    const uploadEnd = Date.now() / 1000;
    expect(realpathSync(model), 'no flip before the invalidation').toBe(snapA);

    const inv = await runCli(['invalidate', 'models/mistral/', '--prefix', '--url', node.url]);
    expect(inv.code, inv.stderr).toBe(0);
    const flipped = Date.now() / 1000;
    const snapB = realpathSync(model);
    expect(snapB).not.toBe(snapA);
    await until(() => loads.filter((l) => l.t0 > flipped).length >= 2, {
      what: `two loads after the invalidation (${stderr})`,
    });
    writeFileSync(stop, '');
    expect(await exited, stderr).toBe(0);

    const sameAs = (d: Digests | undefined, v: Digests) =>
      d !== undefined &&
      Object.keys(v).length === Object.keys(d).length &&
      Object.keys(v).every((k) => d[k] === v[k]);
    expect(loads.filter((l) => l.error)).toEqual([]);
    for (const l of loads) {
      const version = sameAs(l.digests, versionA) ? 'A' : sameAs(l.digests, versionB) ? 'B' : 'a mix';
      expect(version, JSON.stringify(l)).not.toBe('a mix');
      // Each load resolved the name once: its snapshot says which version it must be.
      expect(l.snapshot).toBe(version === 'A' ? snapA.split('/').at(-1) : snapB.split('/').at(-1));
      if (l.t0 > flipped) expect(version, 'a load that started after the invalidation').toBe('B');
    }
    // The race was run: loads overlapped the upload, and all of them were A.
    const during = loads.filter((l) => l.t1 > uploadStart && l.t0 < uploadEnd);
    expect(during.length).toBeGreaterThanOrEqual(2);
    expect(during.every((l) => sameAs(l.digests, versionA))).toBe(true);

    // The handle opened before keeps version A's bytes, read after the flip, from its start to its end.
    const whole = Buffer.alloc(shardA.length);
    const { bytesRead } = await held.read(whole, 0, whole.length, 0);
    expect(bytesRead).toBe(shardA.length);
    expect(whole.equals(shardA)).toBe(true);
    await held.close();
    // A new open by the plain name reads version B.
    expect(readFileSync(join(model, 'config.json'), 'utf8')).toContain('"revision":"B"');
  });
});
