import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur3x86_128 } from '../../src/placement/murmur3.js';
import { type Member, owner, PLACEMENT_SEED, rank } from '../../src/placement/rendezvous.js';
import { chunkKeys } from './keys.js';

const root = resolve(import.meta.dirname, '../..');
const members = (n: number, from = 1): Member[] =>
  Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${from + i}:7420`, weight: 1 }));

function loads(keys: string[], ms: Member[]): Map<string, number> {
  const out = new Map(ms.map((m) => [m.address, 0]));
  for (const k of keys) {
    const a = owner(k, ms)!.address;
    out.set(a, out.get(a)! + 1);
  }
  return out;
}

const memberSets = fc
  .uniqueArray(
    fc.record({
      address: fc.oneof(fc.ipV4(), fc.string({ minLength: 1, maxLength: 20 })).map((h) => `${h}:7420`),
      weight: fc.oneof(fc.constant(1), fc.double({ min: 0.01, max: 100, noNaN: true })),
    }),
    { minLength: 1, maxLength: 12, selector: (m) => m.address },
  )
  .map((ms) => ms as Member[]);

describe('MurmurHash3_x86_128', () => {
  it('matches the reference (SMHasher verification value 0xB3ECE62A)', () => {
    // SMHasher's VerificationTest: hash [0..i) with seed 256-i for i in 0..255,
    // hash the concatenated results with seed 0, read the first 4 bytes LE.
    const key = new Uint8Array(256);
    const all = new DataView(new ArrayBuffer(16 * 256));
    for (let i = 0; i < 256; i++) {
      key[i] = i;
      const h = murmur3x86_128(key, 256 - i, 0, i);
      for (let j = 0; j < 4; j++) all.setUint32(i * 16 + j * 4, h[j]!, true);
    }
    expect(murmur3x86_128(new Uint8Array(all.buffer), 0)[0]).toBe(0xb3ece62a);
    expect(murmur3x86_128(new Uint8Array(0), 0)).toEqual([0, 0, 0, 0]);
  });
});

describe('rendezvous placement', () => {
  it('is unchanged across releases (test/placement/vector.json)', () => {
    const v = JSON.parse(readFileSync(resolve(import.meta.dirname, 'vector.json'), 'utf8')) as {
      seed: number;
      members: Member[];
      entries: Array<{ key: string; owner: string; ranking: string[] }>;
    };
    expect(v.seed).toBe(PLACEMENT_SEED);
    expect(v.entries.length).toBeGreaterThanOrEqual(200);
    for (const e of v.entries) {
      expect(owner(e.key, v.members)?.address, e.key).toBe(e.owner);
      expect(
        rank(e.key, v.members).map((m) => m.address),
        e.key,
      ).toEqual(e.ranking);
      // Member order in the list must not matter.
      expect(owner(e.key, [...v.members].reverse())?.address, e.key).toBe(e.owner);
    }
  });

  it('agrees with a second node process running the compiled code', () => {
    const keys = chunkKeys(2000);
    const ms = members(5);
    // dist/ is built from src/ by the vitest globalSetup (test/harness/build.ts).
    const script = `
      import { rank } from ${JSON.stringify(resolve(root, 'dist/src/placement/rendezvous.js'))};
      let input = '';
      for await (const c of process.stdin) input += c;
      const { keys, members } = JSON.parse(input);
      process.stdout.write(JSON.stringify(keys.map((k) => rank(k, members).map((m) => m.address))));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      input: JSON.stringify({ keys, members: ms }),
      encoding: 'utf8',
    });
    const theirs = JSON.parse(out) as string[][];
    expect(theirs).toEqual(keys.map((k) => rank(k, ms).map((m) => m.address)));
  });

  it('balances 100k chunks over 5 equal members within max/min 1.1', () => {
    const counts = [...loads(chunkKeys(100_000), members(5)).values()];
    expect(Math.max(...counts) / Math.min(...counts)).toBeLessThanOrEqual(1.1);
  });

  it('moves at most 1/6 + 2% of chunks when a 6th member joins, all to it', () => {
    const keys = chunkKeys(100_000);
    const five = members(5);
    const six = members(6);
    let moved = 0;
    for (const k of keys) {
      const before = owner(k, five)!.address;
      const after = owner(k, six)!.address;
      if (before !== after) {
        moved++;
        expect(after).toBe(six[5]!.address);
      }
    }
    expect(moved / keys.length).toBeLessThanOrEqual(1 / 6 + 0.02);
    expect(moved).toBeGreaterThan(0);
  });

  it('moves only the removed member’s chunks, each to the next in its ranking', () => {
    const keys = chunkKeys(20_000);
    const five = members(5);
    const gone = five[2]!;
    const four = five.filter((m) => m !== gone);
    for (const k of keys) {
      const r = rank(k, five);
      const expected = r[0] === gone ? r[1] : r[0];
      expect(owner(k, four)).toBe(expected);
    }
  });

  it('honours weights: a weight-2 member gets ~2x the chunks of a weight-1 member', () => {
    const ms = members(5).map((m, i) => (i === 0 ? { ...m, weight: 2 } : m));
    const counts = loads(chunkKeys(100_000), ms);
    const heavy = counts.get(ms[0]!.address)!;
    for (const m of ms.slice(1)) {
      const ratio = heavy / counts.get(m.address)!;
      expect(ratio).toBeGreaterThan(1.85);
      expect(ratio).toBeLessThan(2.15);
    }
    // Exactly proportional in expectation: 2/6 of all chunks.
    expect(heavy / 100_000).toBeCloseTo(2 / 6, 1);
  });

  it('ranks every member once, owner first, whatever the list order (property)', () => {
    fc.assert(
      fc.property(memberSets, fc.string(), fc.func(fc.integer()), (ms, key, f) => {
        const r = rank(key, ms);
        expect(new Set(r)).toEqual(new Set(ms));
        expect(r).toHaveLength(ms.length);
        expect(r[0]).toBe(owner(key, ms));
        const shuffled = [...ms].sort((a, b) => f(a.address) - f(b.address));
        expect(rank(key, shuffled)).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it('removing any member keeps the relative order of the others (property)', () => {
    fc.assert(
      fc.property(memberSets, fc.string(), fc.nat(), (ms, key, pick) => {
        const gone = ms[pick % ms.length]!;
        const rest = ms.filter((m) => m !== gone);
        expect(rank(key, rest)).toEqual(rank(key, ms).filter((m) => m !== gone));
      }),
      { numRuns: 300 },
    );
  });

  it('has no owner without members, and rejects weights that are not > 0', () => {
    expect(owner('k', [])).toBeUndefined();
    expect(rank('k', [])).toEqual([]);
    for (const weight of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => rank('k', [{ address: 'a:1', weight }])).toThrow(/weight must be a finite number > 0/);
    }
  });
});
