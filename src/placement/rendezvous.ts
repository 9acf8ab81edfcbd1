/**
 * Weighted rendezvous (highest random weight) hashing: every member scores
 * every key, the highest score owns it and the rest, in score order, are the
 * fallbacks. Adding a member moves only the keys it now wins; removing one
 * moves only its own keys, each to the next member of that key's ranking.
 *
 * The score is the logarithmic method (Schindelhauer & Schomaker; the form
 * in Resche et al., "Weighted rendezvous hashing"): score = -weight / ln(u)
 * with u uniform in (0, 1) from hash(member, key). P(member wins) is exactly
 * weight / sum(weights), so weights are proportional without virtual nodes.
 *
 * Placement must agree across processes, platforms and releases (nodes and
 * sidecars compute owners independently), so the hash is fixed here:
 * MurmurHash3_x86_128 with PLACEMENT_SEED over
 *   u32le(byteLength(address)) ‖ utf8(address) ‖ utf8(key)
 * (the length prefix keeps ("a", "bc") and ("ab", "c") apart), and
 * u = max(x, 0.5) / 2^53 with x = h1 · 2^21 + (h2 >>> 11), the top 53 bits:
 * every u is exact in a double and strictly inside (0, 1). Math.log in V8 is
 * a software fdlibm port, the same on every platform. test/placement/vector.json
 * fails the build if any owner or ranking ever changes.
 */
import { murmur3x86_128Into } from './murmur3.js';

export interface Member {
  /** Transport address "ip:port" ("[v6]:port"); also the member's identity in the hash. */
  readonly address: string;
  /** Relative share of keys; > 0. A weight-2 member owns twice the keys of a weight-1 member. */
  readonly weight: number;
}

/** Changing the seed (or anything above) moves every chunk in every cluster: never do it casually. */
export const PLACEMENT_SEED = 0x77630001;

const TWO_POW_21 = 2 ** 21;
const TWO_POW_MINUS_53 = 2 ** -53;

const encoder = new TextEncoder();
// Addresses repeat for every chunk: encode each once. Bounded so a caller
// passing ever-new addresses cannot grow it without limit.
const MAX_PREFIXES = 4096;
const prefixes = new Map<string, Uint8Array>();
// One scratch buffer for the hash input: the key is written once at keyAt and
// each member's prefix right before it, so no bytes are copied per member
// beyond the prefix. Placement is synchronous, so sharing it is safe.
let scratch = new Uint8Array(4096);
let keyAt = 1024;
const hash = new Uint32Array(4);

function prefixOf(address: string): Uint8Array {
  let p = prefixes.get(address);
  if (p) return p;
  const a = encoder.encode(address);
  p = new Uint8Array(4 + a.length);
  new DataView(p.buffer).setUint32(0, a.length, true);
  p.set(a, 4);
  if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
  prefixes.set(address, p);
  return p;
}

/** Writes the key's UTF-8 at keyAt (growing the buffer if needed); returns the end offset. */
function loadKey(key: string, maxPrefix: number): number {
  // UTF-8 is at most 3 bytes per UTF-16 code unit.
  if (maxPrefix > keyAt || keyAt + key.length * 3 > scratch.length) {
    keyAt = Math.max(keyAt, maxPrefix);
    scratch = new Uint8Array(Math.max(scratch.length * 2, keyAt + key.length * 3));
  }
  return keyAt + encoder.encodeInto(key, scratch.subarray(keyAt)).written;
}

function check(m: Member): void {
  if (!(m.weight > 0) || !Number.isFinite(m.weight)) {
    throw new RangeError(`member ${m.address}: weight must be a finite number > 0, got ${m.weight}`);
  }
}

function scoreAt(m: Member, end: number): number {
  const p = prefixOf(m.address);
  const start = keyAt - p.length;
  scratch.set(p, start);
  murmur3x86_128Into(hash, scratch, PLACEMENT_SEED, start, end);
  const x = hash[0]! * TWO_POW_21 + (hash[1]! >>> 11);
  const u = Math.max(x, 0.5) * TWO_POW_MINUS_53;
  return -m.weight / Math.log(u);
}

function maxPrefix(members: readonly Member[]): number {
  let n = 0;
  for (const m of members) n = Math.max(n, prefixOf(m.address).length);
  return n;
}

/** The score of one member for one key (exported for tests and tools; rank() is the API). */
export function score(key: string, member: Member): number {
  check(member);
  const end = loadKey(key, prefixOf(member.address).length);
  return scoreAt(member, end);
}

/**
 * All members, best first: [owner, first fallback, …]. The order of
 * `members` does not matter; equal scores (vanishingly rare) go to the
 * smaller address so every process breaks them the same way.
 */
export function rank(key: string, members: readonly Member[]): Member[] {
  const end = loadKey(key, maxPrefix(members));
  const n = members.length;
  const out: Member[] = new Array(n);
  const scores = new Float64Array(n);
  // Insertion sort: n is a handful of members, and this beats Array.sort's
  // comparator calls and per-member objects on the per-chunk path.
  for (let i = 0; i < n; i++) {
    const m = members[i]!;
    check(m);
    const s = scoreAt(m, end);
    let j = i;
    while (j > 0 && before(s, m, scores[j - 1]!, out[j - 1]!)) {
      scores[j] = scores[j - 1]!;
      out[j] = out[j - 1]!;
      j--;
    }
    scores[j] = s;
    out[j] = m;
  }
  return out;
}

/** The owner of `key` (rank(key, members)[0]) without sorting; undefined for no members. */
export function owner(key: string, members: readonly Member[]): Member | undefined {
  const end = loadKey(key, maxPrefix(members));
  let best: Member | undefined;
  let bestScore = 0;
  for (const m of members) {
    check(m);
    const s = scoreAt(m, end);
    if (!best || before(s, m, bestScore, best)) {
      best = m;
      bestScore = s;
    }
  }
  return best;
}

/** Higher score first; equal scores by address in code-unit order (not locale order: the same everywhere). */
function before(s: number, m: Member, t: number, n: Member): boolean {
  return s > t || (s === t && m.address < n.address);
}
