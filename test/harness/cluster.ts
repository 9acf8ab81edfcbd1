/**
 * Helpers for tests that start a cluster of real node processes on distinct
 * loopback addresses (127.0.0.11, .12, …).
 */
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeConfig, type NodeProcess, startNodeProcess } from './node-process.js';

/** `n` member addresses on one port: 127.0.0.{from}…, as a static member list names them. */
export function addresses(n: number, port: number, from = 11): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${from + i}:${port}`);
}

/** An fs origin root holding `files` under container `models`. */
export function seedOrigin(files: Record<string, Buffer>, container = 'models'): string {
  const root = mkdtempSync(join(tmpdir(), 'wc-origin-'));
  for (const [key, bytes] of Object.entries(files)) replaceAtOrigin(root, key, bytes, container);
  return root;
}

/** Writes a new version of an object the way a publisher should: a temp file, then an atomic rename. */
export function replaceAtOrigin(root: string, key: string, bytes: Buffer, container = 'models'): void {
  const p = join(root, container, key);
  mkdirSync(join(p, '..'), { recursive: true });
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, p);
}

/** A member list as the config takes it: static addresses, or a DNS name to resolve. */
export type Members = readonly string[] | { readonly dns: Record<string, unknown> };

const fsOrigin = (root: string | undefined) =>
  root === undefined ? {} : { origin: { type: 'fs', fs: { root } } };

const membersConfig = (m: Members) => (Array.isArray(m) ? { static: m } : m);

export interface MemberOptions {
  /** The fs origin root (seedOrigin); unset: `config` names the origin. */
  readonly root?: string;
  /** The address this member advertises (cluster.self). */
  readonly self: string;
  readonly members: Members;
  /** Where its transport listens, when not `self` (behind a proxy that partitions it). */
  readonly listen?: string;
  /** Reuse a directory (its NVMe tier survives a restart). */
  readonly dir?: string;
  /** Merged over the member's config (leases, cluster tuning, ...). */
  readonly config?: Record<string, unknown>;
  /** The started process is pushed here, for an afterEach that kills them all. */
  readonly running?: NodeProcess[];
  /** How long it may take to become ready (a loaded machine: more than the default). */
  readonly timeoutMs?: number;
}

/** Cluster tests read in 256 KiB chunks: files of a few chunks cross boundaries and stay small. */
const CLUSTER_CHUNK = '256KiB';

/** A cluster member (a node process) on its own loopback address, over an fs origin. */
export async function startMember(o: MemberOptions): Promise<NodeProcess> {
  const p = await startNodeProcess({
    dir: o.dir,
    timeoutMs: o.timeoutMs,
    config: mergeConfig(
      {
        ...fsOrigin(o.root),
        cache: { chunkSize: CLUSTER_CHUNK },
        transport: { listen: o.listen ?? o.self },
        cluster: { self: o.self, members: membersConfig(o.members) },
      },
      o.config ?? {},
    ),
  });
  o.running?.push(p);
  return p;
}

export interface SidecarOptions {
  /** The fs origin root; unset: `config` names the origin. */
  readonly root?: string;
  readonly members: Members;
  readonly config?: Record<string, unknown>;
  readonly running?: NodeProcess[];
  readonly timeoutMs?: number;
}

/** A sidecar in front of `members`, with its unix socket at `<dir>/weightcache.sock`. */
export async function startSidecar(o: SidecarOptions): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'wc-sidecar-'));
  const p = await startNodeProcess({
    dir,
    role: 'sidecar',
    timeoutMs: o.timeoutMs,
    config: mergeConfig(
      {
        ...fsOrigin(o.root),
        cache: { chunkSize: CLUSTER_CHUNK },
        cluster: { members: membersConfig(o.members) },
        sidecar: { socket: join(dir, 'weightcache.sock') },
      },
      o.config ?? {},
    ),
  });
  o.running?.push(p);
  return p;
}
