import { mkdir, mkdtemp, open, rename, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { bytesOf, CONTAINER, collect, expectCode, originContract } from './contract.js';

/** Writes like an upload tool: to a temp name, then renamed, so a replacement is a new inode. */
async function putFile(root: string, container: string, key: string, bytes: Buffer): Promise<void> {
  const path = join(root, container, ...key.split('/'));
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

originContract('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'wc-fs-origin-'));
  return {
    origin: new FsOrigin({ root }),
    put: (container, key, bytes) => putFile(root, container, key, bytes),
    remove: (container, key) => unlink(join(root, container, ...key.split('/'))),
    caps: { list: true },
    teardown: () => rm(root, { recursive: true, force: true }),
  };
});

describe('fs origin: symlinks and the root', () => {
  let base: string;
  let root: string;
  let origin: FsOrigin;
  const secret = bytesOf(64, 99);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'wc-fs-escape-'));
    root = join(base, 'root');
    await mkdir(join(root, CONTAINER), { recursive: true });
    await writeFile(join(base, 'secret.bin'), secret);
    await mkdir(join(base, 'outside-dir'));
    await writeFile(join(base, 'outside-dir', 'f.bin'), secret);
    await symlink(join(base, 'secret.bin'), join(root, CONTAINER, 'link-out.bin'));
    await symlink('../../secret.bin', join(root, CONTAINER, 'rel-link-out.bin'));
    await symlink(join(base, 'outside-dir'), join(root, CONTAINER, 'dir-out'));
    await putFile(root, CONTAINER, 'inside.bin', bytesOf(32, 1));
    await symlink(join(root, CONTAINER, 'inside.bin'), join(root, CONTAINER, 'link-in.bin'));
    origin = new FsOrigin({ root });
  });
  afterAll(async () => {
    await origin.close();
    await rm(base, { recursive: true, force: true });
  });

  it('never stats or reads through a symlink that leads outside the root', async () => {
    for (const key of ['link-out.bin', 'rel-link-out.bin', 'dir-out/f.bin']) {
      const err = await origin.stat({ container: CONTAINER, key }).catch((e: unknown) => e);
      expect(CacheError.is(err, 'BAD_KEY') || CacheError.is(err, 'NOT_FOUND'), String(err)).toBe(true);
      const read = origin.read({ container: CONTAINER, key }, { etag: 'x', size: 64 }, 0, 64);
      await expect(read).rejects.toBeInstanceOf(CacheError);
    }
  });

  it('a symlink inside the root is followed', async () => {
    const v = await origin.stat({ container: CONTAINER, key: 'link-in.bin' });
    expect((await origin.read(v, v, 0, 32)).equals(bytesOf(32, 1))).toBe(true);
  });

  it('list skips links leading out of the root', async () => {
    const keys = (await collect(origin.list(CONTAINER, ''))).map((o) => o.key);
    expect(keys).toContain('inside.bin');
    expect(keys).not.toContain('link-out.bin');
    expect(keys).not.toContain('rel-link-out.bin');
    expect(keys.some((k) => k.startsWith('dir-out'))).toBe(false);
  });

  it('a missing root is ORIGIN_UNAVAILABLE, not NOT_FOUND', async () => {
    const gone = new FsOrigin({ root: join(base, 'no-such-root') });
    await expectCode(gone.stat({ container: CONTAINER, key: 'x' }), 'ORIGIN_UNAVAILABLE');
  });
});

/**
 * An in-place rewrite that restores the mtime afterwards (`rsync -t`, `cp -p`,
 * tar, Python's `os.utime`) keeps inode, size and mtime: only ctime tells.
 */
