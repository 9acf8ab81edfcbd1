import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';

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
  return { t, put, metrics, advance: (ms: number) => (now += ms) };
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
    await Promise.all(Array.from({ length: 20 }, () => t.resolve(name)));
    expect(await metrics.total(metrics.originRequests, { op: 'stat' })).toBe(1);
    t.forget(name);
    await t.resolve(name);
    expect(await metrics.total(metrics.originRequests, { op: 'stat' })).toBe(2);
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
