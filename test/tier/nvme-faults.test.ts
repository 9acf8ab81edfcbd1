/**
 * The NVMe tier under device faults (full, read-only, unwritable) and under
 * kill -9 of a writing process. Real devices and processes: a tmpfs, a child
 * node process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chunkOf, keyOf } from './contract.js';
import { chunkBytes, writerKey } from './fixtures/nvme-writer.js';
import { allFiles, gauge, KiB, MOUNT_OK, setup, tempDir, tmpfs, total } from './nvme-harness.js';

describe('NvmeTier: a failing device degrades the tier, never the caller', () => {
  it('an unwritable dir (parent is a file, ENOTDIR): open and puts do not throw; recovers after backoff', async () => {
    const earlier = await setup();
    const kept = chunkOf(randomBytes(2000));
    await earlier.tier.put(keyOf('kept'), kept);
    await earlier.tier.close();
    const base = await tempDir();
    await writeFile(join(base, 'file'), 'x');
    const s = await setup({ dir: join(base, 'file', 'chunks'), retryAfterMs: 30_000 });
    expect(s.tier.degraded).toBe(true);
    for (let i = 0; i < 5; i++) await s.tier.put(keyOf('u', i), chunkOf(randomBytes(1000)));
    s.clock.t += 31_000;
    await s.tier.put(keyOf('u', 9), chunkOf(randomBytes(1000))); // the retry fails too
    expect(s.tier.stats().entries).toBe(0);
    expect(await gauge(s.metrics.tierDegraded)).toBe(1);
    expect(s.log.count(/degraded/)).toBe(1);

    // The device comes back, holding chunks from before (a late mount).
    await rm(join(base, 'file'));
    await mkdir(join(base, 'file'));
    await rename(earlier.dir, join(base, 'file', 'chunks'));
    await s.tier.put(keyOf('u', 10), chunkOf(randomBytes(1000))); // still inside the backoff: not tried
    expect(s.tier.has(keyOf('u', 10))).toBe(false);
    s.clock.t += 31_000;
    await s.tier.put(keyOf('u', 11), chunkOf(randomBytes(1000)));
    expect(s.tier.has(keyOf('u', 11))).toBe(true);
    expect((await s.tier.get(keyOf('kept')))?.data.equals(kept.data)).toBe(true); // indexed by the late scan
    expect(s.tier.stats()).toMatchObject({ entries: 2, usedBytes: 3000 });
    expect(await gauge(s.metrics.tierDegraded)).toBe(0);
    expect(s.tier.degraded).toBe(false);
  });

  it.skipIf(!MOUNT_OK)(
    'a device smaller than maxBytes (2 MiB tmpfs): the budget is lowered at open',
    async () => {
      const dir = await tmpfs('2m');
      const s = await setup({ dir, maxBytes: 64 * 1024 * KiB });
      const cap = s.tier.stats().capacityBytes;
      expect(cap).toBeLessThan(2 * 1024 * KiB);
      expect(await gauge(s.metrics.tierCapacityBytes)).toBe(cap);
      expect(s.log.count(/budget lowered/)).toBe(1);
      for (let i = 0; i < 20; i++) await s.tier.put(keyOf('s', i), chunkOf(randomBytes(256 * KiB)));
      expect(s.tier.degraded).toBe(false); // turned over its LRU inside the device instead
      expect(s.tier.has(keyOf('s', 19))).toBe(true);
      expect(s.tier.stats().usedBytes).toBeLessThanOrEqual(cap);
    },
  );

  it.skipIf(!MOUNT_OK)(
    'a full device (another writer fills the tmpfs, ENOSPC): degrades once, cleans temp files, serves gets, recovers',
    async () => {
      const dir = await tmpfs('2m');
      const s = await setup({ dir, maxBytes: 64 * 1024 * KiB, retryAfterMs: 1000 });
      const written: [string, ReturnType<typeof chunkOf>][] = [];
      for (let i = 0; i < 3; i++) {
        const c = chunkOf(randomBytes(256 * KiB));
        await s.tier.put(keyOf('f', i), c);
        written.push([keyOf('f', i), c]);
      }
      const { bavail, bsize } = await statfs(dir);
      await writeFile(join(dir, 'other-tenant'), Buffer.alloc(bavail * bsize)); // the device is now full

      for (let i = 3; i < 8; i++) await s.tier.put(keyOf('f', i), chunkOf(randomBytes(256 * KiB))); // never throws
      expect(s.tier.degraded).toBe(true);
      // The budget shrank to what the device holds (5% under): the oldest chunk made room.
      expect(s.tier.stats().capacityBytes).toBeLessThan(3 * 256 * KiB);
      expect(s.tier.stats().entries).toBe(2);
      expect(s.tier.has(keyOf('f', 0))).toBe(false);
      expect(await gauge(s.metrics.tierDegraded)).toBe(1);
      expect(s.log.count(/degraded/)).toBe(1);
      expect(s.log.warns.find((w) => /degraded/.test(w.msg))?.obj).toMatchObject({ code: 'ENOSPC' });
      expect(await total(s.metrics, s.metrics.tierErrors, { op: 'write' })).toBe(1); // later puts wait out the backoff
      expect((await allFiles(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      for (const [k, c] of written.slice(1)) expect((await s.tier.get(k))?.data.equals(c.data)).toBe(true);

      // After the backoff the tier writes again, inside the space it really has: the oldest chunks make room.
      s.clock.t += 1001;
      const c = chunkOf(randomBytes(256 * KiB));
      await s.tier.put(keyOf('after'), c);
      expect((await s.tier.get(keyOf('after')))?.data.equals(c.data)).toBe(true);
      expect(s.tier.has(keyOf('f', 1))).toBe(false);
      expect(await gauge(s.metrics.tierDegraded)).toBe(0);
      expect(s.log.infos.some((i) => /no longer degraded/.test(i.msg))).toBe(true);
    },
  );

  it.skipIf(!MOUNT_OK)(
    'a read-only device (tmpfs remounted ro, EROFS): gets keep working, writes resume after rw',
    async () => {
      const dir = await tmpfs('4m');
      const s = await setup({ dir, retryAfterMs: 1000 });
      const c = chunkOf(randomBytes(64 * KiB));
      await s.tier.put(keyOf('r'), c);
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      for (let i = 0; i < 3; i++) await s.tier.put(keyOf('ro', i), chunkOf(randomBytes(1000)));
      expect(s.tier.degraded).toBe(true);
      expect(s.log.warns.find((w) => /degraded/.test(w.msg))?.obj).toMatchObject({ code: 'EROFS' });
      expect((await s.tier.get(keyOf('r')))?.data.equals(c.data)).toBe(true);
      execFileSync('mount', ['-o', 'remount,rw', dir]);
      s.clock.t += 1001;
      await s.tier.put(keyOf('rw'), c);
      expect(s.tier.has(keyOf('rw'))).toBe(true);
      expect(s.log.count(/degraded/)).toBe(1);
    },
  );
});

describe('NvmeTier: kill -9 while writing', () => {
  const fixture = fileURLToPath(new URL('./fixtures/nvme-writer.ts', import.meta.url));

  async function runAndKill(dir: string, acksBeforeKill: number): Promise<number[]> {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)), // where `tsx` resolves
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked: number[] = [];
    let buf = '';
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      buf += s;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      // Only acks read before the kill count: they were renamed before it.
      if (acked.length >= acksBeforeKill) return;
      for (const l of lines) acked.push(Number(l.slice(3)));
      if (acked.length >= acksBeforeKill) child.kill('SIGKILL');
    });
    await exited;
    expect(child.signalCode).toBe('SIGKILL');
    return acked;
  }

  it('leaves only whole chunks: every acked chunk is served byte-exact, nothing torn, temp files removed', async () => {
    const dir = await tempDir();
    for (const acks of [15, 40]) {
      const acked = await runAndKill(dir, acks);
      const s = await setup({ dir, maxBytes: 256 * 1024 * KiB });
      expect((await allFiles(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
      const top = Math.max(...acked) + 64;
      let found = 0;
      for (let i = 0; i <= top; i++) {
        const got = await s.tier.get(writerKey(i));
        if (acked.includes(i)) expect(got).toBeDefined();
        if (!got) continue;
        found++;
        expect(got.data.equals(chunkBytes(i))).toBe(true);
      }
      expect(s.tier.stats().entries).toBe(found);
      expect(await total(s.metrics, s.metrics.checksumFailures)).toBe(0);
      await s.tier.close();
    }
  });
});
