import { describe, expect, it } from 'vitest';
import { HomeLeases } from '../../src/coherence/home-leases.js';

const TERM = 30_000;

function setup(opts: { settleMs?: number; maxLeases?: number } = {}) {
  let now = 1_000;
  const t = new HomeLeases({
    termMs: TERM,
    driftRatio: 0.001,
    settleMs: opts.settleMs ?? 31_000,
    maxLeases: opts.maxLeases,
    now: () => now,
  });
  return { t, advance: (ms: number) => (now += ms), at: () => now };
}

/** A home that has been running long enough to vouch for every lease of its names. */
function settled(opts: { maxLeases?: number } = {}) {
  const s = setup(opts);
  s.advance(31_000);
  return s;
}

describe('HomeLeases', () => {
  it('rejects a settle time shorter than (1 + drift) * term', () => {
    expect(() => new HomeLeases({ termMs: TERM, driftRatio: 0.001, settleMs: TERM })).toThrow(/settleMs/);
  });

  it('is settled from the start only when told no one can hold its leases, and a membership change unsettles it', () => {
    let now = 1_000;
    const lone = new HomeLeases({
      termMs: TERM,
      driftRatio: 0.001,
      settleMs: 31_000,
      settledAtStart: true,
      now: () => now,
    });
    expect(lone.isSettled('c/k')).toBe(true);
    expect(lone.msUntilAllSettled()).toBeLessThanOrEqual(0);
    lone.becameHomeOfAll();
    expect(lone.isSettled('c/k')).toBe(false);
    now += 31_000;
    expect(lone.isSettled('c/k')).toBe(true);
    const fresh = setup();
    expect(fresh.t.isSettled('c/k')).toBe(false);
    expect(fresh.t.msUntilAllSettled()).toBe(31_000);
  });

  it('a full table forgets leases that ran out on any name before refusing a new one', () => {
    const { t, at, advance } = settled({ maxLeases: 2 });
    t.grant('c/a', 'h1', 'v1', at() + TERM);
    t.grant('c/b', 'h1', 'v1', at() + TERM);
    expect(t.grant('c/c', 'h1', 'v1', at() + TERM)).toBeNull(); // full, all alive
    advance(TERM);
    expect(t.grant('c/c', 'h1', 'v1', at() + TERM)).toEqual({ termMs: TERM }); // c/a, c/b ran out
    expect(t.size).toBe(1);
    advance(TERM);
    t.sweepAll();
    expect(t.size).toBe(0);
  });

  it('grants at most the binding term left, and nothing past it', () => {
    const { t, at } = settled();
    expect(t.grant('c/k', 'h1', 'v1', at() + 60_000)).toEqual({ termMs: TERM });
    expect(t.grant('c/k', 'h2', 'v1', at() + 5_000)).toEqual({ termMs: 5_000 });
    expect(t.grant('c/k', 'h3', 'v1', at())).toBeNull();
    expect(t.holders('c/k').sort()).toEqual(['h1', 'h2']);
  });

  it('forgets leases once they ran out on the home clock', () => {
    const { t, at, advance } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    advance(TERM - 1);
    expect(t.holders('c/k')).toEqual(['h1']);
    advance(1);
    expect(t.holders('c/k')).toEqual([]);
    expect(t.size).toBe(0);
  });

  it('completes an invalidation when every holder acknowledged', () => {
    const { t, at } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    t.grant('c/k', 'h2', 'v1', at() + TERM);
    const { revokeId, holders } = t.beginInvalidation('c/k');
    expect(holders.sort()).toEqual(['h1', 'h2']);
    expect(t.grant('c/k', 'h3', 'v1', at() + TERM)).toBe('wait'); // never the old version while re-resolving
    t.resolved('c/k');
    expect(t.ack('c/k', 'h1', revokeId)).toBe(true);
    expect(t.isComplete('c/k')).toBe(false);
    expect(t.unacked('c/k')).toEqual(['h2']);
    expect(t.ack('c/k', 'h2', revokeId)).toBe(true);
    expect(t.isComplete('c/k')).toBe(true);
    t.finish('c/k');
    expect(t.isPending('c/k')).toBe(false);
  });

  it('completes when an unreachable holder’s lease ran out, not before', () => {
    const { t, at, advance } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    advance(10_000);
    t.beginInvalidation('c/k');
    t.resolved('c/k');
    advance(TERM - 10_000 - 1);
    expect(t.isComplete('c/k')).toBe(false);
    advance(1);
    expect(t.isComplete('c/k')).toBe(true);
  });

  it('ignores stale and duplicate acknowledgements', () => {
    const { t, at } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    const first = t.beginInvalidation('c/k');
    t.resolved('c/k');
    expect(t.ack('c/k', 'h1', first.revokeId)).toBe(true);
    expect(t.ack('c/k', 'h1', first.revokeId)).toBe(false);
    t.finish('c/k');
    t.grant('c/k', 'h1', 'v2', at() + TERM);
    const second = t.beginInvalidation('c/k');
    t.resolved('c/k');
    expect(t.ack('c/k', 'h1', first.revokeId)).toBe(false); // an ACK of the first revocation, delivered late
    expect(t.isComplete('c/k')).toBe(false);
    expect(t.ack('c/k', 'h1', second.revokeId)).toBe(true);
    expect(t.isComplete('c/k')).toBe(true);
  });

  it('joins an invalidation already pending instead of restarting it', () => {
    const { t, at } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    const a = t.beginInvalidation('c/k');
    const b = t.beginInvalidation('c/k');
    expect(b).toEqual(a);
  });

  it('an unsettled home waits (1 + drift) * term after the re-resolve, even with no holders', () => {
    const { t, advance } = setup();
    t.beginInvalidation('c/k');
    advance(500);
    t.resolved('c/k');
    expect(t.isComplete('c/k')).toBe(false); // a predecessor's leases may be alive
    advance(TERM * 1.001 - 1);
    expect(t.isComplete('c/k')).toBe(false);
    advance(1);
    expect(t.isComplete('c/k')).toBe(true);
  });

  it('becoming home by a membership change unsettles that name only', () => {
    const { t } = settled();
    t.becameHome('c/moved');
    expect(t.isSettled('c/moved')).toBe(false);
    expect(t.isSettled('c/other')).toBe(true);
    t.beginInvalidation('c/other');
    t.resolved('c/other');
    expect(t.isComplete('c/other')).toBe(true);
  });

  it('refuses to grant past maxLeases rather than forget a lease', () => {
    const { t, at, advance } = settled({ maxLeases: 2 });
    t.grant('c/a', 'h1', 'v1', at() + TERM);
    t.grant('c/b', 'h1', 'v1', at() + TERM);
    expect(t.grant('c/c', 'h1', 'v1', at() + TERM)).toBeNull();
    expect(t.grant('c/a', 'h1', 'v1', at() + TERM)).toEqual({ termMs: TERM }); // a renewal is no new entry
    advance(TERM);
    expect(t.grant('c/a', 'h2', 'v1', at() + TERM)).toEqual({ termMs: TERM });
  });

  it('keeps the later expiry when a holder is granted again', () => {
    const { t, at, advance } = settled();
    t.grant('c/k', 'h1', 'v1', at() + TERM);
    advance(1_000);
    t.grant('c/k', 'h1', 'v1', at() + 5_000); // shorter: the first grant may still be in use
    advance(TERM - 1_000 - 1);
    expect(t.holders('c/k')).toEqual(['h1']);
  });
});
