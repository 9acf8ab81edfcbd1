/**
 * A real RESP server over a real fs origin in a temp dir (DRAM tier only, a
 * small chunk size so ranges cross chunk boundaries), on an ephemeral port.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TokenSet } from '../../src/auth/tokens.js';
import type {
  Invalidate,
  InvalidationResult,
  InvalidationSource,
  InvalidationTarget,
} from '../../src/coherence/invalidation.js';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { Limiter } from '../../src/fill/limiter.js';
import { NativeFastPath } from '../../src/http/fast-path.js';
import { createLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { PrefetchJobs } from '../../src/prefetch/jobs.js';
import { ReadPath } from '../../src/read/read-path.js';
import type { RespLimits } from '../../src/resp/limits.js';
import { type RespServer, startRespServer } from '../../src/resp/server.js';
import { TieredStore } from '../../src/store/tiered.js';

export const CHUNK = 64 * 1024;

export interface Harness {
  readonly port: number;
  readonly root: string;
  readonly server: RespServer;
  readonly metrics: Metrics;
  readonly origin: FsOrigin;
  /** Bytes of every object put, by 'container/key'. */
  readonly objects: Map<string, Buffer>;
  readonly leases: LeaseTable;
  put(name: string, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly limits?: Partial<RespLimits>;
  /** A plain set: every token reads everything, none is admin. A TokenSet for admin/scoped grants. */
  readonly tokens?: ReadonlySet<string> | TokenSet;
  readonly resp3?: boolean;
  /** Lease term (default 200 ms, so replaced objects show up soon). */
  readonly leaseTermMs?: number;
  /** name → size of random objects to create before the server starts. */
  readonly seed?: Record<string, number>;
  /** The coherence layer's invalidation (WC.INVALIDATE); absent: the server has none. See invalidationSeam(). */
  readonly invalidate?: Invalidate;
  /** DRAM budget (default 256 MiB); also the capacity prefetch checks against. */
  readonly dramBytes?: number;
  /** Serve RESP over TLS with this PEM pair. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /**
   * resp.door. Default: WEIGHTCACHE_RESP_DOOR, else 'js'. vitest.config.ts runs the RESP suites a
   * second time with WEIGHTCACHE_RESP_DOOR=native (the 'resp-native' project), so every test here
   * holds on both doors.
   */
  readonly door?: 'js' | 'native';
  /** Native door: I/O threads (default 1, see below). */
  readonly threads?: number;
  /**
   * Native door: its fast path (GET/GETRANGE/STRLEN/EXISTS answered on the I/O threads from the
   * native store and the lease table's version bindings), as a node runs it. Default: on when the
   * door is native, unless WEIGHTCACHE_RESP_FAST=0.
   */
  readonly fast?: boolean;
}

/** The door the RESP suites run against (see HarnessOptions.door). */
export function doorUnderTest(): 'js' | 'native' {
  const d = process.env.WEIGHTCACHE_RESP_DOOR ?? 'js';
  if (d !== 'js' && d !== 'native') throw new Error(`WEIGHTCACHE_RESP_DOOR must be js or native, not '${d}'`);
  return d;
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
  const store = new TieredStore({ dramBytes: opts.dramBytes ?? 256 * 2 ** 20, nvme: null, metrics, log });
  // A short term by default: tests that replace an object see the new version soon.
  const door = opts.tls ? 'js' : (opts.door ?? doorUnderTest());
  const fast =
    door === 'native' && (opts.fast ?? process.env.WEIGHTCACHE_RESP_FAST !== '0')
      ? // The RESP door checks the grant JavaScript hands it at AUTH: the token table is HTTP's.
        new NativeFastPath(origin.id, CHUNK, null)
      : null;
  const leases = new LeaseTable({ origin, termMs: opts.leaseTermMs ?? 200, metrics, sink: fast });
  const readPath = new ReadPath({
    origin,
    leases,
    store,
    chunkSize: CHUNK,
    readAhead: 2,
    originLimiter: new Limiter(8, 4096, 'origin reads'),
    metrics,
    log,
  });
  const prefetch = new PrefetchJobs({
    resolve: (name, signal) => readPath.resolve(name, signal),
    warmChunk: (info, index, signal) => readPath.warm(info, index, signal),
    chunkSize: CHUNK,
    origin,
    log,
    capacityBytes: () => store.stats().dram.capacityBytes,
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
    prefetch,
    ...(opts.invalidate ? { invalidate: opts.invalidate } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
    // TLS is served by the JavaScript door only.
    door,
    fast: fast && { store: store.dram.nativeStore, bindings: fast.bindings },
    // One I/O thread: connections reach JavaScript in accept order, which the admission tests
    // ("the oldest stranger is closed first") rely on. test/resp/native-door.test.ts runs several.
    threads: opts.threads ?? 1,
  });
  return {
    port: server.address.port,
    root,
    server,
    metrics,
    origin,
    objects,
    leases,
    put,
    close: async () => {
      await server.close(1000);
      await store.close();
      await origin.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface InvalidationCall {
  readonly target: InvalidationTarget;
  readonly source: InvalidationSource;
  readonly signal: AbortSignal | undefined;
}

/**
 * A stand-in for the coherence layer's Invalidate: records every call, and
 * answers what `answer` returns (a result, or a thrown/rejected error). Until
 * `hold()` is released, calls wait — so a test can see a command block.
 */
export function invalidationSeam(
  answer: (call: InvalidationCall) => InvalidationResult | Promise<InvalidationResult>,
) {
  const calls: InvalidationCall[] = [];
  let gate: Promise<void> | null = null;
  let release: () => void = () => {};
  const called: Array<() => void> = [];
  const invalidate: Invalidate = async (target, source, signal) => {
    const call = { target, source, signal };
    calls.push(call);
    for (const w of called.splice(0)) w();
    if (gate) await gate;
    return answer(call);
  };
  return {
    invalidate,
    calls,
    /** Later calls wait until the returned function is called. */
    hold(): () => void {
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = null;
          resolve();
        };
      });
      return () => release();
    },
    /** Resolves once `n` calls in all have been made. */
    async calledTimes(n: number): Promise<void> {
      while (calls.length < n) await new Promise<void>((resolve) => called.push(resolve));
    },
  };
}