describe('fs origin: in-place rewrites with the mtime restored', () => {
  let root: string;
  let origin: FsOrigin;
  const MiB = 1024 * 1024;
  const before = bytesOf(3 * MiB, 11);
  const after = bytesOf(3 * MiB, 12);
  // Whole seconds, so utimes (which takes seconds as a double) restores the mtime to the ns.
  const pinned = 1_700_000_000;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wc-fs-rewrite-'));
    origin = new FsOrigin({ root });
  });
  afterAll(async () => {
    await origin.close();
    await rm(root, { recursive: true, force: true });
  });

  async function rewriteKeepingMtime(path: string, bytes: Buffer): Promise<void> {
    const fh = await open(path, 'r+'); // same inode, same size: only the bytes change
    try {
      await fh.write(bytes, 0, bytes.length, 0);
    } finally {
      await fh.close();
    }
    await utimes(path, pinned, pinned);
  }

  it('is a new version, and a read of the old version across it fails instead of mixing bytes', async () => {
    const key = 'rewritten-in-place.bin';
    const path = join(root, CONTAINER, key);
    await putFile(root, CONTAINER, key, before);
    await utimes(path, pinned, pinned);
    const v = await origin.stat({ container: CONTAINER, key });
    // The first chunk of a read, then the rewrite, then the rest (the read path reads chunk by chunk).
    expect((await origin.read(v, v, 0, MiB)).equals(before.subarray(0, MiB))).toBe(true);
    // Kernels without fine-grained ctime stamp writes with a clock tick (1-10 ms): let one pass.
    await new Promise((r) => setTimeout(r, 20));
    await rewriteKeepingMtime(path, after);
    const st = await stat(path, { bigint: true });
    expect(st.mtimeNs).toBe(BigInt(pinned) * 1_000_000_000n); // the rewrite is invisible to mtime

    await expectCode(origin.read(v, v, MiB, MiB), 'VERSION_CHANGED');
    const now = await origin.stat({ container: CONTAINER, key });
    expect(now.etag).not.toBe(v.etag);
    expect(now.size).toBe(v.size);
    expect(await origin.revalidate(v)).not.toBe(v);
    expect((await origin.read(now, now, 0, 3 * MiB)).equals(after)).toBe(true);
  });
});

/**
 * A chunk read is one native job (open, fstat, pread, fstat, close): a file
 * rewritten in place while reads run must fail them with VERSION_CHANGED,
 * never hand back a mix of old and new bytes — direct or buffered.
 */
describe('fs origin: a file rewritten while chunks are read', () => {
  let root: string;
  const MiB = 1024 * 1024;
  const SIZE = 32 * MiB;
  const before = bytesOf(SIZE, 21);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wc-fs-race-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const directIo of [true, false]) {
    it(`returns the old bytes or VERSION_CHANGED, never a mix (directIo ${directIo})`, async () => {
      const origin = new FsOrigin({ root, directIo });
      const key = `racing-${directIo}.bin`;
      const path = join(root, CONTAINER, key);
      await putFile(root, CONTAINER, key, before);
      const v = await origin.stat({ container: CONTAINER, key });
      await new Promise((r) => setTimeout(r, 20)); // let a coarse ctime clock tick past the version's
      let stop = false;
      let rewrites = 0;
      // Rewrites the file in place, 1 MiB at a time, with other bytes, for as long as the reads run.
      const writer = (async () => {
        const fh = await open(path, 'r+');
        try {
          const other = bytesOf(MiB, 99);
          while (!stop) {
            await fh.write(other, 0, MiB, (rewrites++ % (SIZE / MiB)) * MiB);
            await new Promise((r) => setImmediate(r));
          }
        } finally {
          await fh.close();
        }
      })();
      let ok = 0;
      let changed = 0;
      try {
        for (let round = 0; round < 4; round++) {
          await Promise.all(
            Array.from({ length: SIZE / (4 * MiB) }, async (_, i) => {
              try {
                const got = await origin.read(v, v, i * 4 * MiB, 4 * MiB);
                expect(got.equals(before.subarray(i * 4 * MiB, (i + 1) * 4 * MiB))).toBe(true);
                ok++;
              } catch (err) {
                expect(CacheError.is(err, 'VERSION_CHANGED'), String(err)).toBe(true);
                changed++;
              }
            }),
          );
        }
      } finally {
        stop = true;
        await writer;
        await origin.close();
      }
      expect(rewrites).toBeGreaterThan(0);
      expect(changed).toBeGreaterThan(0); // the rewrite was seen
      expect(ok + changed).toBe(4 * (SIZE / (4 * MiB)));
    });
  }
});
