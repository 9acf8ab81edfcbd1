/**
 * NVMe tier: one file per chunk (format v2 in chunk-file.ts) under
 * `<dir>/<xx>/<object id>-<index>`. The two-hex-char fan-out keeps each
 * directory at ~1/256 of the files (a 50 GiB tier of 4 MiB chunks is ~50
 * files per directory), the chunks of one object spread over all of them.
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
 * - No bytes leave get() or readRange() unless the header names this key and
 *   every 4 KiB block they come from matches its CRC32C (checked natively as
 *   the blocks are read, nvme-reader.ts). Every other outcome is a miss, so
 *   the caller refetches.
 * - put() never rejects: the cache degrades to DRAM + origin, it does not fail.
 * - One process owns a directory: open() takes an exclusive lock
 *   (weightcache.lock, flock) held until close() or exit, and refuses to
 *   start when another process holds it.
 * - Version 1 files (one CRC per chunk) are indexed at start and rewritten as
 *   version 2 the first time they are read (migrate()), so an upgrade keeps
 *   the cache without reading every file at start.
 */
import { mkdir, statfs, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { CacheError } from '../errors/cache-error.js';
import { binding } from '../transport/binding.js';
import {
  type ChunkFileName,
  chunkFileName,
  DEFAULT_BLOCK_BYTES,
  encodeChunkHeader,
  MAX_DATA_BYTES,
  MAX_KEY_BYTES,
} from './chunk-file.js';
import { errnoCode, makeDir, readV1ChunkFile, writeChunkFileAtomic } from './chunk-io.js';
import { ChunkIndex, type NativeNvmeSink } from './nvme-index.js';
import { type NvmeTierOptions, openReader, validateNvmeOptions } from './nvme-options.js';
import type { NvmeReader } from './nvme-reader.js';
import { type IndexEntry, scanChunkDir } from './nvme-scan.js';
import type { Chunk, Tier, TierStats } from './tier.js';

export type { NvmeTierOptions, TierLogger } from './nvme-options.js';

/** Where a chunk's bytes are on disk, for a sendfile from `dataOffset`. */
export interface ChunkLocation {
  readonly path: string;
  readonly dataOffset: number;
  readonly length: number;
  readonly crc32c: number;
}

const TIER = { tier: 'nvme' } as const;
/**
 * The fraction (0-1) of the device's space (what the tier holds plus what is
 * free) the tier may fill when the device is smaller than maxBytes: the rest is
 * left to the filesystem's own metadata and other writers, so writes do not
 * fail with ENOSPC before the LRU turns over.
 */
const DEVICE_FILL_FRACTION = 0.95;
/** Files not accessed for this long get their atime set on a hit, so LRU order survives a restart. */
const ATIME_REFRESH_MS = 60_000;

export class NvmeTier implements Tier {
  readonly name = 'nvme';
  private readonly index = new ChunkIndex();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly knownSubdirs = new Set<string>();
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
  private reader: NvmeReader | undefined;
  private lockFd: number | undefined;
  private detachMetrics: (() => void) | undefined;
  /** Version 1 files being read and rewritten as version 2, by key. */
  private readonly migrating = new Map<string, Promise<Chunk | undefined>>();
  private loggedMigration = false;
  private checkedDirect = false;

  constructor(private readonly opts: NvmeTierOptions) {
    validateNvmeOptions(opts);
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
    const { reader, detach } = openReader(opts);
    tier.reader = reader;
    tier.detachMetrics = detach;
    try {
      await tier.rebuild();
    } catch (err) {
      if (CacheError.is(err, 'CONFIG_INVALID')) {
        await tier.close(); // another process holds the directory: refuse to start
        throw err;
      }
      tier.degrade(err, 'scan');
    }
    return tier;
  }

  /**
   * The exclusive lock on the directory, before anything in it is touched
   * (the scan deletes temp files: only the owner's may go). Another holder
   * is a configuration error (CONFIG_INVALID), naming the directory and pid.
   */
  private lock(): void {
    if (this.lockFd !== undefined) return;
    try {
      this.lockFd = binding().nvmeLockDir(this.opts.dir);
    } catch (err) {
      if (errnoCode(err) === 'ELOCKED')
        throw new CacheError('CONFIG_INVALID', `nvme tier: ${(err as Error).message}`);
      throw err;
    }
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
    this.lock();
    const found = await scanChunkDir(this.opts.dir, this.opts.metrics, this.opts.logger);
    for (const e of found) this.index.add(e);
    this.scanned = true;
    await this.fitBudgetToDevice();
    await this.evictForReserved();
    this.publish();
    let v1 = 0;
    for (const e of this.index.values()) if (e.format === 1) v1++;
    this.opts.logger?.info(
      { dir: this.opts.dir, entries: this.index.size, usedBytes: this.index.usedBytes, version1Files: v1 },
      'nvme tier: index rebuilt',
    );
  }

  async get(key: string): Promise<Chunk | undefined> {
    const entry = this.index.get(key);
    if (!entry || this.closed) return undefined;
    if (entry.format === 1) return this.migrate(key, entry);
    const data = await this.readFile(key, entry, 0, entry.dataLength);
    return data && { data, crc32c: entry.crc32c };
  }

  /**
   * Bytes [offset, offset + length) of a chunk, reading only the 4 KiB blocks
   * that hold them, each verified against its CRC32C; undefined on a miss
   * (not here, or dropped as damaged). The read path serves a range that is
   * not a whole chunk this way, instead of reading the whole chunk.
   */
  async readRange(key: string, offset: number, length: number): Promise<Buffer | undefined> {
    const entry = this.index.get(key);
    if (!entry || this.closed) return undefined;
    if (offset < 0 || length < 0 || offset + length > entry.dataLength)
      throw new CacheError(
        'INTERNAL',
        `nvme readRange: bytes ${offset}+${length} of a ${entry.dataLength}-byte chunk`,
      );
    if (entry.format === 1) return (await this.migrate(key, entry))?.data.subarray(offset, offset + length);
    return this.readFile(key, entry, offset, length);
  }

  /** A verified read of a v2 file; every failure is a miss, and a damaged file is dropped. */
  private async readFile(
    key: string,
    entry: IndexEntry,
    offset: number,
    length: number,
  ): Promise<Buffer | undefined> {
    const reader = this.reader;
    if (!reader) return undefined;
    const r = await reader.read(entry, key, offset, length);
    if (r.ok) {
      if (this.index.get(key) === entry) this.used(key, entry);
      return r.data;
    }
    if (r.kind === 'cancelled') return undefined;
    if (r.kind === 'busy') {
      this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'overload' });
      return undefined;
    }
    // Not indexed any more: an overwrite, delete or eviction raced this read; not a fault.
    if (this.index.get(key) !== entry) return undefined;
    this.index.forget(key);
    if (r.kind === 'corrupt') {
      await this.removePath(entry.path);
      this.opts.metrics?.checksumFailures.inc(TIER);
      this.opts.logger?.warn({ key, path: entry.path, reason: r.reason }, 'nvme tier: corrupt chunk dropped');
    } else {
      // Gone from under the index (deleted by hand) or the device failed: not deleted on a guess.
      reader.forget(entry.path);
      this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'read' });
      this.opts.logger?.warn(
        { key, path: entry.path, code: r.code, reason: r.reason },
        'nvme tier: chunk file unreadable, dropped',
      );
    }
    return undefined;
  }

  /** A hit: most recently used, and at most once a minute the file's times, so the order survives a restart. */
  private used(key: string, entry: IndexEntry): void {
    this.index.touch(key, entry);
    const wall = Date.now(); // wall time, not the backoff clock: it goes into the file's atime
    if (wall - entry.accessedMs > ATIME_REFRESH_MS) {
      entry.accessedMs = wall;
      const t = new Date(wall);
      void utimes(entry.path, t, t).catch(() => undefined); // recency hint only
    }
    if (!this.checkedDirect && this.reader) {
      this.checkedDirect = true;
      if ((this.opts.directIo ?? true) && !this.reader.stats().direct)
        this.opts.logger?.info(
          { dir: this.opts.dir },
          'nvme tier: the filesystem refuses O_DIRECT; reads use the page cache',
        );
    }
  }

  /**
   * A version 1 file, read whole and checked against its one CRC, served,
   * and rewritten as version 2 in the background (not awaited: the reader
   * does not wait for the disk). Concurrent reads of one key share one.
   */
  private migrate(key: string, entry: IndexEntry): Promise<Chunk | undefined> {
    const running = this.migrating.get(key);
    if (running) return running;
    const p = this.migrateOne(key, entry).finally(() => this.migrating.delete(key));
    this.migrating.set(key, p);
    return p;
  }

  private async migrateOne(key: string, entry: IndexEntry): Promise<Chunk | undefined> {
    let got: Chunk | string;
    try {
      got = await readV1ChunkFile(entry.path, key, entry);
    } catch (err) {
      if (this.index.get(key) === entry) {
        this.index.forget(key);
        this.opts.metrics?.tierErrors.inc({ ...TIER, op: 'read' });
        this.opts.logger?.warn({ err, key }, 'nvme tier: chunk file unreadable, dropped');
      }
      return undefined;
    }
    if (this.index.get(key) !== entry) return typeof got === 'string' ? undefined : got;
    if (typeof got === 'string') {
      this.index.forget(key);
      await this.removePath(entry.path);
      this.opts.metrics?.checksumFailures.inc(TIER);
      this.opts.logger?.warn({ key, path: entry.path, reason: got }, 'nvme tier: corrupt chunk dropped');
      return undefined;
    }
    this.used(key, entry);
    const name = chunkFileName(key);
    const writable =
      !this.closed &&
      (this.degradedUntil === undefined || this.now() >= this.degradedUntil) &&
      !this.inflight.has(key) &&
      this.inflight.size < (this.opts.maxPendingWrites ?? 64);
    if (name && writable) {
      const { header, dataCrc } = encodeChunkHeader(
        key,
        got.data,
        this.opts.blockBytes ?? DEFAULT_BLOCK_BYTES,
      );
      if (dataCrc === got.crc32c) {
        if (!this.loggedMigration) {
          this.loggedMigration = true;
          this.opts.logger?.info(
            { dir: this.opts.dir },
            'nvme tier: rewriting version 1 chunk files as version 2 as they are read',
          );
        }
        void this.startWrite(key, name, header, got);
      }
    }
    return got;
  }

  async put(key: string, chunk: Chunk): Promise<void> {
    if (this.closed) return;
    const size = chunk.data.length;
    if (size > this.budgetBytes || size > MAX_DATA_BYTES) return; // would evict everything and still not fit
    const name = Buffer.byteLength(key) <= MAX_KEY_BYTES ? chunkFileName(key) : undefined;
    if (!name) {
      this.opts.logger?.warn(
        { keyLength: key.length },
        'nvme tier: not a chunk key, or longer than the format holds; not stored',
      );
      return;
    }
    const held = this.index.get(key);
    if (held && held.crc32c === chunk.crc32c >>> 0 && held.dataLength === size) {
      // Already on disk (a name's bytes never change): a use, not a 4 MiB rewrite.
      this.index.touch(key, held);
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
    // Last, as it reads all the bytes: one pass computes the block CRCs and
    // proves they are the chunk's (their combination is its CRC32C).
    const { header, dataCrc } = encodeChunkHeader(
      key,
      chunk.data,
      this.opts.blockBytes ?? DEFAULT_BLOCK_BYTES,
    );
    if (dataCrc !== chunk.crc32c >>> 0) {
      // Persisting bytes that are already wrong would only move the failure to a later read.
      this.opts.metrics?.checksumFailures.inc(TIER);
      this.opts.logger?.warn({ key }, 'nvme tier: chunk to store fails its checksum, dropped');
      return;
    }
    return this.startWrite(key, name, header, chunk);
  }

  private startWrite(key: string, name: ChunkFileName, header: Buffer, chunk: Chunk): Promise<void> {
    const p = this.write(key, name, header, chunk).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /**
   * Publishes the chunk files to the native store's NVMe view (and every
   * later change), so the native doors read NVMe hits on their own threads.
   */
  attachNative(sink: NativeNvmeSink): void {
    if (!this.closed) this.index.attach(sink);
  }

  async delete(key: string): Promise<boolean> {
    await this.inflight.get(key);
    const entry = this.index.get(key);
    if (!entry) return false;
    this.index.forget(key);
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
    this.index.touch(key, entry);
    return { path: entry.path, dataOffset: entry.dataOffset, length: entry.dataLength, crc32c: entry.crc32c };
  }

  stats(): TierStats {
    return { usedBytes: this.index.usedBytes, capacityBytes: this.budgetBytes, entries: this.index.size };
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
    await Promise.race([
      Promise.allSettled([...this.inflight.values(), ...this.migrating.values()]),
      timeout,
    ]);
    clearTimeout(timer);
    this.detachMetrics?.();
    this.detachMetrics = undefined;
    this.index.detach(); // no native read of this directory starts from now on
    this.reader?.close(); // reads still pending end as misses
    if (this.lockFd !== undefined) binding().nvmeUnlockDir(this.lockFd);
    this.lockFd = undefined;
  }

  private async write(key: string, name: ChunkFileName, header: Buffer, chunk: Chunk): Promise<void> {
    const size = chunk.data.length;
    const subdir = join(this.opts.dir, name.subdir);
    const path = join(subdir, name.name);
    const tmp = `${path}.tmp-${process.pid}-${this.tempCounter++}`;
    // An overwrite (or the migration of a version 1 file) drops the old entry
    // now: its file is replaced by the rename below or removed after it, or
    // removed if the write fails, so index and disk stay equal.
    const old = this.index.get(key);
    if (old) this.index.forget(key);
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
      await this.removing.get(path); // an unlink of this path still queued must not hit the new file
      await writeChunkFileAtomic(path, tmp, header, chunk.data, this.opts.fsync ?? false);
      this.reader?.forget(path); // never read the new file through a file kept open from the old one
      this.reservedBytes -= size;
      this.index.add({
        key,
        path,
        format: 2,
        dataOffset: header.length,
        dataLength: size,
        crc32c: chunk.crc32c >>> 0,
        accessedMs: Date.now(),
      });
      if (old && old.path !== path) await this.removePath(old.path);
      if (this.degradedUntil !== undefined) {
        this.degradedUntil = undefined;
        this.opts.metrics?.tierDegraded.set(TIER, 0);
        this.opts.logger?.info({ dir: this.opts.dir }, 'nvme tier: writes succeed again, no longer degraded');
      }
    } catch (err) {
      this.reservedBytes -= size;
      if (old) await this.removePath(old.path);
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
    const victims = this.index.evictDownTo(bytes);
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
    const fit = Math.min(
      this.opts.maxBytes,
      Math.floor((this.index.usedBytes + free) * DEVICE_FILL_FRACTION),
    );
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

  private removePath(path: string): Promise<void> {
    this.reader?.forget(path); // a file kept open would keep its blocks allocated after the unlink
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
    m.tierUsedBytes.set(TIER, this.index.usedBytes);
    m.tierCapacityBytes.set(TIER, this.budgetBytes);
    m.tierEntries.set(TIER, this.index.size);
  }
}
