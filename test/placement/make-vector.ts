/**
 * Writes test/placement/vector.json: keys → owner and full ranking for a fixed
 * member set. Run only when placement is changed ON PURPOSE (every chunk in
 * every cluster moves, and nodes of the old and new release disagree on owners
 * during a rolling upgrade): `npx tsx test/placement/make-vector.ts`.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Member, PLACEMENT_SEED, rank } from '../../src/placement/rendezvous.js';
import { chunkKeys } from './keys.js';

export const VECTOR_MEMBERS: Member[] = [
  { address: '10.0.0.1:7420', weight: 1 },
  { address: '10.0.0.2:7420', weight: 1 },
  { address: '10.0.0.3:7420', weight: 2 },
  { address: '10.0.0.4:7420', weight: 1 },
  { address: '[fd00::5]:7420', weight: 0.5 },
];

const keys = [
  '',
  'a',
  'container/key',
  'models/ü/模型/😀.safetensors',
  'x'.repeat(15),
  'x'.repeat(16),
  'x'.repeat(17),
  'x'.repeat(1000),
  ...chunkKeys(200),
  ...chunkKeys(20, 'mistral-7b/v0.3 with spaces & ?query#frag'),
];

const entries = keys.map((key) => {
  const r = rank(key, VECTOR_MEMBERS);
  return { key, owner: r[0]!.address, ranking: r.map((m) => m.address) };
});
const file = {
  about:
    'Placement must never change silently: every owner and ranking here is checked by rendezvous.test.ts.',
  hash: 'MurmurHash3_x86_128, seed 0x77630001, over u32le(len(address)) || utf8(address) || utf8(key)',
  seed: PLACEMENT_SEED,
  members: VECTOR_MEMBERS,
  entries,
};
writeFileSync(resolve(import.meta.dirname, 'vector.json'), `${JSON.stringify(file, null, 2)}\n`);
console.log(`wrote ${entries.length} entries`);
