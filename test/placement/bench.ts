/**
 * Placement figures for docs/cluster.md: `npx tsx test/placement/bench.ts`.
 * Cost per rank()/owner() call on ~100-byte chunk keys, and balance, movement
 * and weight shares over 100k chunk keys. Not a test: no timing assertions.
 */
import { type Member, owner, rank } from '../../src/placement/rendezvous.js';
import { chunkKeys } from './keys.js';

const members = (n: number): Member[] =>
  Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:7420`, weight: 1 }));
const five = members(5);
const keys = chunkKeys(100_000);
const bytes = keys.reduce((s, k) => s + Buffer.byteLength(k), 0) / keys.length;

function time(label: string, fn: (k: string) => unknown, rounds: number): void {
  const sample = keys.slice(0, 10_000);
  for (let r = 0; r < 3; r++) for (const k of sample) fn(k); // warm up the JIT
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const k of sample) fn(k);
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * sample.length);
  console.log(`${label}: ${ns.toFixed(0)} ns/call, ${(ns / five.length).toFixed(0)} ns per member score`);
}

function loads(ms: Member[]): number[] {
  const c = new Map(ms.map((m) => [m.address, 0]));
  for (const k of keys) {
    const a = owner(k, ms)!.address;
    c.set(a, c.get(a)! + 1);
  }
  return [...c.values()];
}

console.log(`keys: ${keys.length}, mean ${bytes.toFixed(0)} bytes`);
time('rank  (5 members)', (k) => rank(k, five), 30);
time('owner (5 members)', (k) => owner(k, five), 30);

const l5 = loads(five);
console.log(
  `balance, 5 equal members: ${l5.join(' ')}; max/min ${(Math.max(...l5) / Math.min(...l5)).toFixed(4)}`,
);

const six = members(6);
let moved = 0;
let elsewhere = 0;
for (const k of keys) {
  const a = owner(k, five)!.address;
  const b = owner(k, six)!.address;
  if (a !== b) {
    moved++;
    if (b !== six[5]!.address) elsewhere++;
  }
}
console.log(
  `add a 6th: ${((100 * moved) / keys.length).toFixed(2)}% moved (ideal ${(100 / 6).toFixed(2)}%), ${elsewhere} not to the new member`,
);

let removedMoved = 0;
let wrong = 0;
const four = five.filter((_, i) => i !== 2);
for (const k of keys) {
  const r = rank(k, five);
  const a = owner(k, four)!;
  if (a !== r[0]) {
    removedMoved++;
    if (r[0] !== five[2] || a !== r[1]) wrong++;
  }
}
console.log(
  `remove 1 of 5: ${((100 * removedMoved) / keys.length).toFixed(2)}% moved (its share), ${wrong} not to the next in rank`,
);

const weighted = five.map((m, i) => (i === 0 ? { ...m, weight: 2 } : m));
const lw = loads(weighted);
console.log(
  `weights 2,1,1,1,1: ${lw.join(' ')}; weight-2 share ${((100 * lw[0]!) / keys.length).toFixed(2)}% (ideal 33.33%), ratio to mean weight-1 ${(lw[0]! / (lw.slice(1).reduce((s, x) => s + x, 0) / 4)).toFixed(3)}`,
);
