/**
 * Reliability scenarios are data (chaos/scenarios/*.json), validated here
 * with one schema per kind, as loadtest/scenario.ts does for benchmarks: a
 * count, a rate or a goal is changed by editing a file, not the runner.
 *
 * Counts marked "scaled" are multiplied by `--scale` (a quick run); the
 * recorded run uses scale 1, the figures of issue 12.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { z } from 'zod';
import { parseGoal } from './figures.js';

const bytes = z.number().int().positive();
const count = z.number().int().min(0);

const common = {
  name: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  /** What it does and why, for docs/reliability.md. */
  describe: z.string(),
  /** Excluded from `all` (e.g. smoke). */
  inAll: z.boolean().default(true),
  /** metric name → goal ("== 0", "<= 0.1", "within 10%"); checked on every figure of that metric. */
  /** Metrics without a goal that docs/reliability.md shows too (every figure is in the results). */
  show: z.array(z.string()).default([]),
  goals: z
    .record(z.string(), z.string())
    .default({})
    .superRefine((g, ctx) => {
      for (const [k, v] of Object.entries(g)) {
        try {
          parseGoal(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `goals.${k}: ${(err as Error).message}` });
        }
      }
    }),
};

export const nodeKillSchema = z.strictObject({
  ...common,
  kind: z.literal('node-kill'),
  nodes: z.number().int().min(2).max(8),
  files: z.number().int().min(1).max(64),
  fileBytes: bytes,
  chunkBytes: bytes,
  /** Each read: a random offset and a random length of 1..rangeMaxBytes. */
  rangeMaxBytes: bytes,
  concurrency: z.number().int().min(1).max(512),
  /** Reads without kills, for the p99 to compare with (scaled). */
  baselineRequests: count,
  /** Reads while nodes are killed (scaled). */
  requests: count,
  killEveryS: z.number().positive(),
  nodeDramBytes: bytes,
  /** Small, so the sidecar keeps asking the nodes instead of answering from its own tier. */
  sidecarDramBytes: bytes,
});

const condition = z.strictObject({
  name: z.string(),
  /** Fraction of origin requests answered `status` (0: none). */
  errorFraction: z.number().min(0).max(1).default(0),
  status: z.number().int().min(400).max(599).default(503),
  /** Added to every origin request. */
  delayMs: z.number().int().min(0).default(0),
});

export const originFaultsSchema = z.strictObject({
  ...common,
  kind: z.literal('origin-faults'),
  chunkBytes: bytes,
  /** Objects read once before the phases: every later read of them is a hit. */
  hotFiles: z.number().int().min(1),
  hotFileBytes: bytes,
  /** One object whose chunks are each read for the first time during a phase: misses. */
  coldFileBytes: bytes,
  hitConcurrency: z.number().int().min(1).max(256),
  hitRangeBytes: bytes,
  /** Misses per second (open loop, so a failing origin does not speed the miss reader up). */
  missesPerS: z.number().positive(),
  /** Seconds per condition per round (scaled). */
  phaseS: z.number().positive(),
  /** Each round runs every condition once, interleaved, so machine drift spreads over all. */
  rounds: z.number().int().min(1).max(10),
  conditions: z.array(condition).min(2),
  originTimeoutMs: z.number().int().positive(),
});

export const diskFaultsSchema = z.strictObject({
  ...common,
  kind: z.literal('disk-faults'),
  files: z.number().int().min(1),
  fileBytes: bytes,
  chunkBytes: bytes,
  /** A small DRAM tier, so reads come from NVMe. */
  dramBytes: bytes,
  /** Device block size for the flips. */
  blockBytes: bytes,
  /** Fraction of the NVMe directory's blocks that get one bit flipped. */
  flipFraction: z.number().min(0).max(1),
  /** Chunk files truncated per variant (9 variants), live and across a restart. */
  truncationsPerVariant: z.number().int().min(1),
  /** SIGKILL-during-write cycles (scaled). */
  killCycles: count,
  /** A new object per cycle, read (filled) while the kill lands (within the time a fill takes, measured). */
  killFileBytes: bytes,
});

