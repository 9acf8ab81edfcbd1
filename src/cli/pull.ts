/**
 * `weightcache pull container/prefix --to DIR`: materialises a model directory
 * through a node or sidecar.
 *
 *   manifest (once: every file's version pinned with If-Match) ─► chunk list
 *   minus chunks a previous run verified ─► N workers: range GET of one chunk,
 *   streamed to its offset in the staged file, CRC32C checked ─► periodic
 *   fdatasync + state.json (resume points) ─► fsync all ─► rename into DIR.
 *
 * One pull is one manifest: a file replaced at the origin mid-pull answers 412
 * and the pull fails, rather than mixing versions. See staging.ts for how DIR
 * stays absent until the model is complete, and docs/pull.md for the user's view.
 */
import { setMaxListeners } from 'node:events';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { chunkCount, chunkExtent } from '../chunk/name.js';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { settleBounded } from '../fill/pool.js';
import { validateContainer, validateKey } from '../origin/names.js';
import { type ChunkRef, NodeClient } from './node-client.js';
import { progressMode, startProgress } from './progress.js';
import {
  bitmap,
  datasyncFile,
  type FileState,
  isSet,
  localPath,
  type PullState,
  Staging,
  setBit,
} from './staging.js';

export interface PullOptions {
  readonly target: string;
  readonly to: string;
  readonly from: string;
  readonly concurrency: number;
  readonly force: boolean;
  readonly quiet: boolean;
  /** Attempts per chunk (the first included) before the pull fails. */
  readonly attempts: number;
  /** Bearer token for a node or sidecar with auth. */
  readonly token?: string;
}

export interface ManifestFile {
  readonly key: string;
  readonly version: string;
  readonly size: number;
}

interface Manifest {
  readonly container: string;
  readonly prefix: string;
  readonly files: readonly ManifestFile[];
}

/** Thrown into the workers on Ctrl-C / SIGTERM. */
class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

export const MAX_CONCURRENCY = 256;
const FLUSH_INTERVAL_MS = 500;

/**
 * `container/prefix`, the prefix taken as a directory: `demo/tiny-llama` lists
 * `tiny-llama/…`, so `tiny-llama-v2/…` never sneaks into the pull.
 */
export function parseTarget(target: string): { container: string; prefix: string } {
  const slash = target.indexOf('/');
  const container = validateContainer(slash < 0 ? target : target.slice(0, slash));
  let prefix = slash < 0 ? '' : target.slice(slash + 1);
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  validateKey(prefix, { allowEmpty: true, what: 'prefix' });
  return { container, prefix };
}

