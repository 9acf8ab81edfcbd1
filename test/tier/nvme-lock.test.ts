/**
 * One process per chunk directory (an exclusive flock held while the tier is
 * open), and the io_uring fallback when io_uring_setup fails. Real processes:
 * child node processes, one with io_uring_setup failing through an
 * LD_PRELOAD shim (as a seccomp profile or kernel.io_uring_disabled would).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { NvmeTier } from '../../src/tier/nvme.js';
import { chunkOf, keyOf } from './contract.js';
import { setup, tempDir } from './nvme-harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/nvme-open.ts', import.meta.url));

interface ChildOut {
  ok?: boolean;
  error?: string;
  code?: string;
  pid?: number;
  logs?: { level: string; obj: Record<string, unknown>; msg: string }[];
}

/** Starts the child; resolves with its first line and a function that ends it (closing stdin). */
function child(dir: string, env: NodeJS.ProcessEnv = {}) {
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  const first = new Promise<ChildOut>((resolve, reject) => {
    let buf = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (s: string) => {
      buf += s;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as ChildOut);
    });
    p.once('exit', (code) => reject(new Error(`child exited ${code} before printing`)));
  });
  return { proc: p, first, exited, end: () => p.stdin.end() };
}

describe('NvmeTier: one process per directory', () => {
  it('a second process on the same directory is refused at start, naming the directory and the holder', async () => {
    const dir = await tempDir();
    const holder = child(dir);
    expect((await holder.first).ok).toBe(true);
    const second = child(dir);
    const out = await second.first.catch(() => ({}) as ChildOut);
    expect(await second.exited).toBe(3);
    expect(out.code).toBe('CONFIG_INVALID');
    expect(out.error).toContain(dir);
    expect(out.error).toContain(`pid ${holder.proc.pid}`);
    expect(out.error).toMatch(/in use by another weightcache process/);
    holder.end();
    expect(await holder.exited).toBe(0);
    // Released at close: the next process gets it.
    const third = child(dir);
    expect((await third.first).ok).toBe(true);
    third.end();
    await third.exited;
  });

  it('kill -9 of the holder releases the directory (the kernel drops the lock)', async () => {
    const dir = await tempDir();
    const holder = child(dir);
    await holder.first;
    holder.proc.kill('SIGKILL');
    await holder.exited;
    const next = child(dir);
    expect((await next.first).ok).toBe(true);
    next.end();
    await next.exited;
  });

  it('a second tier in the same process is refused too, and the first keeps working', async () => {
    const s = await setup();
    await s.tier.put(keyOf('a'), chunkOf(Buffer.alloc(1000, 1)));
    const err = await NvmeTier.open({ dir: s.dir, maxBytes: 1 << 20 }).catch((e: unknown) => e);
    expect(CacheError.is(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    expect((await s.tier.get(keyOf('a')))?.data.length).toBe(1000);
    expect((await readFile(join(s.dir, 'weightcache.lock'), 'utf8')).trim()).toBe(String(process.pid));
    await s.tier.close();
    const again = await s.reopen();
    expect(again.has(keyOf('a'))).toBe(true);
  });
});

describe('NvmeTier: io_uring unavailable', () => {
  const shimSrc = fileURLToPath(new URL('./fixtures/no-io-uring.c', import.meta.url));

  async function buildShim(): Promise<string> {
    const out = join(await tempDir(), 'no-io-uring.so');
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', out, shimSrc, '-ldl']);
    return out;
  }

  for (const [errno, name] of [
    [38, 'ENOSYS'],
    [1, 'EPERM'],
  ] as const) {
    it(`io_uring_setup failing with ${name}: reads go through the thread pool, logged once with the reason`, async () => {
      const shim = await buildShim();
      expect(existsSync(shim)).toBe(true);
      const c = child(await tempDir(), { LD_PRELOAD: shim, WC_FAKE_URING_ERRNO: String(errno) });
      const out = await c.first;
      c.end();
      await c.exited;
      expect(out.ok).toBe(true); // the chunk was written, read whole and by range
      const fallback = out.logs?.filter((l) => /io_uring unavailable/.test(l.msg)) ?? [];
      expect(fallback).toHaveLength(1);
      expect(fallback[0]!.level).toBe('warn');
      expect(String(fallback[0]!.obj.reason)).toMatch(/io_uring_setup failed/);
      expect(out.logs?.some((l) => /reads through io_uring/.test(l.msg))).toBe(false);
    });
  }
});
