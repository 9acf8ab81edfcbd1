/**
 * Scenarios are data (loadtest/scenarios/*.json|yaml), validated here with
 * one schema per kind, so adding a case is editing a file, not the runner.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const common = {
  name: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  /** What the scenario measures, for docs/performance.md. */
  describe: z.string(),
  /** Excluded from `all` (e.g. smoke). */
  inAll: z.boolean().default(true),
};

const weightcacheSpec = z.strictObject({
  dramBytes: z.number().int().positive(),
  nvmeBytes: z.number().int().positive(),
  chunkBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 2 ** 20),
  /**
   * The HTTP doors to measure, one node each (http.door, and http.threads for
   * the native door, and the front door the clients read through); default:
   * the JavaScript door only, through /v1/objects.
   */
  doors: z
    .array(
      z.strictObject({
        door: z.enum(['js', 'native']),
        threads: z.number().int().min(1).max(32).optional(),
        /** http.tls with a self-signed certificate (the node then serves HTTPS from node:https). */
        tls: z.boolean().optional(),
        /**
         * The door the clients read through: /v1/objects (default), the S3 door's GetObject (/s3, auth
         * off), or GetObject signed (auth on, every request a presigned SigV4 URL).
         */
        via: z.enum(['objects', 's3', 's3-signed', 'azure', 'azure-sas']).optional(),
      }),
    )
    .min(1)
    .default([{ door: 'js' }]),
});

export const httpRangesSchema = z.strictObject({
  ...common,
  kind: z.literal('http-ranges'),
  /** dram: hits from the node's DRAM; nvme: DRAM too small, page cache dropped before each run. */
  tier: z.enum(['dram', 'nvme']),
  fileBytes: z.number().int().positive(),
  rangeBytes: z.array(z.number().int().positive()).min(1),
  conns: z.number().int().min(1).max(1024),
  clients: z.array(z.enum(['rangeclient', 'wrk', 'rangeclient-trunc'])).min(1),
  servers: z.array(z.enum(['weightcache', 'nginx', 'nginx-tls', 'varnish'])).min(1),
  repeats: z.number().int().min(1).max(20),
  durationS: z.number().positive(),
  warmupS: z.number().min(0),
  weightcache: weightcacheSpec,
  /** iperf3 loopback ceiling, single and this many parallel streams (0 = skip). */
  iperfStreams: z.number().int().min(0).default(0),
  /** fio O_DIRECT jobs run beside the servers (disk ceiling). */
  fio: z
    .array(
      z.strictObject({
        case: z.string(),
        rw: z.enum(['read', 'randread']),
        blockBytes: z.number().int().positive(),
        iodepth: z.number().int().min(1).max(256),
      }),
    )
    .default([]),
});

export const coldFillSchema = z.strictObject({
  ...common,
  kind: z.literal('cold-fill'),
  modelBytes: z.number().int().positive(),
  shardBytes: z.number().int().positive(),
  origins: z.array(z.enum(['fs', 'http', 'azure'])).min(1),
  conns: z.number().int().min(1).max(256),
  repeats: z.number().int().min(1).max(20),
  weightcache: weightcacheSpec,
});

export const externalSchema = z.strictObject({
  ...common,
  kind: z.literal('external'),
  /** Candidate entry points (another team's benchmark); the first that exists is run. */
  entries: z.array(z.string()).min(1),
  /** Command to run (argv), from the repo root; {entry} is replaced. */
  command: z.array(z.string()).min(1),
  /** Where that command writes its rows (same row shape as ours). */
  results: z.string(),
  timeoutS: z.number().positive().max(600),
  /** Why it cannot run, when the entry is absent. */
  missingReason: z.string(),
});

export const crc32cSchema = z.strictObject({
  ...common,
  kind: z.literal('crc32c'),
  /** Buffer sizes checksummed (and copied, for memcpy). */
  bufferBytes: z
    .array(
      z
        .number()
        .int()
        .positive()
        .max(64 * 2 ** 20),
    )
    .min(1),
  /** Block sizes a 4 MiB chunk is checked by. */
  blockBytes: z
    .array(
      z
        .number()
        .int()
        .min(512)
        .max(4 * 2 ** 20),
    )
    .default([]),
  /** Per measurement. */
  seconds: z.number().positive().max(10),
  repeats: z.number().int().min(1).max(20),
});

export const nvmeReadsSchema = z.strictObject({
  ...common,
  kind: z.literal('nvme-reads'),
  chunks: z.number().int().min(1).max(4096),
  chunkBytes: z.number().int().positive(),
  queueDepth: z.number().int().min(1).max(256),
  durationS: z.number().positive(),
  repeats: z.number().int().min(1).max(20),
  variants: z
    .array(
      z.strictObject({
        label: z.string(),
        blockBytes: z.number().int().min(4096),
        directIo: z.boolean(),
        io: z.enum(['auto', 'threads']),
      }),
    )
    .min(1),
  reads: z
    .array(z.strictObject({ label: z.string(), bytes: z.number().int().positive(), aligned: z.boolean() }))
    .min(1),
  /** fio O_DIRECT random reads of each aligned size at the same queue depth. */
  fio: z.boolean().default(true),
  /** The same reads without JavaScript (raw io_uring, and the native reader with its checks). */
  native: z.boolean().default(true),
});

export const mountSchema = z.strictObject({
  ...common,
  kind: z.literal('mount'),
  /** Bytes of tensors in the safetensors file read (sequentially, and by safe_open). */
  tensorBytes: z
    .number()
    .int()
    .min(2 ** 20)
    .max(16 * 2 ** 30),
  tensors: z.number().int().min(1).max(4096),
  chunkBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 2 ** 20),
  repeats: z.number().int().min(1).max(20),
});

export const scenarioSchema = z.discriminatedUnion('kind', [
  httpRangesSchema,
  coldFillSchema,
  externalSchema,
  crc32cSchema,
  nvmeReadsSchema,
  mountSchema,
]);
export type Scenario = z.infer<typeof scenarioSchema>;
export type HttpRangesScenario = z.infer<typeof httpRangesSchema>;
export type ColdFillScenario = z.infer<typeof coldFillSchema>;
export type ExternalScenario = z.infer<typeof externalSchema>;
export type Crc32cScenario = z.infer<typeof crc32cSchema>;
export type NvmeReadsScenario = z.infer<typeof nvmeReadsSchema>;
export type MountScenario = z.infer<typeof mountSchema>;

export function loadScenarios(dir: string): Scenario[] {
  const out: Scenario[] = [];
  for (const f of readdirSync(dir).sort()) {
    const ext = extname(f);
    if (!['.json', '.yaml', '.yml'].includes(ext)) continue;
    const text = readFileSync(join(dir, f), 'utf8');
    const raw: unknown = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    const parsed = scenarioSchema.safeParse(raw);
    if (!parsed.success) {
      throw new Error(
        `loadtest/scenarios/${f}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    if (parsed.data.name !== basename(f, ext))
      throw new Error(`loadtest/scenarios/${f}: name must be ${basename(f, ext)}`);
    out.push(parsed.data);
  }
  return out;
}
