/**
 * A full disk, for real: a 4 MiB tmpfs as the target filesystem (needs root
 * to mount; skipped otherwise). A model larger than the free space is refused
 * before any download; a disk that fills up mid-pull fails with ENOSPC named,
 * DIR absent, and the verified chunks kept for a re-run once space is freed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { runCli, spawnCli, whileRunning } from './cli-process.js';

const mnt = mkdtempSync(join(tmpdir(), 'wc-tiny-'));
const mounted = tryMount();
const shard = randomBytes(3 * 1024 * 1024);
const big = randomBytes(5 * 1024 * 1024);

function tryMount(): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let node: NodeProcess;
let slow: FaultProxy;

beforeAll(async () => {
  if (!mounted) return;
  node = await startNodeProcess({ config: { cache: { chunkSize: '256KiB' } } });
  for (const [key, bytes] of [
    ['fits/shard.bin', shard],
    ['huge/shard.bin', big],
  ] as const) {
    const p = join(node.dir, 'origin', 'disk', key);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, bytes);
  }
  slow = await startFaultProxy({ target: node.url });
});
afterAll(async () => {
  await slow?.stop();
  await node?.kill();
  if (node) rmSync(node.dir, { recursive: true, force: true });
  if (mounted) execFileSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

describe.skipIf(!mounted)('pull onto a full disk', () => {
  it('refuses a model larger than the free space before downloading', async () => {
    const r = await runCli(['pull', 'disk/huge', '--to', join(mnt, 'huge'), '--from', node.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not enough disk space: the pull needs 5MiB/);
    expect(existsSync(join(mnt, 'huge'))).toBe(false);
  });

  it('fails with ENOSPC when the disk fills mid-pull, keeps verified chunks, resumes after space is freed', async () => {
    const dir = join(mnt, 'fits');
    slow.setFault({ mode: 'ok', delayMs: 100 });
    const run = spawnCli(['pull', 'disk/fits', '--to', dir, '--from', slow.url, '--concurrency', '1']);
    const state = join(`${dir}.partial`, 'state.json');
    // Some chunk verified: the bitmap's base64 no longer starts with 'AA' (a zero first byte).
    await whileRunning(run, () => existsSync(state) && /"done":"(?!AA)/.test(readFileSync(state, 'utf8')));
    // Something else takes the rest of the disk.
    const filler = join(mnt, 'filler');
    const free = () => Number(statfsSync(mnt).bavail) * Number(statfsSync(mnt).bsize);
    try {
      writeFileSync(filler, Buffer.alloc(free()));
    } catch {
      // ENOSPC here too once full: that is the point
    }
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('the disk is full (ENOSPC)');
    expect(run.stderr()).toContain('free space');
    expect(existsSync(dir)).toBe(false);

    rmSync(filler);
    slow.setFault({ mode: 'ok' });
    const again = await runCli(['pull', 'disk/fits', '--to', dir, '--from', slow.url]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/[1-9]\d* chunks already verified/);
    expect(readFileSync(join(dir, 'shard.bin')).equals(shard)).toBe(true);
  });
});
