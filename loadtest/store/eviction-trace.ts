/**
 * A reproducible chunk-access trace of several models loading through one
 * node, for comparing eviction policies (addon/bench/eviction_sim.cc).
 *
 * The shape, from how inference fleets load checkpoints:
 * - six models of 2–26 GiB loaded again and again, popularity Zipf(1.1)
 *   (a few are hot); each load reads the small files first (config.json
 *   three times: every worker process reads it), then the shards, up to 4
 *   at once, at ~1.5 GB/s;
 * - a 140 GiB model loaded twice (at a third and at two thirds of the
 *   trace): the large one-off scan that must not wipe the hot set;
 * - 60% of loads read 4 MiB ranges (one touch per chunk), 40% 64 KiB ranges
 *   (64 touches per chunk within a few milliseconds).
 *
 * Lines: "<t_ms> <chunk key> <bytes> <touches>". Same seed, same trace.
 */
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const CHUNK = 4 * MiB;

interface Model {
  readonly name: string;
  readonly bytes: number;
  readonly shards: number;
}

const REGULAR: Model[] = [
  { name: 'a-1b', bytes: 2.2 * GiB, shards: 1 },
  { name: 'b-3b', bytes: 6.4 * GiB, shards: 2 },
  { name: 'c-7b', bytes: 14.5 * GiB, shards: 3 },
  { name: 'd-7b', bytes: 14.5 * GiB, shards: 3 },
  { name: 'e-8b', bytes: 16 * GiB, shards: 4 },
  { name: 'f-13b', bytes: 26 * GiB, shards: 6 },
];
const HUGE: Model = { name: 'g-70b', bytes: 140 * GiB, shards: 30 };
// Small files every model has (bytes): config.json, generation_config.json,
// tokenizer.json, tokenizer_config.json, model.safetensors.index.json.
const SMALL = [352, 180, 2.1 * MiB, 1536, 25 * 1024];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TraceOptions {
  readonly loads: number;
  readonly seed: number;
  /** Mean seconds between loads. */
  readonly gapS: number;
}

export function* trace(o: TraceOptions): Generator<string> {
  const rand = rng(o.seed);
  const weights = REGULAR.map((_, i) => 1 / (i + 1) ** 1.1);
  const sum = weights.reduce((a, b) => a + b, 0);
  const pick = (): number => {
    let x = rand() * sum;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x <= 0) return i;
    }
    return weights.length - 1;
  };
  let t = 0;
  const msPerChunk = (CHUNK / 1.5e9) * 1000;
  for (let load = 0; load < o.loads; load++) {
    const huge = load === Math.floor(o.loads / 3) || load === Math.floor((2 * o.loads) / 3);
    const mi = huge ? REGULAR.length : pick();
    const model = huge ? HUGE : REGULAR[mi]!;
    const touches = rand() < 0.4 ? 64 : 1;
    const key = (file: number, index: number) => (mi * 256 + file) * 2 ** 24 + index;
    for (const [f, bytes] of SMALL.entries()) {
      const reads = f === 0 ? 3 : 1;
      for (let r = 0; r < reads; r++) yield `${Math.round(t)} ${key(f, 0)} ${Math.round(bytes)} 1`;
    }
    // Shards read 4 at a time, their chunks interleaved.
    const shardBytes = model.bytes / model.shards;
    const chunksPerShard = Math.ceil(shardBytes / CHUNK);
    for (let first = 0; first < model.shards; first += 4) {
      const active = Math.min(4, model.shards - first);
      for (let i = 0; i < chunksPerShard; i++) {
        for (let s = 0; s < active; s++) {
          const bytes = i === chunksPerShard - 1 ? shardBytes - i * CHUNK : CHUNK;
          yield `${Math.round(t)} ${key(16 + first + s, i)} ${Math.round(bytes)} ${touches}`;
          t += msPerChunk;
        }
      }
    }
    t += -Math.log(1 - rand()) * o.gapS * 1000;
  }
}
