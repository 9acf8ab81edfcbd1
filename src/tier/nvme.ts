/**
 * NVMe tier: one file per chunk (format in chunk-file.ts) under
 * `<dir>/<id[0..2]>/<id>`, id = chunkFileId(key). The two-hex-char fan-out
 * keeps each directory at ~1/256 of the files (a 50 GiB tier of 4 MiB chunks
 * is ~50 files per directory).
 *
 * Invariants:
 * - The in-memory index holds exactly the files this process has renamed into
 *   place or validated at start; `usedBytes` is the sum of their data lengths
 *   (headers add 4 KiB per file on disk, see docs/tiers.md) and, together with
 *   the bytes reserved by in-flight writes, never exceeds `budgetBytes`
 *   (maxBytes, or less when the device holds less: see fitBudgetToDevice).
 * - A file under its final name was complete when it was renamed there. A
 *   crash leaves at most temp files, which open() deletes; anything the page
 *   cache lost in a power cut fails the header or data CRC and is dropped.
 * - No bytes leave get() unless the header names this key and the data CRC32C
 *   matches. Every other outcome is a miss, so the caller refetches.
 * - put() never rejects: the cache degrades to DRAM + origin, it does not fail.
 *
 * One process owns a directory at a time (the node's data dir).
 */
import { constants as fsc } from 'node:fs';
import { type FileHandle, mkdir, open, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../chunk/checksum.js';
import { chunkFileId } from '../chunk/name.js';
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';
import { encodeChunkHeader, MAX_DATA_BYTES, MAX_KEY_BYTES } from './chunk-file.js';
import { errnoCode, makeDir, readChunkFile, writeChunkFileAtomic } from './chunk-io.js';
import { type IndexEntry, scanChunkDir } from './nvme-scan.js';
import type { Chunk, Tier, TierStats } from './tier.js';

/** The two pino methods the tier uses; a pino Logger fits. */
export interface TierLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface NvmeTierOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly metrics?: Metrics;
  readonly logger?: TierLogger;
  /** Puts past this many in flight are dropped, not queued (each holds a chunk in memory). Default 64. */
  readonly maxPendingWrites?: number;
  /** After a failed write, no write is tried for this long. Default 30 s. */
  readonly retryAfterMs?: number;
  /** fsync each chunk before its rename. Default false: see writeChunkFileAtomic(). */
  readonly fsync?: boolean;
  /** How long close() waits for in-flight writes. Default 10 s. */
  readonly closeTimeoutMs?: number;
  /** Clock seam for the degraded-mode backoff (tests). */
  readonly now?: () => number;
}

/** Where a chunk's bytes are on disk, for a sendfile from `dataOffset`. */
export interface ChunkLocation {
  readonly path: string;
  readonly dataOffset: number;
  readonly length: number;
  readonly crc32c: number;
}

const TIER = { tier: 'nvme' } as const;
/** Files not accessed for this long get their atime set on a hit, so LRU order survives a restart. */
const ATIME_REFRESH_MS = 60_000;

export class NvmeTier implements Tier {
  readonly name = 'nvme';
  /** Map order is LRU order: first = least recently used. */
  private readonly index = new Map<string, IndexEntry>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly knownSubdirs = new Set<string>();
  private usedBytes = 0;
  /** maxBytes, lowered while the device cannot hold that much. */
  private budgetBytes: number;
  private reservedBytes = 0;
  private tempCounter = 0;
  private degradedUntil: number | undefined;
  private lastOverloadLogAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  private scanned = false;
  private rebuilding: Promise<void> | undefined;
  /** Unlinks in progress by path: a write to the same path waits, so an old unlink cannot remove a new file. */
  private readonly removing = new Map<string, Promise<void>>();
  private readonly now: () => number;
  /** Puts dropped at the in-flight bounds (maxPendingWrites, or reservations filling the budget). */
  droppedWrites = 0;

