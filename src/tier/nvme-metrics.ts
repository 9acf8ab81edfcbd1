/**
 * The NVMe reader's native counters (addon/src/nvme/chunk_reader.h
 * ReaderStats), exported when /metrics is scraped. `disk_read_bytes_total`
 * over `returned_bytes_total` is the read amplification: 1.0 means every
 * byte read from a chunk file was one a caller asked for.
 *
 * Registered once per registry; every NVMe tier on it (tests open several in
 * turn) is a source, and a closed tier's last values stay counted.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import type { NativeReaderStats } from '../transport/binding.js';

export type StatsSource = () => NativeReaderStats | undefined;

interface Source {
  /** Each counter's value at the last scrape. */
  readonly last: Map<string, number>;
  /** False for a closed tier's final snapshot: still counted, not in the gauges. */
  readonly live: boolean;
}

interface Registered {
  readonly sources: Map<StatsSource, Source>;
}

const byRegistry = new WeakMap<Metrics, Registered>();

/** Adds `source` to the registry's NVMe reader metrics; call the returned function when the tier closes. */
export function attachNvmeMetrics(metrics: Metrics, source: StatsSource): () => void {
  let reg = byRegistry.get(metrics);
  if (!reg) {
    reg = register(metrics);
    byRegistry.set(metrics, reg);
  }
  reg.sources.set(source, { last: new Map(), live: true });
  const r = reg;
  return () => {
    // What it counted since the last scrape is still reported: keep a final snapshot.
    const final = source();
    const entry = r.sources.get(source);
    r.sources.delete(source);
    if (final && entry) r.sources.set(() => final, { last: entry.last, live: false });
  };
}

function register(metrics: Metrics): Registered {
  const reg: Registered = { sources: new Map() };
  const p = 'weightcache_nvme_';
  const each = (fn: (s: NativeReaderStats) => void) => {
    for (const [source, { live }] of reg.sources) {
      const s = live ? source() : undefined;
      if (s) fn(s);
    }
  };
  // A counter mirroring monotonic native values: each source's increase since the last scrape.
  const mirror = (
    name: string,
    help: string,
    pick: (s: NativeReaderStats) => Record<string, number>,
    labelName?: string,
  ) =>
    new Counter({
      name,
      help,
      labelNames: labelName ? [labelName] : [],
      registers: [metrics.registry],
      collect() {
        for (const [source, { last }] of reg.sources) {
          const s = source();
          if (!s) continue;
          for (const [label, value] of Object.entries(pick(s))) {
            const k = `${name}:${label}`;
            const delta = value - (last.get(k) ?? 0);
            last.set(k, value);
            if (delta <= 0) continue;
            if (labelName) this.inc({ [labelName]: label }, delta);
            else this.inc(delta);
          }
        }
      },
    });
  mirror(
    `${p}disk_read_bytes_total`,
    'Bytes read from NVMe chunk files by verified reads: headers (once per open file) and whole 4 KiB blocks',
    (s) => ({ '': s.bytesRead }),
  );
  mirror(
    `${p}returned_bytes_total`,
    'Verified bytes NVMe reads returned (the ratio of disk_read_bytes_total to this is the read amplification)',
    (s) => ({ '': s.bytesServed }),
  );
  mirror(
    `${p}reads_total`,
    'NVMe chunk reads by result: ok, corrupt (a block or header failed its check: file dropped), error (errno)',
    (s) => ({ ok: s.readsOk, corrupt: s.corrupt, error: s.errors }),
    'result',
  );
  mirror(
    `${p}header_reads_total`,
    'Chunk files opened and their headers (block CRC tables) read: misses of the open-file cache',
    (s) => ({ '': s.headerReads }),
  );
  mirror(
    `${p}copied_bytes_total`,
    'Bytes read into a scratch buffer and copied into caller memory (a destination not aligned for O_DIRECT)',
    (s) => ({ '': s.bytesCopied }),
  );
  new Gauge({
    name: `${p}reads_in_flight`,
    help: 'NVMe reads submitted and not yet completed (queued beyond the queue depth included)',
    registers: [metrics.registry],
    collect() {
      let n = 0;
      each((s) => {
        n += s.pending;
      });
      this.set(n);
    },
  });
  new Gauge({
    name: `${p}open_files`,
    help: 'Chunk files kept open with their verified headers (bounded by cache.nvme.openFiles)',
    registers: [metrics.registry],
    collect() {
      let n = 0;
      each((s) => {
        n += s.openFiles;
      });
      this.set(n);
    },
  });
  new Gauge({
    name: `${p}io_info`,
    help: "How NVMe reads are done: backend io_uring or threads (the fallback), direct 'true' for O_DIRECT",
    labelNames: ['backend', 'direct'] as const,
    registers: [metrics.registry],
    collect() {
      this.reset();
      each((s) => {
        if (s.backend !== 'closed') this.set({ backend: s.backend, direct: String(s.direct) }, 1);
      });
    },
  });
  return reg;
}
