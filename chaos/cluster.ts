/**
 * Members of a cluster on distinct loopback addresses (127.0.0.x, one
 * transport port), each with its own data directory, that a scenario can
 * SIGKILL and start again under the same address — a crash and a warm
 * restart — plus sidecars in front of them. Every process goes through
 * loadtest/peers/weightcache.ts, so it is stopped by PID whatever happens.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startWeightcacheProcess, type WeightcacheProcess } from '../loadtest/peers/weightcache.js';
import { freePort } from '../loadtest/ports.js';

export class Member {
  proc: WeightcacheProcess | null = null;
  starts = 0;

  constructor(
    readonly name: string,
    readonly address: string,
    readonly dir: string,
    private readonly config: () => Record<string, unknown>,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async start(): Promise<WeightcacheProcess> {
    this.starts++;
    this.proc = await startWeightcacheProcess({
      role: 'node',
      workDir: this.dir,
      name: this.name,
      config: this.config(),
    });
    return this.proc;
  }

  /** SIGKILL (no drain, no flush); the data directory stays for the next start. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    await p?.kill();
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    await p?.stop();
  }
}

export interface ClusterOptions {
  readonly workDir: string;
  readonly nodes: number;
  /** Last octet of the first member's address (127.0.0.{from}, {from + 1}, …). */
  readonly from: number;
  /** Config shared by nodes and sidecars (origin, cache.chunkSize, leases, auth, …). */
  readonly common: Record<string, unknown>;
  /** Per node, merged over `common` (tiers). */
  readonly node: (dir: string) => Record<string, unknown>;
  readonly clusterTuning?: Record<string, unknown>;
}

export interface Cluster {
  readonly members: Member[];
  readonly addresses: string[];
  startSidecar(name: string, extra: Record<string, unknown>): Promise<WeightcacheProcess>;
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const port = await freePort();
  const addresses = Array.from({ length: o.nodes }, (_, i) => `127.0.0.${o.from + i}:${port}`);
  const cluster = (self?: string) => ({
    ...(self ? { self } : {}),
    members: { static: addresses },
    ...o.clusterTuning,
  });
  const members = addresses.map((address, i) => {
    const dir = join(o.workDir, `node${i}`);
    return new Member(`node${i}`, address, dir, () => ({
      ...merge(o.common, o.node(dir)),
      transport: { listen: address },
      cluster: cluster(address),
    }));
  });
  await Promise.all(members.map((m) => m.start()));
  return {
    members,
    addresses,
    async startSidecar(name, extra) {
      const dir = join(o.workDir, name);
      mkdirSync(dir, { recursive: true });
      return await startWeightcacheProcess({
        role: 'sidecar',
        workDir: dir,
        name,
        // Its own chunk directory unless `extra` says otherwise (the default, ./var/chunks, would be shared).
        config: {
          ...merge(
            merge(o.common, { cache: { nvme: { dir: join(dir, 'chunks'), maxBytes: '1GiB' } } }),
            extra,
          ),
          cluster: cluster(),
        },
      });
    },
  };
}

/** Two levels deep is all configs here need: `cache: {chunkSize}` + `cache: {dram}`. */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && prev && typeof v === 'object' && typeof prev === 'object' && !Array.isArray(v)
        ? { ...(prev as object), ...(v as object) }
        : v;
  }
  return out;
}
