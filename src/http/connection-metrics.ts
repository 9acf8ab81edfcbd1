/**
 * The HTTP door's connection metrics, whichever door holds the connection:
 * the JavaScript governors count as they go (src/http/connections.ts), the
 * native doors are read at scrape time, and both land under one name.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import type { CloseReason } from './connections.js';

/** A connection's count of each rejection reason, from a source other than the governors (the native door). */
export interface ConnectionCountSource {
  open(): number;
  closed(): Partial<Record<CloseReason, number>>;
}

interface Counts {
  open: number;
  readonly closed: Map<CloseReason, number>;
  readonly sources: Set<ConnectionCountSource>;
}

const countsOf = new WeakMap<Metrics['registry'], Counts>();

/**
 * The HTTP door's connection metrics, registered once per registry: the
 * governors' counts (JavaScript door, unix socket) and each native door's,
 * read at scrape time, under one name whichever door holds the connection.
 */
export class HttpConnectionMetrics {
  private constructor(private readonly counts: Counts) {}

  readonly open = {
    inc: () => void this.counts.open++,
    dec: () => void this.counts.open--,
  };

  readonly closed = {
    inc: ({ reason }: { reason: CloseReason }) =>
      void this.counts.closed.set(reason, (this.counts.closed.get(reason) ?? 0) + 1),
  };

  /** Adds a native door's counts; returns its removal. */
  addSource(s: ConnectionCountSource): () => void {
    this.counts.sources.add(s);
    return () => this.counts.sources.delete(s);
  }

  static of(m: Metrics): HttpConnectionMetrics {
    const r = m.registry;
    let counts = countsOf.get(r);
    if (!counts) {
      const c: Counts = { open: 0, closed: new Map(), sources: new Set() };
      counts = c;
      countsOf.set(r, c);
      const open: Gauge = new Gauge({
        name: 'weightcache_http_connections',
        help: 'Open HTTP connections',
        registers: [r],
        collect: () => {
          let n = c.open;
          for (const s of c.sources) n += s.open();
          open.set(n);
        },
      });
      const closed: Counter<'reason'> = new Counter({
        name: 'weightcache_http_rejected_connections_total',
        help: 'HTTP connections refused or cut by the server, by reason (max_connections, per_address, reserve, idle_evicted, first_request_timeout, pipeline_limit, slow_client)',
        labelNames: ['reason'] as const,
        registers: [r],
        collect: () => {
          const total = new Map(c.closed);
          for (const s of c.sources) {
            for (const [reason, v] of Object.entries(s.closed()) as [CloseReason, number][]) {
              total.set(reason, (total.get(reason) ?? 0) + v);
            }
          }
          closed.reset();
          for (const [reason, v] of total) if (v > 0) closed.inc({ reason }, v);
        },
      });
    }
    return new HttpConnectionMetrics(counts);
  }
}
