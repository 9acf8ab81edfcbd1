/**
 * The one contract every Origin passes (fs, Azure via Azurite, HTTP, later S3).
 * Each origin's test file calls `originContract(label, setup)` with a fixture
 * that can put and remove objects behind the origin's back, the way an upload
 * tool would. Origin-specific faults live in the origin's own test file.
 *
 * `knownFailures` lists titles of contract tests an origin is known to fail
 * today; they run as `it.fails`, so the gap stays visible and the suite turns
 * red once the origin is fixed and the entry has gone stale.
 *
 * Objects go into one container, 'weights' (Azure needs 3-63 lowercase
 * characters); each test uses its own keys, so tests do not depend on order.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheError, type ErrorCode } from '../../src/errors/cache-error.js';
import type { ObjectInfo, ObjectName, Origin } from '../../src/origin/origin.js';

export interface OriginFixture {
  readonly origin: Origin;
  /** Creates or replaces an object (a replacement is a new version). Creates the container if needed. */
  put(container: string, key: string, bytes: Buffer): Promise<void>;
  remove(container: string, key: string): Promise<void>;
  readonly caps: { readonly list: boolean };
  /** Requests the origin has sent so far, where observable: proves BAD_KEY is decided before any I/O. */
  readonly requests?: () => number;
  teardown(): Promise<void>;
}

export const CONTAINER = 'weights';

