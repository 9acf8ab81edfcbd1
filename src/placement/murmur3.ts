/**
 * MurmurHash3_x86_128 (Austin Appleby, public domain), over bytes, written
 * here so placement never depends on a library's version. Chosen because it
 * is built from 32-bit multiplies and rotates, which JavaScript does natively
 * (Math.imul), where 64-bit hashes (xxHash64, SipHash) need BigInt or
 * emulated 64-bit multiplies; it passes SMHasher (good avalanche), and its
 * SMHasher verification value (0xB3ECE62A) pins this implementation to the
 * reference and to every other language's port (C, Go, Rust, Python mmh3), so
 * a client written in another language can compute the same owners.
 */

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

/** 128-bit result as four 32-bit unsigned words, h1..h4 (the reference's out[0..3], little-endian). */
export type Hash128 = [number, number, number, number];

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x;
}

function word(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** MurmurHash3_x86_128 of bytes[start, end) with a 32-bit seed. */
export function murmur3x86_128(bytes: Uint8Array, seed: number, start = 0, end = bytes.length): Hash128 {
  const out = new Uint32Array(4);
  murmur3x86_128Into(out, bytes, seed, start, end);
  return [out[0]!, out[1]!, out[2]!, out[3]!];
}

/** The same, into `out` (h1..h4), so the per-chunk placement path allocates nothing. */
export function murmur3x86_128Into(
  out: Uint32Array,
  bytes: Uint8Array,
  seed: number,
  start: number,
  end: number,
): void {
  const len = end - start;
  let h1 = seed | 0;
  let h2 = h1;
  let h3 = h1;
  let h4 = h1;
  const blocksEnd = start + (len & ~15);
  for (let i = start; i < blocksEnd; i += 16) {
    let k1 = word(bytes, i);
    let k2 = word(bytes, i + 4);
    let k3 = word(bytes, i + 8);
    let k4 = word(bytes, i + 12);

    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = rotl(h1, 19) + h2;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;

    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = rotl(h2, 17) + h3;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;

    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = rotl(h3, 15) + h4;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;

    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = rotl(h4, 13) + h1;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }

  // Tail: the reference's switch with fall-through, as one loop per lane.
  const rest = len & 15;
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  for (let j = rest - 1; j >= 0; j--) {
    const b = bytes[blocksEnd + j]!;
    if (j >= 12) k4 ^= b << ((j - 12) * 8);
    else if (j >= 8) k3 ^= b << ((j - 8) * 8);
    else if (j >= 4) k2 ^= b << ((j - 4) * 8);
    else k1 ^= b << (j * 8);
  }
  if (rest > 12) {
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
  }
  if (rest > 8) {
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
  }
  if (rest > 4) {
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
  }
  if (rest > 0) {
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
  }

  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}
