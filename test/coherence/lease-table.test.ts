import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import type { ObjectInfo, ObjectName, Origin } from '../../src/origin/origin.js';

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'wc-lease-'));
  const put = (text: string) => {
    writeFileSync(join(root, 'c', 'tmp'), text);
    renameSync(join(root, 'c', 'tmp'), join(root, 'c', 'f')); // atomic replace: a new version
  };
  mkdirSync(join(root, 'c'));
  put('v1');
  let now = 0;
  const metrics = new Metrics();
  const origin = new FsOrigin({ root });
  const t = new LeaseTable({ origin, termMs: 1000, metrics, now: () => now });
  return { t, put, metrics, root, advance: (ms: number) => (now += ms) };
}

const name = { container: 'c', key: 'f' };

describe('LeaseTable', () => {
  it('reuses a binding for its term, then revalidates', async () => {
    const { t, put, metrics, advance } = setup();
    const v1 = await t.resolve(name);
    put('v2!');
    advance(999);
    expect(await t.resolve(name)).toBe(v1); // within the term: no origin request, still v1
    advance(1);
    const v2 = await t.resolve(name);
    expect(v2.etag).not.toBe(v1.etag);
    expect(v2.size).toBe(3);
    advance(1000);
    expect(await t.resolve(name)).toBe(v2); // revalidated, unchanged: same object
    expect(await metrics.total(metrics.leaseResolutions, { result: 'cached' })).toBe(1);
    expect(await metrics.total(metrics.leaseResolutions, { result: 'revalidated_changed' })).toBe(1);
    expect(await metrics.total(metrics.leaseResolutions, { result: 'revalidated_same' })).toBe(1);
  });

  it('coalesces concurrent resolutions and forgets on demand', async () => {
    const { t, metrics } = setup();
    const [v1] = await Promise.all(Array.from({ length: 20 }, () => t.resolve(name)));
    expect(await metrics.total(metrics.originRequests, { op: 'stat' })).toBe(1);
    t.forget(v1!);
    await t.resolve(name);
    expect(await metrics.total(metrics.originRequests, { op: 'stat' })).toBe(2);
  });

  it('forgetting a version it no longer binds keeps the binding of the current one', async () => {
    const { t, put, metrics, advance } = setup();
    const v1 = await t.resolve(name);
    put('v2!');
    advance(1000);
    const v2 = await t.resolve(name);
    expect(v2.etag).not.toBe(v1.etag);
    const asked = await metrics.total(metrics.originRequests);
    // A read of v1 (a peer with an old view) found it gone: v2's readers lose nothing.
    t.forget(v1);
    expect(t.binding(name)?.info).toBe(v2);
    expect(await t.resolve(name)).toBe(v2);
    expect(await metrics.total(metrics.originRequests)).toBe(asked);
    t.forget(v2);
    expect(t.binding(name)).toBeUndefined();
  });

  it('publishes each binding for its term and takes it back before anything replaces it', async () => {
    const { root, put, advance } = setup();
    const events: string[] = [];
    const origin = new FsOrigin({ root });
    let now = 0;
    const t = new LeaseTable({
      origin,
      termMs: 1000,
      now: () => now,
      sink: {
        bind: (info, ms) => events.push(`bind ${info.size} ${ms}`),
        unbind: (n) => events.push(`unbind ${n.key}`),
        unbindPrefix: (p) => events.push(`unbindPrefix '${p}'`),
      },
    });
    advance(0);
    await t.resolve(name);
    now = 400;
    await t.resolve(name); // cached: nothing published
    expect(events).toEqual(['bind 2 1000']);
    put('v2!');
    const stat = origin.stat.bind(origin);
    origin.stat = (n, o) => {
      events.push('origin stat'); // the refresh's: after the published binding is gone
      return stat(n, o);
    };
    now = 500;
    await t.refresh(name);
    expect(events.slice(1)).toEqual(['unbind f', 'origin stat', 'bind 3 1000']);
    t.forget(t.binding(name)!.info);
    t.fence('c/');
    expect(events.slice(4)).toEqual(['unbind f', "unbindPrefix 'c/'"]);
    await expect(t.resolve({ container: 'c', key: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(events.at(-1)).toBe('unbind nope');
  });

  it('NOT_FOUND propagates with its code', async () => {
    const { t } = setup();
    await expect(t.resolve({ container: 'c', key: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('revalidates at once when the caller pins a version other than the bound one', async () => {
    const { t, put, advance } = setup();
    const v1 = await t.resolve(name);
    put('v2 is here');
    advance(10); // well within the term
    expect(await t.resolve(name, undefined, v1.etag)).toBe(v1); // pinned to what we have: no origin request
    const v2 = await t.resolve(name, undefined, 'some-newer-etag');
    expect(v2.etag).not.toBe(v1.etag);
    expect(v2.size).toBe(10);
  });

  it('minRemainingMs revalidates a binding with less term left than asked', async () => {
    const { t, metrics, advance } = setup();
    const v1 = await t.resolve(name);
    advance(600); // 400 ms of the 1000 ms term left
    expect(await t.resolve(name, undefined, undefined, 300)).toBe(v1); // enough left: cached
    expect(await metrics.total(metrics.originRequests)).toBe(1);
    expect(await t.resolve(name, undefined, undefined, 500)).toBe(v1); // not enough: revalidated
    expect(await metrics.total(metrics.originRequests, { op: 'revalidate' })).toBe(1);
    // The revalidation started a new term: 1000 ms from now.
    expect(t.binding(name)?.expiresAt).toBe(1600);
  });

  it('binding() is the binding in force: none before a resolve, none once the term ended', async () => {
    const { t, advance } = setup();
    expect(t.binding(name)).toBeUndefined();
    const v1 = await t.resolve(name);
    expect(t.binding(name)).toEqual({ info: v1, expiresAt: 1000 });
    advance(999);
    expect(t.binding(name)?.info).toBe(v1);
    advance(1);
    expect(t.binding(name)).toBeUndefined();
  });

  it('boundNames lists bound names under an id prefix, at most limit', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wc-lease-'));
    for (const c of ['c', 'cc']) mkdirSync(join(root, c, 'm'), { recursive: true });
    for (const f of ['c/m/a', 'c/m/b', 'c/m/c', 'c/x', 'cc/m/a']) writeFileSync(join(root, f), f);
    let now = 0;
    const t = new LeaseTable({ origin: new FsOrigin({ root }), termMs: 1000, now: () => now });
    const resolved = new Map<string, ObjectInfo>();
    for (const f of ['c/m/a', 'c/m/b', 'c/m/c', 'c/x', 'cc/m/a']) {
      const [container, ...rest] = f.split('/');
      resolved.set(f, await t.resolve({ container: container!, key: rest.join('/') }));
    }
    expect(t.boundNames('c/m/', 10).sort()).toEqual(['c/m/a', 'c/m/b', 'c/m/c']);
    expect(t.boundNames('c/', 10).sort()).toEqual(['c/m/a', 'c/m/b', 'c/m/c', 'c/x']);
    expect(t.boundNames('cc/', 10)).toEqual(['cc/m/a']);
    expect(t.boundNames('', 10)).toHaveLength(5);
    const two = t.boundNames('c/m/', 2);
    expect(two).toHaveLength(2);
    for (const id of two) expect(id.startsWith('c/m/')).toBe(true);
    expect(t.boundNames('c/m/', 0)).toEqual([]);
    now += 5000; // expired bindings are still names this table knows of
    expect(t.boundNames('c/m/', 10)).toHaveLength(3);
    t.forget(resolved.get('c/m/b')!);
    expect(t.boundNames('c/m/', 10).sort()).toEqual(['c/m/a', 'c/m/c']);
  });

  it('one caller giving up does not fail the others waiting on the same name', async () => {
    const { t } = setup();
    const ac = new AbortController();
    const a = t.resolve(name, ac.signal);
    const b = t.resolve(name); // joins A's origin request
    ac.abort(new Error('client A went away'));
    await expect(a).rejects.toThrow('client A went away');
    expect((await b).size).toBe(2);
  });
});

/** An origin whose answers the test gives by hand: stat() and revalidate() wait in `calls`. */
class ManualOrigin implements Origin {
  readonly kind = 'manual';
  readonly id = 'manual:test';
  readonly calls: {
    op: 'stat' | 'revalidate';
    name: ObjectName;
    resolve(info: ObjectInfo): void;
    reject(err: unknown): void;
  }[] = [];

  stat(name: ObjectName): Promise<ObjectInfo> {
    return new Promise((resolve, reject) => this.calls.push({ op: 'stat', name, resolve, reject }));
  }

  revalidate(known: ObjectInfo): Promise<ObjectInfo> {
    return new Promise((resolve, reject) =>
      this.calls.push({ op: 'revalidate', name: known, resolve, reject }),
    );
  }

  read(): Promise<Buffer> {
    throw new Error('unused');
  }

  // biome-ignore lint/correctness/useYield: never lists
  async *list(): AsyncIterable<ObjectInfo> {
    throw new Error('unused');
  }

  async close(): Promise<void> {}
}

function version(etag: string, size = etag.length): ObjectInfo {
  return { ...name, etag, size, lastModified: new Date(1_700_000_000_000 + size) };
}

function manual() {
  let now = 0;
  const origin = new ManualOrigin();
  const metrics = new Metrics();
  const t = new LeaseTable({ origin, termMs: 1000, metrics, now: () => now });
  return { t, origin, metrics, advance: (ms: number) => (now += ms) };
}

/** Lets every queued microtask and I/O callback run. */
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('LeaseTable.refresh', () => {
  it('a stat sent before refresh() that answers after it is not installed, whatever the order', async () => {
    for (const lateFirst of [true, false]) {
      const { t, origin } = manual();
      const before = t.resolve(name); // origin call 0: will answer the old version
      const refreshed = t.refresh(name); // origin call 1
      const after = t.resolve(name); // started after refresh(): shares call 1
      expect(origin.calls.map((c) => c.op)).toEqual(['stat', 'stat']);
      const [old, fresh] = origin.calls;
      if (lateFirst) {
        old!.resolve(version('v1'));
        expect(await before).toEqual(version('v1')); // its own caller gets what it asked for
        expect(t.binding(name)).toBeUndefined(); // but it is not installed
        fresh!.resolve(version('v2!'));
      } else {
        fresh!.resolve(version('v2!'));
        await refreshed;
        old!.resolve(version('v1')); // the late answer of the old request
        await before;
      }
      expect(await refreshed).toEqual(version('v2!'));
      expect(await after).toEqual(version('v2!'));
      expect(t.binding(name)?.info.etag).toBe('v2!');
      expect(await t.resolve(name)).toEqual(version('v2!')); // from the binding: no new call
      expect(origin.calls).toHaveLength(2);
    }
  });

  it('a revalidation sent before refresh() that answers after it is not installed', async () => {
    const { t, origin, metrics, advance } = manual();
    const first = t.resolve(name);
    origin.calls[0]!.resolve(version('v1'));
    const v1 = await first;
    advance(1000); // the term ended: the next resolution revalidates
    const revalidating = t.resolve(name);
    expect(origin.calls[1]!.op).toBe('revalidate');
    const refreshed = t.refresh(name);
    expect(origin.calls[2]!.op).toBe('stat');
    origin.calls[2]!.resolve(version('v2!'));
    expect(await refreshed).toEqual(version('v2!'));
    origin.calls[1]!.resolve(v1); // "unchanged", answered late
    expect(await revalidating).toBe(v1);
    expect(t.binding(name)?.info.etag).toBe('v2!');
    expect(t.binding(name)?.expiresAt).toBe(2000); // the refresh's term: its send time + term
    expect(await metrics.total(metrics.leaseResolutions, { result: 'refreshed' })).toBe(1);
  });

  it('a resolve() started after refresh() joins the refresh, not the origin request before it', async () => {
    const { t, origin } = manual();
    const old = t.resolve(name);
    t.refresh(name);
    const joiners = Array.from({ length: 5 }, () => t.resolve(name));
    expect(origin.calls).toHaveLength(2); // no third request
    origin.calls[0]!.resolve(version('v1'));
    await old;
    await tick();
    // The joiners are still waiting for the refresh's stat: the old answer did not reach them.
    let settled = 0;
    for (const j of joiners) j.then(() => settled++);
    await tick();
    expect(settled).toBe(0);
    origin.calls[1]!.resolve(version('v2!'));
    for (const j of joiners) expect(await j).toEqual(version('v2!'));
  });

  it('on a missing object returns null and removes the binding', async () => {
    const { t, origin } = manual();
    const first = t.resolve(name);
    origin.calls[0]!.resolve(version('v1'));
    await first;
    expect(t.binding(name)).toBeDefined();
    const refreshed = t.refresh(name);
    expect(t.binding(name)).toBeUndefined(); // dropped at once, before the origin answers
    expect(t.size).toBe(0);
    origin.calls[1]!.reject(new CacheError('NOT_FOUND', 'gone'));
    expect(await refreshed).toBeNull();
    expect(t.binding(name)).toBeUndefined();
    expect(t.boundNames('c/', 10)).toEqual([]);
  });

  it('on a missing object with the real fs origin: null, then NOT_FOUND on resolve', async () => {
    const { t, root } = setup();
    await t.resolve(name);
    const gone = { container: 'c', key: 'f' };
    rmSync(join(root, 'c', 'f'));
    expect(await t.refresh(gone)).toBeNull();
    expect(t.binding(gone)).toBeUndefined();
    await expect(t.resolve(gone)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('other origin failures propagate, and leave no binding', async () => {
    const { t, origin } = manual();
    const first = t.resolve(name);
    origin.calls[0]!.resolve(version('v1'));
    await first;
    const refreshed = t.refresh(name);
    origin.calls[1]!.reject(new CacheError('ORIGIN_UNAVAILABLE', 'down'));
    await expect(refreshed).rejects.toMatchObject({ code: 'ORIGIN_UNAVAILABLE' });
    expect(t.binding(name)).toBeUndefined();
  });

  // Regression: refreshing name A twice must not move the epoch of B (lru-cache disposes on
  // overwrite too), which would discard B's origin answer in flight.
  it('refreshing another name does not discard an answer in flight for this one', async () => {
    const { t, origin } = manual();
    const a = { container: 'c', key: 'a' };
    const r1 = t.refresh(a);
    origin.calls[0]!.resolve({ ...version('a1'), ...a });
    await r1;
    const b = t.resolve(name); // call 1, in flight
    const r2 = t.refresh(a); // call 2: second refresh of A
    origin.calls[2]!.resolve({ ...version('a2'), ...a });
    await r2;
    origin.calls[1]!.resolve(version('v1'));
    await b;
    expect(t.binding(name)?.info.etag).toBe('v1');
  });
});

describe('LeaseTable.fence', () => {
  it('a stat in flight for a name nobody knew of is not installed after a fence over its prefix, and later resolutions do not join it', async () => {
    const { t, origin } = manual();
    const before = t.resolve(name); // origin call 0: the old version, answering late
    t.fence(`${name.container}/`);
    const after = t.resolve(name); // a new request (call 1), not the one in flight
    expect(origin.calls).toHaveLength(2);
    origin.calls[0]!.resolve(version('v1'));
    expect(await before).toEqual(version('v1'));
    expect(t.binding(name)).toBeUndefined();
    origin.calls[1]!.resolve(version('v2!'));
    expect(await after).toEqual(version('v2!'));
    expect(t.binding(name)?.info.etag).toBe('v2!');
  });

  it('drops the bindings under the prefix, and only those', async () => {
    const { t, origin } = manual();
    const other = { container: 'other', key: 'k' };
    const a = t.resolve(name);
    const b = t.resolve(other);
    origin.calls[0]!.resolve(version('v1'));
    origin.calls[1]!.resolve({ ...version('v1'), ...other });
    await Promise.all([a, b]);
    t.fence(`${name.container}/`);
    expect(t.binding(name)).toBeUndefined();
    expect(t.binding(other)).toBeDefined();
  });
});