export async function runPull(o: PullOptions): Promise<void> {
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > MAX_CONCURRENCY) {
    throw new CacheError('BAD_REQUEST', `--concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  if (!Number.isInteger(o.attempts) || o.attempts < 1 || o.attempts > 100) {
    throw new CacheError('BAD_REQUEST', '--retries must be an integer from 0 to 99');
  }
  const { container, prefix } = parseTarget(o.target);
  const staging = new Staging(o.to);
  await staging.checkTarget(o.force);
  const ac = new AbortController();
  const onSignal = () => ac.abort(new Interrupted('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const client = new NodeClient(
    o.from,
    o.concurrency,
    { attempts: o.attempts, baseDelayMs: 200, maxDelayMs: 5000 },
    (what, err, attempt) => {
      if (!o.quiet)
        process.stderr.write(`weightcache pull: retrying ${what} (attempt ${attempt}): ${err.message}\n`);
    },
  );
  client.token = o.token;
  let locked = false;
  try {
    const status = await client.getJson<{ chunkSize?: unknown }>('/v1/status', ac.signal);
    const chunkSize = Number(status.chunkSize);
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
      throw new CacheError('BAD_REQUEST', `${client.base}/v1/status has no valid chunkSize`);
    }
    const manifest = checkManifest(
      await client.getJson<Manifest>(manifestPath(container, prefix), ac.signal),
      container,
      prefix,
    );
    if (manifest.files.length === 0) {
      throw new CacheError('NOT_FOUND', `no files under ${container}/${prefix} at ${client.base}`);
    }
    const paths = mapPaths(staging.tree, prefix, manifest.files);
    await staging.acquire();
    locked = true;
    const state = await resumeState(staging, container, prefix, chunkSize, manifest.files, paths, o.quiet);
    await transfer({ client, staging, state, manifest, paths, chunkSize, o, signal: ac.signal });
    await staging.commit(o.force);
    locked = false;
  } catch (err) {
    if (ac.signal.aborted && ac.signal.reason instanceof Interrupted) {
      process.stderr.write(
        `weightcache pull: interrupted; verified chunks are kept in ${staging.partial} — re-run the same command to resume\n`,
      );
      if (locked) await staging.release();
      process.exit(130);
    }
    throw err;
  } finally {
    if (locked) await staging.release().catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

async function transfer(x: {
  client: NodeClient;
  staging: Staging;
  state: PullState;
  manifest: Manifest;
  paths: Map<string, string>;
  chunkSize: number;
  o: PullOptions;
  signal: AbortSignal;
}): Promise<void> {
  const { client, staging, state, manifest, paths, chunkSize, o } = x;
  const queue: Array<ChunkRef & { path: string }> = [];
  let totalBytes = 0;
  let doneBytes = 0;
  for (const f of manifest.files) {
    totalBytes += f.size;
    const fs = state.files.get(f.key)!;
    for (let i = 0; i < chunkCount(f.size, chunkSize); i++) {
      const { offset, length } = chunkExtent(f.size, chunkSize, i);
      if (isSet(fs.done, i)) doneBytes += length;
      else
        queue.push({
          ...f,
          container: manifest.container,
          index: i,
          offset,
          length,
          path: paths.get(f.key)!,
        });
    }
  }
  const resumedBytes = doneBytes;
  const free = await staging.freeBytes();
  if (free < totalBytes - resumedBytes) {
    throw new CacheError(
      'DISK_FULL',
      `not enough disk space: the pull needs ${formatBytes(totalBytes - resumedBytes)}, ${formatBytes(free)} are free under ${dirname(staging.dir)}`,
    );
  }
  const label = `${manifest.container}/${manifest.prefix}`;
  const progress = startProgress({ label, totalBytes, startBytes: doneBytes, mode: progressMode(o.quiet) });
  const t0 = performance.now();

  // Resume points: chunks verified since the last flush become durable
  // (fdatasync of their files) before their bits reach state.json. At most one
  // flush every FLUSH_INTERVAL_MS, one at a time: fsyncs cost the disk and the
  // thread pool that the writes need, and a crash loses at most that much work.
  let pending: Array<{ key: string; index: number; path: string }> = [];
  let lastFlush = 0;
  let timer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> = Promise.resolve();
  const flushOnce = async () => {
    lastFlush = Date.now();
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    for (const p of new Set(batch.map((b) => b.path))) await datasyncFile(p);
    for (const b of batch) setBit(state.files.get(b.key)!.done, b.index);
    await staging.save(state);
  };
  const scheduleFlush = () => {
    if (timer) return;
    timer = setTimeout(
      () => {
        timer = null;
        flushing = flushing.then(flushOnce).catch((err) => {
          failure ??= err;
          stop.abort(err);
        });
      },
      Math.max(0, lastFlush + FLUSH_INTERVAL_MS - Date.now()),
    );
  };

  let failure: unknown = null;
  const stop = new AbortController();
  // Every request in flight listens on it.
  setMaxListeners(o.concurrency + 16, stop.signal);
  const onOuter = () => stop.abort(x.signal.reason);
  x.signal.addEventListener('abort', onOuter, { once: true });
  // One handle per file while its chunks are in flight (the queue is in file
  // order, so about `concurrency` files are open at once, whatever the count).
  const handles = new Map<string, { fh: Promise<FileHandle> | null; left: number }>();
  for (const c of queue) {
    const h = handles.get(c.path) ?? { fh: null, left: 0 };
    h.left++;
    handles.set(c.path, h);
  }
  const handleOf = (path: string) => {
    const h = handles.get(path)!;
    h.fh ??= open(path, 'r+');
    return h.fh;
  };
  const doneWith = async (path: string) => {
    const h = handles.get(path)!;
    if (--h.left > 0) return;
    handles.delete(path);
    await (await h.fh!).close();
  };
  await settleBounded(
    queue,
    o.concurrency,
    async (c) => {
      await client.readChunk(
        c,
        await handleOf(c.path),
        (n) => {
          doneBytes += n;
          progress.update(doneBytes);
        },
        stop.signal,
      );
      await doneWith(c.path);
      pending.push({ key: c.key, index: c.index, path: c.path });
      scheduleFlush();
    },
    {
      signal: stop.signal,
      onFirstFailure: (err) => {
        failure ??= err;
        stop.abort(err);
      },
    },
  );
  x.signal.removeEventListener('abort', onOuter);
  progress.stop();
  // Keep what was verified, also on failure: a re-run (after ENOSPC, a dead node) resumes from here.
  for (const h of handles.values()) await (await h.fh?.catch(() => null))?.close();
  if (timer) clearTimeout(timer);
  try {
    await flushing;
    await flushOnce();
  } catch (err) {
    failure ??= err; // the first failure is the one to report (a full disk fails both)
  }
  if (x.signal.aborted) throw x.signal.reason;
  if (failure) throw explain(failure, staging);
  const secs = (performance.now() - t0) / 1000;
  const moved = totalBytes - resumedBytes;
  if (!o.quiet) {
    process.stdout.write(
      `pulled ${label} into ${staging.dir}: ${manifest.files.length} files, ${formatBytes(totalBytes)} in ${secs.toFixed(1)}s` +
        ` (${formatBytes(Math.round(moved / Math.max(secs, 0.001)))}/s` +
        (resumedBytes > 0 ? `, ${formatBytes(resumedBytes)} resumed from an earlier run)\n` : ')\n'),
    );
  }
}

/** Pins: files whose version is unchanged since the last run keep their verified chunks. */
async function resumeState(
  staging: Staging,
  container: string,
  prefix: string,
  chunkSize: number,
  files: readonly ManifestFile[],
  paths: Map<string, string>,
  quiet: boolean,
): Promise<PullState> {
  const prev = await staging.load(container, prefix, chunkSize);
  const state: PullState = { container, prefix, chunkSize, files: new Map<string, FileState>() };
  let kept = 0;
  let restarted = 0;
  for (const f of files) {
    const old = prev?.files.get(f.key);
    const path = paths.get(f.key)!;
    const staged = await stat(path).then(
      (s) => s.isFile() && s.size === f.size,
      () => false,
    );
    const same = old !== undefined && old.version === f.version && old.size === f.size && staged;
    const n = chunkCount(f.size, chunkSize);
    if (same) {
      kept += countBits(old.done, n);
      state.files.set(f.key, { version: f.version, size: f.size, done: old.done });
    } else {
      if (old) restarted++;
      state.files.set(f.key, { version: f.version, size: f.size, done: bitmap(n) });
    }
    await staging.prepareFile(path, f.size, !same);
  }
  await staging.removeExtra(new Set(paths.values()));
  await staging.save(state);
  if (prev && !quiet) {
    process.stderr.write(
      `weightcache pull: resuming from ${staging.partial}: ${kept} chunks already verified` +
        (restarted > 0 ? `, ${restarted} files changed version and restart` : '') +
        '\n',
    );
  }
  return state;
}

function countBits(b: Uint8Array, n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (isSet(b, i)) c++;
  return c;
}

/** A manifest is input from the network: checked before a single byte is written. */
function checkManifest(m: Manifest, container: string, prefix: string): Manifest {
  if (!m || m.container !== container || !Array.isArray(m.files)) {
    throw new CacheError('BAD_REQUEST', `the manifest of ${container}/${prefix} is malformed`);
  }
  for (const f of m.files) {
    const ok =
      typeof f.key === 'string' &&
      typeof f.version === 'string' &&
      f.version !== '' &&
      !f.version.includes('"') &&
      Number.isSafeInteger(f.size) &&
      f.size >= 0;
    if (!ok) throw new CacheError('BAD_REQUEST', `the manifest has a malformed entry ${JSON.stringify(f)}`);
  }
  return { container, prefix, files: m.files };
}

function mapPaths(root: string, prefix: string, files: readonly ManifestFile[]): Map<string, string> {
  const paths = new Map<string, string>();
  const taken = new Set<string>();
  for (const f of files) {
    const p = localPath(root, prefix, f.key);
    if (taken.has(p)) throw new CacheError('BAD_KEY', `two files map to ${p}`);
    taken.add(p);
    paths.set(f.key, p);
  }
  // A key that is also a directory of another key ('a' and 'a/b') cannot both be files.
  for (const p of taken) {
    for (let d = dirname(p); d.length > root.length; d = dirname(d)) {
      if (taken.has(d)) throw new CacheError('BAD_KEY', `${d} would be both a file and a directory`);
    }
  }
  return paths;
}

function manifestPath(container: string, prefix: string): string {
  return `/v1/manifests/${encodeURIComponent(container)}/${prefix.split('/').map(encodeURIComponent).join('/')}`;
}

function explain(err: unknown, staging: Staging): Error {
  if (CacheError.is(err, 'DISK_FULL')) {
    return new CacheError(
      'DISK_FULL',
      `${err.message}; free space under ${dirname(staging.dir)} and re-run: verified chunks are kept in ${staging.partial}`,
    );
  }
  if (CacheError.is(err, 'TIER_IO')) {
    return new CacheError('TIER_IO', `${err.message}; re-run to resume from ${staging.partial}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
