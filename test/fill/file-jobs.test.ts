/**
 * The fill path's native file jobs (src/fill/file-jobs.ts, addon/src/fill/):
 * the bytes they move, the bound on jobs waiting, and what a failed write
 * leaves behind. Real files in a temp dir, real threads.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { FileJobs } from '../../src/fill/file-jobs.js';
import { createNativeStore } from '../../src/store/native.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Chunk memory from the native store: page-aligned, as a fill reads into. */
const store = createNativeStore({ maxBytes: 64 * MiB });
function aligned(length: number): Buffer {
  const b = store.allocate(length);
  if (!b) throw new Error('store memory exhausted in the test');
  return b;
}

describe('FileJobs', () => {
  let dir: string;
  let jobs: FileJobs;
  // Not a multiple of 4 KiB: the last chunk has an unaligned tail.
  const content = randomBytes(9 * MiB + 1234);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wc-file-jobs-'));
    await mkdir(join(dir, 'root', 'c'), { recursive: true });
    await writeFile(join(dir, 'root', 'c', 'f.bin'), content);
    await writeFile(join(dir, 'outside.bin'), content.subarray(0, 64));
    await symlink(join(dir, 'outside.bin'), join(dir, 'root', 'c', 'out.bin'));
    jobs = new FileJobs('test jobs', { threads: 2, maxQueued: 64 });
  });
  afterAll(async () => {
    jobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the same bytes direct or buffered, aligned or not, with the file stamped before and after', async () => {
    const root = join(dir, 'root');
    const path = join(root, 'c', 'f.bin');
    const cases: Array<[number, number]> = [
      [0, 4 * MiB],
      [4 * MiB, 4 * MiB],
      [8 * MiB, content.length - 8 * MiB], // the tail: 1 MiB + 1234 bytes
      [4096 + 17, 100_000], // unaligned offset
      [0, 100], // shorter than one block
    ];
    const before = jobs.stats().directBytes;
    for (const direct of [true, false]) {
      for (const [offset, length] of cases) {
        for (const dest of [aligned(length), Buffer.allocUnsafe(length + 1).subarray(1)]) {
          const r = await jobs.readVersioned(root, path, offset, length, dest, direct);
          expect(r.stage).toBe('done');
          if (r.stage !== 'done') continue;
          expect(r.bytes).toBe(length);
          expect(dest.equals(content.subarray(offset, offset + length))).toBe(true);
          expect(r.before).toEqual(r.after);
          expect(r.before.size).toBe(BigInt(content.length));
        }
      }
    }
    const s = jobs.stats();
    // Only 4 KiB-aligned parts of aligned reads into aligned memory go direct: the
    // three chunk-aligned cases (tail buffered), where the filesystem allows O_DIRECT.
    expect(s.directBytes - before).toBeLessThanOrEqual(9 * MiB);
    expect(s.pending).toBe(0);
  });

  it('refuses a file that links outside the root, and names the step that failed', async () => {
    const root = join(dir, 'root');
    const out = await jobs.readVersioned(root, join(root, 'c', 'out.bin'), 0, 64, Buffer.alloc(64));
    expect(out.stage).toBe('outside');
    const gone = await jobs.readVersioned(root, join(root, 'c', 'nope.bin'), 0, 64, Buffer.alloc(64));
    expect(gone).toEqual({ stage: 'realpath', code: 'ENOENT' });
    const short = await jobs.readVersioned(
      root,
      join(root, 'c', 'f.bin'),
      content.length - 10,
      64,
      Buffer.alloc(64),
    );
    expect(short.stage === 'done' && short.bytes).toBe(10); // the caller sees the file ended early
  });

  it('writes a chunk file whole, direct or not, and leaves nothing behind when a write fails', async () => {
    const header = Buffer.alloc(8 * KiB, 7);
    for (const [direct, length] of [
      [true, 4 * MiB],
      [true, 4 * MiB - 100], // unaligned tail
      [false, 3 * MiB + 5],
    ] as const) {
      const data = aligned(length);
      content.copy(data, 0, 0, length);
      const path = join(dir, `w-${direct}-${length}.chunk`);
      await jobs.writeAtomic(path, `${path}.tmp`, header, data, false, direct);
      const got = await readFile(path);
      expect(got.length).toBe(header.length + length);
      expect(got.subarray(0, header.length).equals(header)).toBe(true);
      expect(got.subarray(header.length).equals(content.subarray(0, length))).toBe(true);
      expect(existsSync(`${path}.tmp`)).toBe(false);
    }
    // A directory that does not exist: open fails, the error names the errno and the step.
    const missing = join(dir, 'no-such-dir', 'x.chunk');
    const err = await jobs
      .writeAtomic(missing, `${missing}.tmp`, header, aligned(4 * KiB), false, true)
      .catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(String(err)).toMatch(/open .*x\.chunk\.tmp: ENOENT/);
    // The tmp name taken already (O_EXCL): refused, and the other file is not touched.
    const taken = join(dir, 'taken.chunk');
    await writeFile(`${taken}.tmp`, 'someone else');
    const excl = await jobs
      .writeAtomic(taken, `${taken}.tmp`, header, aligned(4 * KiB), false, false)
      .catch((e: unknown) => e);
    expect((excl as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(existsSync(taken)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual(['taken.chunk.tmp']);
  });

  it('refuses jobs past its queue bound at once (OVERLOADED), and runs the ones it took', async () => {
    const small = new FileJobs('bounded writes', { threads: 1, maxQueued: 2 });
    try {
      const header = Buffer.alloc(4 * KiB);
      const data = aligned(4 * MiB);
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => {
          const path = join(dir, `bound-${i}.chunk`);
          return small.writeAtomic(path, `${path}.tmp`, header, data, false, false);
        }),
      );
      const refused = results.filter((r) => r.status === 'rejected');
      const done = results.filter((r) => r.status === 'fulfilled');
      // Two waiting (and at most one running) is all it holds while the twelve are posted at once.
      expect(refused.length).toBeGreaterThanOrEqual(12 - 3 - 2); // a fast thread may free a place or two
      expect(done.length).toBeGreaterThanOrEqual(2);
      for (const r of refused) {
        const e = (r as PromiseRejectedResult).reason;
        expect(CacheError.is(e, 'OVERLOADED')).toBe(true);
        expect(String(e.message)).toMatch(/bounded writes: 2 jobs already waiting/);
      }
      for (let i = 0; i < 12; i++) {
        const path = join(dir, `bound-${i}.chunk`);
        expect(existsSync(path)).toBe(results[i]!.status === 'fulfilled');
      }
      expect(small.stats()).toMatchObject({ threads: 1, maxQueued: 2, queued: 0, running: 0, pending: 0 });
    } finally {
      small.close();
    }
  });

  it('refuses bad options and arguments with a message naming them', async () => {
    expect(() => new FileJobs('x', { threads: 0, maxQueued: 1 })).toThrow(
      /threads must be an integer 1\.\.256/,
    );
    expect(() => new FileJobs('x', { threads: 1, maxQueued: 0 })).toThrow(/maxQueued must be an integer/);
    await expect(jobs.readVersioned('relative', '/x', 0, 1, Buffer.alloc(1))).rejects.toThrow(
      /root must be absolute/,
    );
    await expect(jobs.readVersioned('/r', '/r/x', 0, 10, Buffer.alloc(1))).rejects.toThrow(
      /dest is shorter than length/,
    );
  });
});
