/**
 * Placement cost on the read path: `npx tsx test/placement/bench.ts`.
 * Prints ns per rank()/owner() call and per member score for 100-byte keys.
 * Not a test (no timing assertions); figures go into docs/cluster.md.
 */
import { type Member, owner, rank } from '../../src/placement/rendezvous.js';

const members: Member[] = [1, 2, 3, 4, 5].map((i) => ({ address: `10.0.0.${i}:7420`, weight: 1 }));
const keys = Array.from({ length: 10_000 }, (_, i) =>
  `models/llama-3-70b/model-${String(i % 30).padStart(5, '0')}-of-00030.safetensors#0x1a2b3c4d5e6f#${i}`
    .padEnd(100, 'x')
    .slice(0, 100),
);

function time(label: string, fn: (k: string) => unknown, rounds: number): void {
  for (let r = 0; r < 3; r++) for (const k of keys) fn(k); // warm up the JIT
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let r = 0; r < rounds; r++) for (const k of keys) if (fn(k)) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * keys.length);
  console.log(
    `${label}: ${ns.toFixed(0)} ns/call, ${(ns / members.length).toFixed(0)} ns/member (${sink > 0 ? 'ok' : ''})`,
  );
}

time('rank  (5 members, 100-byte keys)', (k) => rank(k, members), 50);
time('owner (5 members, 100-byte keys)', (k) => owner(k, members), 50);