  constructor(private readonly opts: NvmeTierOptions) {
    if (typeof opts.dir !== 'string' || opts.dir === '')
      throw new CacheError('CONFIG_INVALID', 'nvme tier: dir must be a non-empty path');
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0)
      throw new CacheError(
        'CONFIG_INVALID',
        `nvme tier: maxBytes must be a byte count, got ${opts.maxBytes}`,
      );
    if (
      opts.maxPendingWrites !== undefined &&
      !(Number.isSafeInteger(opts.maxPendingWrites) && opts.maxPendingWrites >= 1)
    )
      throw new CacheError(
        'CONFIG_INVALID',
        `nvme tier: maxPendingWrites must be a positive integer, got ${opts.maxPendingWrites}`,
      );
    this.now = opts.now ?? Date.now;
    this.budgetBytes = opts.maxBytes;
    opts.metrics?.tierDegraded.set(TIER, 0);
    this.publish();
  }

  /**
   * Opens the tier and rebuilds its index from the directory (warm restart).
   * An unusable directory does not throw: the tier starts empty and degraded,
   * and retries like any failed write.
   */
  static async open(opts: NvmeTierOptions): Promise<NvmeTier> {
    const tier = new NvmeTier(opts);
    try {
      await tier.rebuild();
    } catch (err) {
      tier.degrade(err, 'scan');
    }
    return tier;
  }

  /**
   * Loads the directory into the index. Runs in open(), or, if the directory
   * was unusable then, before the first write that retries: files already
   * there must be counted before new ones are added, or the tier overfills
   * the device. No temp file of this process exists while it runs (writes
   * wait for it), so the temp files it deletes are a dead process's.
   */
  private async rebuild(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    const found = await scanChunkDir(this.opts.dir, this.opts.metrics, this.opts.logger);
    for (const e of found) this.addEntry(e);
    this.scanned = true;
    await this.fitBudgetToDevice();
    await this.evictForReserved();
    this.publish();
    this.opts.logger?.info(
      { dir: this.opts.dir, entries: this.index.size, usedBytes: this.usedBytes },
      'nvme tier: index rebuilt',
    );
  }

  async get(key: string): Promise<Chunk | undefined> {
    const entry = this.index.get(key);
    if (!entry || this.closed) return undefined;
    let fh: FileHandle;
    try {
      fh = await open(entry.path, fsc.O_RDONLY);
    } catch (err) {
      // Evicted between the lookup and the open: a plain miss. Still indexed:
      // the file went away behind our back (or the device failed): counted.
      if (this.index.get(key) === entry) {
        this.forget(key);
        this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'read' });
        this.opts.logger?.warn({ err, key }, 'nvme tier: chunk file unreadable, dropped');
      }
      return undefined;
    }
    try {
      const got = await readChunkFile(fh, key, entry);
      if (typeof got === 'string') {
        // Not indexed any more: an overwrite or delete raced this read; not a corruption.
        if (this.index.get(key) !== entry) return undefined;
        this.forget(key);
        await this.removePath(entry.path);
        this.opts.metrics?.checksumFailures.inc(TIER);
        this.opts.logger?.warn({ key, path: entry.path, reason: got }, 'nvme tier: corrupt chunk dropped');
        return undefined;
      }
      if (this.index.get(key) === entry) {
        this.touch(key, entry);
        const wall = Date.now(); // wall time, not the backoff clock: it goes into the file's atime
        if (wall - entry.accessedMs > ATIME_REFRESH_MS) {
          entry.accessedMs = wall;
          const t = new Date(wall);
          await fh.utimes(t, t).catch(() => undefined); // recency hint only
        }
      }
      return got;
    } catch (err) {
      if (this.index.get(key) === entry) this.forget(key);
      this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'read' });
      this.opts.logger?.warn({ err, key }, 'nvme tier: read failed, chunk dropped');
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async put(key: string, chunk: Chunk): Promise<void> {
    if (this.closed) return;
    const size = chunk.data.length;
    if (size > this.budgetBytes || size > MAX_DATA_BYTES) return; // would evict everything and still not fit
    if (key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      this.opts.logger?.warn({ keyLength: key.length }, 'nvme tier: chunk key out of bounds, not stored');
      return;
    }
    const held = this.index.get(key);
    if (held && held.crc32c === chunk.crc32c >>> 0 && held.dataLength === size) {
      // Already on disk (a name's bytes never change): a use, not a 4 MiB rewrite.
      this.touch(key, held);
      return;
    }
    if (this.degradedUntil !== undefined && this.now() < this.degradedUntil) return;
    const running = this.inflight.get(key);
    if (running) return running; // same name, same bytes: one write is enough
    // Both bounds keep memory and the byte budget honest: in-flight chunks are
    // held in memory, and their reservations must fit in the budget by evicting
    // indexed files alone.
    if (
      this.inflight.size >= (this.opts.maxPendingWrites ?? 64) ||
      this.reservedBytes + size > this.budgetBytes
    ) {
      this.droppedWrites++;
      this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'overload' });
      if (this.now() - this.lastOverloadLogAt > (this.opts.retryAfterMs ?? 30_000)) {
        this.lastOverloadLogAt = this.now();
        this.opts.logger?.warn({ pending: this.inflight.size }, 'nvme tier: write queue full, dropping puts');
      }
      return;
    }
    // Checked last, as it reads all the bytes: only for a chunk about to be written.
    if (crc32c(chunk.data) !== chunk.crc32c >>> 0) {
      // Persisting bytes that are already wrong would only move the failure to a later read.
      this.opts.metrics?.checksumFailures.inc(TIER);
      this.opts.logger?.warn({ key }, 'nvme tier: chunk to store fails its checksum, dropped');
      return;
    }
    const p = this.write(key, chunk).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  async delete(key: string): Promise<boolean> {
    await this.inflight.get(key);
    const entry = this.index.get(key);
    if (!entry) return false;
    this.forget(key);
    await this.removePath(entry.path);
    return true;
  }

  /**
   * Where `key`'s bytes are, without reading them (sendfile path); counts as
   * a use for LRU. The file can be evicted or dropped at any moment after
   * this returns: a caller must treat ENOENT on open, or a short file, as a
   * miss, and should verify `crc32c` where it can.
   */
  locate(key: string): ChunkLocation | undefined {
    const entry = this.index.get(key);
    if (!entry) return undefined;
    this.touch(key, entry);
    return { path: entry.path, dataOffset: entry.dataOffset, length: entry.dataLength, crc32c: entry.crc32c };
  }

  stats(): TierStats {
    return { usedBytes: this.usedBytes, capacityBytes: this.budgetBytes, entries: this.index.size };
  }

  /** True while writes are suspended after a device error. */
  get degraded(): boolean {
    return this.degradedUntil !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.closeTimeoutMs ?? 10_000);
    });
    await Promise.race([Promise.allSettled([...this.inflight.values()]), timeout]);
    clearTimeout(timer);
  }

  private async write(key: string, chunk: Chunk): Promise<void> {
    const size = chunk.data.length;
    const id = chunkFileId(key);
    const subdir = join(this.opts.dir, id.slice(0, 2));
    const path = join(subdir, id);
    const tmp = `${path}.tmp-${process.pid}-${this.tempCounter++}`;
    // An overwrite drops the old entry now: its file is replaced by the rename
    // below, or removed if the write fails, so index and disk stay equal.
    const old = this.index.get(key);
    if (old) this.forget(key);
    this.reservedBytes += size;
    try {
      if (!this.scanned) {
        this.rebuilding ??= this.rebuild().finally(() => {
          this.rebuilding = undefined;
        });
        await this.rebuilding;
      }
      await this.evictForReserved(); // room for everything reserved, this chunk included
      if (!this.knownSubdirs.has(subdir)) {
        await makeDir(subdir);
        this.knownSubdirs.add(subdir);
      }
      const header = encodeChunkHeader(key, size, chunk.crc32c);
      await this.removing.get(path); // an unlink of this path still queued must not hit the new file
      await writeChunkFileAtomic(path, tmp, header, chunk.data, this.opts.fsync ?? false);
      this.reservedBytes -= size;
      this.addEntry({
        key,
        path,
        dataOffset: header.length,
        dataLength: size,
        crc32c: chunk.crc32c >>> 0,
        accessedMs: Date.now(),
      });
      if (this.degradedUntil !== undefined) {
        this.degradedUntil = undefined;
        this.opts.metrics?.tierDegraded.set(TIER, 0);
        this.opts.logger?.info({ dir: this.opts.dir }, 'nvme tier: writes succeed again, no longer degraded');
      }
    } catch (err) {
      this.reservedBytes -= size;
      if (old) await this.removePath(path);
      this.knownSubdirs.delete(subdir); // the directory may be what vanished
      this.degrade(err, 'write');
      if (errnoCode(err) === 'ENOSPC') await this.fitBudgetToDevice();
    } finally {
      this.publish();
    }
  }

  /** Evicts until the index plus in-flight reservations fit in the budget. */
  private evictForReserved(): Promise<void> {
    return this.evictDownTo(this.budgetBytes - this.reservedBytes);
  }

  /**
   * Evicts least-recently-used files until the index holds at most `bytes`.
   * Unlinks are awaited so the space is free on the device before the caller
   * writes.
   */
  private async evictDownTo(bytes: number): Promise<void> {
    const victims: IndexEntry[] = [];
    for (const [key, e] of this.index) {
      if (this.usedBytes <= bytes) break;
      this.forget(key);
      victims.push(e);
    }
    if (victims.length === 0) return;
    this.opts.metrics?.evictions.inc(TIER, victims.length);
    await Promise.all(victims.map((e) => this.removePath(e.path)));
  }

  /**
   * Lowers the budget to what the device can hold: the bytes the tier has
   * plus the free space, less 5% for headers (4 KiB per file) and other
   * writers. Runs at open and after each ENOSPC, so a tier configured larger
   * than its device (or sharing it) turns over its LRU at the size it really
   * has, instead of failing every write after the first full disk. Never
   * raises the budget above maxBytes; a restart re-measures.
   */
  private async fitBudgetToDevice(): Promise<void> {
    let free: number;
    try {
      const fs = await statfs(this.opts.dir);
      free = fs.bavail * fs.bsize;
    } catch {
      return; // keep the budget we have; the write path reports device errors
    }
    const fit = Math.min(this.opts.maxBytes, Math.floor((this.usedBytes + free) * 0.95));
    if (fit === this.budgetBytes) return;
    if (fit < this.budgetBytes)
      this.opts.logger?.warn(
        { dir: this.opts.dir, maxBytes: this.opts.maxBytes, budgetBytes: fit, freeBytes: free },
        'nvme tier: device holds less than maxBytes, budget lowered',
      );
    this.budgetBytes = fit;
    // Not evictForReserved: after ENOSPC the other in-flight writes are likely
    // failing too, and their reservations must not empty the tier.
    await this.evictDownTo(fit);
    this.publish();
  }

  private degrade(err: unknown, op: 'write' | 'scan'): void {
    this.opts.metrics?.tierErrors.inc({ ...TIER, op });
    const first = this.degradedUntil === undefined;
    const retryAfterMs = this.opts.retryAfterMs ?? 30_000;
    this.degradedUntil = this.now() + retryAfterMs;
    this.opts.metrics?.tierDegraded.set(TIER, 1);
    // Once per episode: a full disk fails every put, and one line says it all.
    if (first)
      this.opts.logger?.warn(
        { err, dir: this.opts.dir, code: errnoCode(err), retryAfterMs },
        'nvme tier: cannot write, degraded to DRAM + origin until a retry succeeds',
      );
  }

  private addEntry(e: IndexEntry): void {
    const prev = this.index.get(e.key);
    if (prev) this.usedBytes -= prev.dataLength;
    this.index.delete(e.key);
    this.index.set(e.key, e);
    this.usedBytes += e.dataLength;
  }

  private forget(key: string): void {
    const e = this.index.get(key);
    if (!e) return;
    this.index.delete(key);
    this.usedBytes -= e.dataLength;
  }

  private touch(key: string, entry: IndexEntry): void {
    this.index.delete(key);
    this.index.set(key, entry);
  }

  private removePath(path: string): Promise<void> {
    const p = unlink(path)
      .catch((err: unknown) => {
        if (errnoCode(err) === 'ENOENT') return;
        this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'delete' });
        this.opts.logger?.warn({ err, path }, 'nvme tier: could not delete chunk file');
      })
      .finally(() => {
        if (this.removing.get(path) === p) this.removing.delete(path);
      });
    this.removing.set(path, p);
    return p;
  }

  private publish(): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.tierUsedBytes.set(TIER, this.usedBytes);
    m.tierCapacityBytes.set(TIER, this.budgetBytes);
    m.tierEntries.set(TIER, this.index.size);
  }
}
