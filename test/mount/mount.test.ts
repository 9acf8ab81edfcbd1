/**
 * The FUSE mount against a real node process and the real kernel: `cp -r`
 * out of the mount, safetensors.safe_open (mmap) on a mounted shard, the
 * snapshot flip on `weightcache invalidate --prefix` with open handles
 * keeping their version, EIO (never new bytes) for a read of a version the
 * origin no longer has, unmount on SIGTERM, and a stale mount after SIGKILL
 * replaced at the next start. Skipped, saying why, only without /dev/fuse or
 * root (mount(2) of FUSE needs CAP_SYS_ADMIN).
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/cli-process.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { hasVenv, runPythonJson } from '../harness/python.js';
import { safetensors, writeCheckpoint } from './checkpoint.js';

const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;
if (!canMount) {
  console.warn('test/mount: skipped: mounting FUSE needs /dev/fuse and root (CAP_SYS_ADMIN) here');
}
const withPython = hasVenv('main') || Boolean(process.env.CI);

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

describe.skipIf(!canMount)('FUSE mount', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-mount-'));
  const origin = join(dir, 'origin');
  const mnt = join(dir, 'mnt');
  let files: string[];
  let node: NodeProcess;
  const config = {
    origin: { type: 'fs', fs: { root: origin } },
    mount: { path: mnt, containers: ['models'], listInterval: '60s', requestTimeout: '10s' },
  };

  beforeAll(async () => {
    files = writeCheckpoint(join(origin, 'models', 'llama'));
    writeCheckpoint(join(origin, 'models', 'qwen'), 1);
    writeFileSync(join(origin, 'models', 'README.md'), 'top-level file\n');
    node = await startNodeProcess({ dir, config });
  });

  afterAll(async () => {
    await node?.kill();
    if (mounted(mnt)) execFileSync('umount', ['-l', mnt]);
  });

  it('lays out containers, model symlinks to snapshots, and ENOENT for what the origin lacks', async () => {
    expect(await readdir(mnt)).toEqual(['models']);
    expect((await readdir(join(mnt, 'models'))).sort()).toEqual(['.snapshots', 'README.md', 'llama', 'qwen']);
    const link = readlinkSync(join(mnt, 'models', 'llama'));
    expect(link).toMatch(/^\.snapshots\/llama\/[0-9a-f]{40}$/);
    expect(await readdir(join(mnt, 'models', '.snapshots', 'llama'))).toEqual([link.split('/')[2]]);
    expect(await readFile(join(mnt, 'models', 'README.md'), 'utf8')).toBe('top-level file\n');
    expect(() => statSync(join(mnt, 'models', 'llama', 'nope.bin'))).toThrow(/ENOENT/);
    expect(() => statSync(join(mnt, 'other'))).toThrow(/ENOENT/);
    expect(() => writeFileSync(join(mnt, 'models', 'llama', 'config.json'), 'x')).toThrow(/EROFS/);
  });

  it('sets the kernel readahead window to mount.readAhead (FUSE mounts start at 128 KiB)', () => {
    const line = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .findLast((l) => l.split(' ')[4] === mnt)!;
    const dev = line.split(' ')[2]!;
    expect(readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim()).toBe('1024');
  });

  it('cp -r of a checkpoint out of the mount is byte-identical', async () => {
    const out = join(dir, 'copy');
    execFileSync('cp', ['-r', join(mnt, 'models', 'llama') + '/', out]);
    for (const f of files) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(origin, 'models', 'llama', f))), f).toBe(
        true,
      );
    }
    const st = statSync(join(mnt, 'models', 'llama', 'model-00001-of-00002.safetensors'));
    expect(st.size).toBe(statSync(join(origin, 'models', 'llama', 'model-00001-of-00002.safetensors')).size);
    expect(st.mode & 0o777).toBe(0o444);
  });

  it('READs that hit DRAM are answered by the FUSE workers, bytes equal, and counted as served', async () => {
    const shard = 'model-00001-of-00002.safetensors';
    const mountedShard = join(mnt, 'models', 'llama', shard);
    const expected = readFileSync(join(origin, 'models', 'llama', shard));
    readFileSync(mountedShard); // every chunk into DRAM (the test before may have done it already)
    const status = async () =>
      (
        (await (await fetch(`${node.url}/v1/status`)).json()) as {
          mount: { fastReads: number; fastBytes: number };
        }
      ).mount;
    const before = await status();
    const served0 = await node.metric('weightcache_served_bytes_total', { source: 'dram' });
    execFileSync('dd', [`if=${mountedShard}`, 'iflag=nocache', 'count=0']); // out of the page cache
    expect(readFileSync(mountedShard).equals(expected)).toBe(true);
    // A read across a chunk boundary (1 MiB chunks here) at an odd offset.
    const fh = await open(mountedShard);
    const part = Buffer.alloc(1_300_000);
    execFileSync('dd', [`if=${mountedShard}`, 'iflag=nocache', 'count=0']);
    await fh.read(part, 0, part.length, 777_777);
    await fh.close();
    expect(part.equals(expected.subarray(777_777, 777_777 + part.length))).toBe(true);
    const after = await status();
    expect(after.fastReads).toBeGreaterThan(before.fastReads);
    expect(after.fastBytes - before.fastBytes).toBeGreaterThanOrEqual(expected.length);
    expect(await node.metric('weightcache_served_bytes_total', { source: 'dram' })).toBeGreaterThanOrEqual(
      served0 + expected.length,
    );
  });

  it.skipIf(!withPython)(
    'safetensors.safe_open (mmap) on a mounted shard reads every tensor equal to the origin',
    async () => {
      for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
        const r = await runPythonJson('main', join(import.meta.dirname, 'safe_open_check.py'), [
          join(mnt, 'models', 'llama', shard),
          join(origin, 'models', 'llama', shard),
        ]);
        expect(r).toMatchObject({ tensors: 3, equal: 3 });
      }
    },
  );

  it('after a new upload and invalidate --prefix, new loads see the new version and open handles keep theirs', async () => {
    const model = join(mnt, 'models', 'qwen');
    const oldSnap = realpathSync(model); // what a loader resolves once
    const shard = 'model-00001-of-00001.safetensors';
    const oldShard = readFileSync(join(origin, 'models', 'qwen', shard));
    const oldConfig = readFileSync(join(origin, 'models', 'qwen', 'config.json'));
    // Handle A has read its file once (its pages are cached); handle B has read nothing yet.
    const a = await open(join(oldSnap, shard));
    expect((await a.readFile()).equals(oldShard)).toBe(true);
    const b = await open(join(oldSnap, 'config.json'));

    // A new version of every file, each written to a temp name and renamed (as uploads land).
    const newShard = safetensors([{ name: 'layers.0.attn.weight', shape: [256, 1024] }]);
    writeFileSync(join(origin, 'models', 'qwen', `${shard}.tmp`), newShard);
    renameSync(join(origin, 'models', 'qwen', `${shard}.tmp`), join(origin, 'models', 'qwen', shard));
    writeFileSync(join(origin, 'models', 'qwen', 'config.json.tmp'), '{"model_type":"qwen2"}');
    renameSync(
      join(origin, 'models', 'qwen', 'config.json.tmp'),
      join(origin, 'models', 'qwen', 'config.json'),
    );
    // listInterval is 60 s: without the invalidation the old snapshot would still be current.
    expect(realpathSync(model)).toBe(oldSnap);
    const inv = await runCli(['invalidate', 'models/qwen/', '--prefix', '--url', node.url]);
    expect(inv.code, inv.stderr).toBe(0);

    const newSnap = realpathSync(model);
    expect(newSnap).not.toBe(oldSnap);
    expect(readFileSync(join(model, shard)).equals(newShard)).toBe(true);
    expect(readFileSync(join(model, 'config.json'), 'utf8')).toBe('{"model_type":"qwen2"}');
    // Both snapshots are listed while in use.
    expect((await readdir(join(mnt, 'models', '.snapshots', 'qwen'))).sort()).toEqual(
      [oldSnap, newSnap].map((p) => p.split('/').at(-1)!).sort(),
    );

    // A keeps the old version, from offset 0 and from the middle.
    const whole = Buffer.alloc(oldShard.length);
    await a.read(whole, 0, whole.length, 0);
    expect(whole.equals(oldShard)).toBe(true);
    const mid = Buffer.alloc(4096);
    await a.read(mid, 0, mid.length, 1_500_000);
    expect(mid.equals(oldShard.subarray(1_500_000, 1_500_000 + 4096))).toBe(true);
    // B's version is gone from the origin and was never cached: EIO, never the new bytes.
    await expect(b.read(Buffer.alloc(64), 0, 64, 0)).rejects.toThrow(/EIO/);
    expect(oldConfig.length).toBeGreaterThan(0);
    await a.close();
    await b.close();
    expect(
      node.logs.some((l) => l.includes('mount read failed') && l.includes('models/qwen/config.json')),
    ).toBe(true);
  });

  it('SIGKILL leaves a stale mount that the next start replaces; SIGTERM unmounts', async () => {
    await node.kill();
    expect(() => readdirSync(mnt)).toThrow(/ENOTCONN/);
    node = await startNodeProcess({ dir, config });
    expect(node.logs.some((l) => l.includes('replaced a stale mount'))).toBe(true);
    const shard = 'model-00002-of-00002.safetensors';
    expect(
      readFileSync(join(mnt, 'models', 'llama', shard)).equals(
        readFileSync(join(origin, 'models', 'llama', shard)),
      ),
    ).toBe(true);
    expect(await node.stop()).toBe(0);
    expect(mounted(mnt)).toBe(false);
  });
});