const attack = z.discriminatedUnion('attack', [
  z.strictObject({ attack: z.literal('admin-bypass') }),
  z.strictObject({
    attack: z.literal('pipelined-ranges'),
    connections: z.number().int().min(1),
    pipelined: z.number().int().min(1),
    rangeBytes: bytes,
  }),
  z.strictObject({
    attack: z.literal('pipelined-metrics'),
    connections: z.number().int().min(1),
    pipelined: z.number().int().min(1),
  }),
  z.strictObject({
    attack: z.literal('transport-hello-payload'),
    connections: z.number().int().min(1),
    payloadBytes: bytes,
  }),
  z.strictObject({
    attack: z.literal('idle-connections'),
    door: z.enum(['http', 'resp', 'transport']),
    connections: z.number().int().min(1),
  }),
  z.strictObject({
    attack: z.literal('slowloris'),
    connections: z.number().int().min(1),
    byteEveryMs: z.number().int().positive(),
  }),
  z.strictObject({
    attack: z.literal('many-ranges'),
    ranges: z.number().int().min(1),
    requests: z.number().int().min(1),
  }),
  z.strictObject({
    attack: z.literal('unread-range'),
    connections: z.number().int().min(1),
    rangeBytes: bytes,
  }),
  z.strictObject({ attack: z.literal('resp-framing'), connections: z.number().int().min(1) }),
  z.strictObject({ attack: z.literal('transport-garbage'), connections: z.number().int().min(1) }),
]);
export type Attack = z.infer<typeof attack>;

export const hostileSchema = z.strictObject({
  ...common,
  kind: z.literal('hostile-clients'),
  fileBytes: bytes,
  /** Sparse object for the huge-range attacks (costs no disk). */
  bigFileBytes: bytes,
  chunkBytes: bytes,
  dramBytes: bytes,
  readerRangeBytes: bytes,
  /** The well-behaved reader's own timeout per request: longer counts as a failure. */
  readerTimeoutMs: z.number().int().positive(),
  /** Seconds of reading without an attack, for the baseline p99. */
  baselineS: z.number().positive(),
  /** Seconds each attack is held (scaled). */
  attackS: z.number().positive(),
  /** After the attacker leaves: the node must answer within this, or it counts as a hang. */
  hangAfterMs: z.number().int().positive(),
  attacks: z.array(attack).min(1),
});

export const coherenceSchema = z.strictObject({
  ...common,
  kind: z.literal('coherence'),
  nodes: z.number().int().min(1).max(8),
  sidecars: z.number().int().min(1).max(8),
  files: z.number().int().min(1),
  fileBytes: bytes,
  chunkBytes: bytes,
  termMs: z.number().int().positive(),
  marginMs: z.number().int().positive(),
  readersPerProcess: z.number().int().min(1),
  /** Writer rounds with an invalidation after each (scaled). */
  invalidatedRounds: count,
  /** Writer rounds without invalidation: staleness is what the leases allow (scaled). */
  staleRounds: count,
  /** Rounds rewriting the files in place with their mtime restored (scaled). */
  inPlaceRounds: count,
  writeEveryMs: z.number().int().positive(),
});

export const scenarioSchema = z.discriminatedUnion('kind', [
  nodeKillSchema,
  originFaultsSchema,
  diskFaultsSchema,
  hostileSchema,
  coherenceSchema,
]);
export type Scenario = z.infer<typeof scenarioSchema>;
export type NodeKillScenario = z.infer<typeof nodeKillSchema>;
export type OriginFaultsScenario = z.infer<typeof originFaultsSchema>;
export type DiskFaultsScenario = z.infer<typeof diskFaultsSchema>;
export type HostileScenario = z.infer<typeof hostileSchema>;
export type CoherenceScenario = z.infer<typeof coherenceSchema>;

export function loadScenarios(dir: string): Scenario[] {
  const out: Scenario[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (extname(f) !== '.json') continue;
    const parsed = scenarioSchema.safeParse(JSON.parse(readFileSync(join(dir, f), 'utf8')));
    if (!parsed.success) {
      throw new Error(
        `chaos/scenarios/${f}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    if (parsed.data.name !== basename(f, '.json'))
      throw new Error(`chaos/scenarios/${f}: name must be ${basename(f, '.json')}`);
    out.push(parsed.data);
  }
  return out;
}
