/**
 * A real RESP server over a real fs origin in a temp dir (DRAM tier only, a
 * small chunk size so ranges cross chunk boundaries), on an ephemeral port.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { Limiter } from '../../src/fill/limiter.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { ReadPath } from '../../src/read/read-path.js';
import type { RespLimits } from '../../src/resp/limits.js';
import { type RespServer, startRespServer } from '../../src/resp/server.js';
import { DramTier } from '../../src/tier/dram.js';

export const CHUNK = 64 * 1024;

export interface Harness {
  readonly port: number;
  readonly root: string;
  readonly server: RespServer;
  readonly metrics: Metrics;
  readonly origin: FsOrigin;
  /** Bytes of every object put, by 'container/key'. */
  readonly objects: Map<string, Buffer>;
  put(name: string, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly limits?: Partial<RespLimits>;
  readonly tokens?: ReadonlySet<string>;
  readonly resp3?: boolean;
  /** Lease term (default 200 ms, so replaced objects show up soon). */
  readonly leaseTermMs?: number;
  /** name → size of random objects to create before the server starts. */
  readonly seed?: Record<string, number>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'wc-resp-'));
  const objects = new Map<string, Buffer>();
  const put = async (name: string, bytes: Buffer) => {
    const path = join(root, ...name.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    objects.set(name, bytes);
  };
  for (const [name, size] of Object.entries(opts.seed ?? {})) await put(name, randomBytes(size));
  const log = createLogger('silent');
  const metrics = new Metrics();
  const origin = new FsOrigin({ root });
  const dram = new DramTier({ maxBytes: 256 * 2 ** 20, metrics });
  // A short term by default: tests that replace an object see the new version soon.
  const leases = new LeaseTable({ origin, termMs: opts.leaseTermMs ?? 200, metrics });
  const readPath = new ReadPath({
    origin,
    leases,
    dram,
    nvme: null,
    chunkSize: CHUNK,
    readAhead: 2,
    originLimiter: new Limiter(8, 4096, 'origin reads'),
    metrics,
    log,
  });
  const server = await startRespServer({
    host: '127.0.0.1',
    port: 0,
    readPath,
    origin,
    metrics,
    log,
    version: 'test',
    limits: opts.limits,
    tokens: opts.tokens ?? null,
    resp3: opts.resp3 ?? true,
  });
  return {
    port: server.address.port,
    root,
    server,
    metrics,
    origin,
    objects,
    put,
    close: async () => {
      await server.close(1000);
      await dram.close();
      await origin.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
