import { describe, expect, it } from 'vitest';
import { PeerHealth, usable } from '../../src/placement/peer-health.js';
import type { Member } from '../../src/placement/rendezvous.js';

/** A clock the test moves by hand (the injectable seam, no timers mocked). */
function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const m = (address: string): Member => ({ address, weight: 1 });

describe('PeerHealth', () => {
  it('skips a failed peer for the backoff, doubling per failure up to the cap', () => {
    const c = clock();
    const h = new PeerHealth({ backoffMs: 100, maxBackoffMs: 350, now: c.now });
    expect(h.available('a:1')).toBe(true);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      h.failed('a:1');
      waits.push(h.backoffLeftMs('a:1'));
      expect(h.available('a:1')).toBe(false);
      c.advance(waits[i]! - 1);
      expect(h.available('a:1')).toBe(false);
      c.advance(1);
      expect(h.available('a:1')).toBe(true);
    }
    expect(waits).toEqual([100, 200, 350, 350, 350]);
  });

  it('counts reports of a peer down once per backoff period, not once per report', () => {
    const c = clock();
    const h = new PeerHealth({ backoffMs: 100, now: c.now });
    for (let i = 0; i < 50; i++) h.reported('a:1'); // fifty readers report the same dead owner
    expect(h.available('a:1')).toBe(false);
    expect(h.backoffLeftMs('a:1')).toBe(100); // one failure, not 2^49 of them
    c.advance(100);
    h.reported('a:1'); // still reported after the backoff: the second failure doubles it
    expect(h.backoffLeftMs('a:1')).toBe(200);
    h.succeeded('a:1');
    expect(h.available('a:1')).toBe(true);
  });

  it('forgets the failures after a success', () => {
    const c = clock();
    const h = new PeerHealth({ backoffMs: 100, now: c.now });
    h.failed('a:1');
    h.failed('a:1');
    h.succeeded('a:1');
    expect(h.available('a:1')).toBe(true);
    h.failed('a:1');
    expect(h.backoffLeftMs('a:1')).toBe(100);
  });

  it('defaults the cap to max(backoff, 60s) and tracks peers independently', () => {
    const c = clock();
    const h = new PeerHealth({ backoffMs: 5000, now: c.now });
    for (let i = 0; i < 10; i++) h.failed('a:1');
    expect(h.backoffLeftMs('a:1')).toBe(60_000);
    expect(h.available('b:1')).toBe(true);
  });

  it('rejects nonsense options', () => {
    expect(() => new PeerHealth({ backoffMs: -1 })).toThrow(/backoffMs/);
    expect(() => new PeerHealth({ backoffMs: 100, maxBackoffMs: 50 })).toThrow(/maxBackoffMs/);
  });
});

describe('usable', () => {
  const ranked = [m('a:1'), m('b:1'), m('c:1'), m('d:1')];

  it('drops self and peers in backoff, keeping rank order', () => {
    const c = clock();
    const h = new PeerHealth({ backoffMs: 100, now: c.now });
    h.failed('b:1');
    expect(usable(ranked, h, 'c:1').map((x) => x.address)).toEqual(['a:1', 'd:1']);
    c.advance(100);
    expect(usable(ranked, h, 'c:1').map((x) => x.address)).toEqual(['a:1', 'b:1', 'd:1']);
  });

  it('returns every peer in rank order when all are in backoff', () => {
    const h = new PeerHealth({ backoffMs: 100, now: clock().now });
    for (const p of ranked) h.failed(p.address);
    expect(usable(ranked, h, 'a:1').map((x) => x.address)).toEqual(['b:1', 'c:1', 'd:1']);
    expect(usable(ranked, h).map((x) => x.address)).toEqual(['a:1', 'b:1', 'c:1', 'd:1']);
    expect(usable([m('a:1')], h, 'a:1')).toEqual([]);
  });
});