/** Deterministic pseudo-random bytes, so a failure reproduces. */
export function bytesOf(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<CacheError> {
  const err = await p.then(
    (v) => {
      throw new Error(
        `expected ${code}, got a result: ${Buffer.isBuffer(v) ? `${v.length} bytes` : String(v)}`,
      );
    },
    (e: unknown) => e,
  );
  if (!CacheError.is(err)) throw err;
  expect(err.code, err.message).toBe(code);
  return err;
}

const TRAVERSAL_KEYS = ['../x', 'a/../../b', '/abs', 'a/./b', 'a//b', 'nul\u0000byte', 'back\\slash', '..'];
const BAD_CONTAINERS = ['..', '.', 'a/b', '', '-dash', 'nul\u0000'];

export function originContract(
  label: string,
  setup: () => Promise<OriginFixture>,
  knownFailures: readonly string[] = [],
): void {
  // Known failures must be given up front: vitest decides it vs it.fails when tests are collected.
  const test = (title: string, fn: () => Promise<void> | void): void => {
    (knownFailures.includes(title) ? it.fails : it)(title, fn);
  };
  describe(`Origin contract: ${label}`, () => {
    let fx: OriginFixture;
    let origin: Origin;
    const name = (key: string): ObjectName => ({ container: CONTAINER, key });
    const BIG = 3 * 1024 * 1024 + 4321;
    const big = bytesOf(BIG, 7);

    beforeAll(async () => {
      fx = await setup();
      origin = fx.origin;
      await fx.put(CONTAINER, 'big/shard.bin', big);
    });
    afterAll(async () => {
      await fx?.origin.close();
      await fx?.teardown();
    });

    test('has a kind and an id that holds no secrets', () => {
      expect(origin.kind).toMatch(/^[a-z0-9]+$/);
      expect(origin.id.startsWith(`${origin.kind}:`)).toBe(true);
      expect(origin.id).not.toMatch(/AccountKey|sig=|password/i);
    });

    test('stat returns size, an unquoted etag and lastModified', async () => {
      await fx.put(CONTAINER, 'stat/a.bin', bytesOf(1000, 1));
      const info = await origin.stat(name('stat/a.bin'));
      expect(info).toMatchObject({ container: CONTAINER, key: 'stat/a.bin', size: 1000 });
      expect(info.etag.length).toBeGreaterThan(0);
      expect(info.etag).not.toMatch(/^W\/|^"|"$/);
      expect(info.lastModified).toBeInstanceOf(Date);
      expect(Math.abs(info.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    });

    test('NOT_FOUND for a missing key and a missing container', async () => {
      await expectCode(origin.stat(name('no/such/key')), 'NOT_FOUND');
      await expectCode(origin.stat({ container: 'nosuchcontainer', key: 'x' }), 'NOT_FOUND');
    });

    test('reads exact ranges: first byte, last byte, middle, whole', async () => {
      const bytes = bytesOf(70_001, 2);
      await fx.put(CONTAINER, 'ranges/r.bin', bytes);
      const v = await origin.stat(name('ranges/r.bin'));
      expect(await origin.read(v, v, 0, 1)).toEqual(bytes.subarray(0, 1));
      expect(await origin.read(v, v, bytes.length - 1, 1)).toEqual(bytes.subarray(-1));
      expect(await origin.read(v, v, 12_345, 999)).toEqual(bytes.subarray(12_345, 13_344));
      expect((await origin.read(v, v, 0, bytes.length)).equals(bytes)).toBe(true);
      expect(await origin.read(v, v, 500, 0)).toHaveLength(0);
    });

    test('a zero-length object stats as size 0 and reads as empty', async () => {
      await fx.put(CONTAINER, 'empty/zero.bin', Buffer.alloc(0));
      const v = await origin.stat(name('empty/zero.bin'));
      expect(v.size).toBe(0);
      expect(await origin.read(v, v, 0, 0)).toHaveLength(0);
    });

    test('a read past the end fails and returns no bytes', async () => {
      await fx.put(CONTAINER, 'ranges/short.bin', bytesOf(100, 3));
      const v = await origin.stat(name('ranges/short.bin'));
      await expect(origin.read(v, v, 90, 20)).rejects.toBeInstanceOf(CacheError);
      await expect(origin.read(v, v, 100, 1)).rejects.toBeInstanceOf(CacheError);
    });

    test('random ranges of a multi-MiB object are byte-exact', async () => {
      const v = await origin.stat(name('big/shard.bin'));
      expect(v.size).toBe(BIG);
      const range = fc
        .oneof(
          fc.tuple(fc.nat(BIG - 1), fc.integer({ min: 1, max: 64 * 1024 })),
          fc.tuple(fc.nat(BIG - 1), fc.integer({ min: 1, max: BIG })),
        )
        .map(([offset, len]) => [offset, Math.min(len, BIG - offset)] as const);
      await fc.assert(
        fc.asyncProperty(range, async ([offset, length]) => {
          const got = await origin.read(v, v, offset, length);
          expect(got.length).toBe(length);
          expect(got.equals(big.subarray(offset, offset + length))).toBe(true);
        }),
        { numRuns: 200, seed: 42 },
      );
    });

    test('concurrent reads of one version are each byte-exact', async () => {
      const v = await origin.stat(name('big/shard.bin'));
      const chunk = 256 * 1024;
      const reads = Array.from({ length: 12 }, (_, i) => origin.read(v, v, i * chunk, chunk));
      const got = await Promise.all(reads);
      for (const [i, b] of got.entries())
        expect(b.equals(big.subarray(i * chunk, (i + 1) * chunk))).toBe(true);
    });

    test('revalidate: unchanged returns the same object, changed returns the new version', async () => {
      await fx.put(CONTAINER, 'reval/m.bin', bytesOf(4096, 4));
      const v1 = await origin.stat(name('reval/m.bin'));
      expect(await origin.revalidate(v1)).toBe(v1);
      await fx.put(CONTAINER, 'reval/m.bin', bytesOf(5000, 5));
      const v2 = await origin.revalidate(v1);
      expect(v2).not.toBe(v1);
      expect(v2.etag).not.toBe(v1.etag);
      expect(v2.size).toBe(5000);
      await fx.remove(CONTAINER, 'reval/m.bin');
      await expectCode(origin.revalidate(v2), 'NOT_FOUND');
    });

    test('reading an old version after a same-size replacement is VERSION_CHANGED, never new bytes', async () => {
      const key = 'replace/model.safetensors';
      await fx.put(CONTAINER, key, bytesOf(64 * 1024, 10));
      const old = await origin.stat(name(key));
      await fx.put(CONTAINER, key, bytesOf(64 * 1024, 11));
      await expectCode(origin.read(old, old, 0, 1024), 'VERSION_CHANGED');
      await expectCode(origin.read(old, old, 0, 0), 'VERSION_CHANGED');
      const now = await origin.stat(name(key));
      expect((await origin.read(now, now, 0, 1024)).equals(bytesOf(64 * 1024, 11).subarray(0, 1024))).toBe(
        true,
      );
    });

    test('reading a version whose object was deleted is VERSION_CHANGED', async () => {
      const key = 'replace/deleted.bin';
      await fx.put(CONTAINER, key, bytesOf(4096, 12));
      const v = await origin.stat(name(key));
      await fx.remove(CONTAINER, key);
      await expectCode(origin.read(v, v, 0, 1024), 'VERSION_CHANGED');
      await expectCode(origin.stat(name(key)), 'NOT_FOUND');
    });

    test('rejects traversal and malformed names with BAD_KEY before any I/O', async () => {
      const before = fx.requests?.();
      const v = { etag: 'x', size: 10 };
      for (const key of TRAVERSAL_KEYS) {
        await expectCode(origin.stat(name(key)), 'BAD_KEY');
        await expectCode(origin.read(name(key), v, 0, 1), 'BAD_KEY');
        await expectCode(origin.revalidate({ ...name(key), ...v, lastModified: new Date() }), 'BAD_KEY');
      }
      for (const container of BAD_CONTAINERS) {
        await expectCode(origin.stat({ container, key: 'x' }), 'BAD_KEY');
        await expectCode(origin.read({ container, key: 'x' }, v, 0, 1), 'BAD_KEY');
      }
      if (fx.caps.list) {
        await expectCode(collect(origin.list(CONTAINER, '../')), 'BAD_KEY');
        await expectCode(collect(origin.list('..', '')), 'BAD_KEY');
      }
      if (before !== undefined) expect(fx.requests?.()).toBe(before);
    });

    test("'%2e%2e' is a literal key segment that never escapes its place", async () => {
      await fx.put(CONTAINER, 'lit/%2e%2e/esc.bin', bytesOf(300, 20));
      await fx.put(CONTAINER, 'esc.bin', bytesOf(300, 21));
      const v = await origin.stat(name('lit/%2e%2e/esc.bin'));
      expect((await origin.read(v, v, 0, 300)).equals(bytesOf(300, 20))).toBe(true);
      await expectCode(origin.stat(name('lit/%2e%2e/%2e%2e/esc.bin')), 'NOT_FOUND');
      await expectCode(origin.stat(name('%2e%2e/weights/esc.bin')), 'NOT_FOUND');
    });

    test('keys with spaces, unicode and URL metacharacters round-trip', async () => {
      const keys = ['odd/a b+c.bin', 'odd/ü-模型.safetensors', "odd/q?x=1#frag&y='z'.bin", 'odd/100%.bin'];
      for (const [i, key] of keys.entries()) await fx.put(CONTAINER, key, bytesOf(50 + i, 40 + i));
      for (const [i, key] of keys.entries()) {
        const v = await origin.stat(name(key));
        expect(v.key).toBe(key);
        expect((await origin.read(v, v, 0, v.size)).equals(bytesOf(50 + i, 40 + i))).toBe(true);
      }
      if (fx.caps.list) {
        expect((await collect(origin.list(CONTAINER, 'odd/'))).map((o) => o.key)).toEqual([...keys].sort());
      }
    });

    test('a caller abort ends a read with the AbortError and no bytes', async () => {
      const v = await origin.stat(name('big/shard.bin'));
      await expect(origin.read(v, v, 0, 1024, { signal: AbortSignal.abort() })).rejects.toMatchObject({
        name: 'AbortError',
      });
      const ac = new AbortController();
      const p = origin.read(v, v, 0, BIG, { signal: ac.signal });
      ac.abort();
      await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    });

    test('list: prefix, key order, limit, missing container', async () => {
      if (!fx.caps.list) {
        await expectCode(collect(origin.list(CONTAINER, '')), 'UNSUPPORTED');
        return;
      }
      const keys = ['ls/b/2.bin', 'ls/a.bin', 'ls/b/1.bin', 'ls/c.json', 'lsx/other.bin', 'ls/B-upper.bin'];
      for (const [i, k] of keys.entries()) await fx.put(CONTAINER, k, bytesOf(10 + i, 30 + i));
      const all = await collect(origin.list(CONTAINER, 'ls/'));
      const expected = keys.filter((k) => k.startsWith('ls/')).sort();
      expect(all.map((o) => o.key)).toEqual(expected);
      for (const o of all) {
        expect(o.container).toBe(CONTAINER);
        expect(o.size).toBe(10 + keys.indexOf(o.key));
        expect(o).toEqual(await origin.stat(o));
      }
      expect((await collect(origin.list(CONTAINER, 'ls/', { limit: 2 }))).map((o) => o.key)).toEqual(
        expected.slice(0, 2),
      );
      expect((await collect(origin.list(CONTAINER, 'ls/b/'))).map((o) => o.key)).toEqual([
        'ls/b/1.bin',
        'ls/b/2.bin',
      ]);
      expect(await collect(origin.list(CONTAINER, 'nothing-here/'))).toEqual([]);
      expect(await collect(origin.list('nosuchcontainer', ''))).toEqual([]);
    });
  });
}

export async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}
