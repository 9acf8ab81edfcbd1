/**
 * RESP-only metrics, registered on the node's registry next to the shared
 * ones (requests{protocol="resp"}, request duration). Labels are closed sets:
 * `reason` comes from ProtocolError.reason, never from client bytes.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import type { ReplyMemory } from './reply-memory.js';

/** The reply memories each registry reports (several RESP servers may share one in a test process). */
const watched = new WeakMap<Registry, Set<ReplyMemory>>();

export class RespMetrics {
  readonly protocolErrors: Counter<'reason'>;
  readonly connections: Gauge;
  readonly rejectedConnections: Counter<'reason'>;
  constructor(readonly base: Metrics) {
    const r = base.registry;
    // One registry may serve several RESP servers in a test process: reuse what is there.
    this.protocolErrors =
      (r.getSingleMetric('weightcache_resp_protocol_errors_total') as Counter<'reason'> | undefined) ??
      new Counter({
        name: 'weightcache_resp_protocol_errors_total',
        help: 'RESP connections closed for a framing error or a broken limit, by reason',
        labelNames: ['reason'] as const,
        registers: [r],
      });
    this.connections =
      (r.getSingleMetric('weightcache_resp_connections') as Gauge | undefined) ??
      new Gauge({ name: 'weightcache_resp_connections', help: 'Open RESP connections', registers: [r] });
    this.rejectedConnections =
      (r.getSingleMetric('weightcache_resp_rejected_connections_total') as Counter<'reason'> | undefined) ??
      new Counter({
        name: 'weightcache_resp_rejected_connections_total',
        help: 'RESP connections refused or cut by the server (max_clients, idle, stalled_reader, preauth_timeout, preauth_evicted, reply_memory)',
        labelNames: ['reason'] as const,
        registers: [r],
      });
  }

  /** Reports `m` in weightcache_resp_reply_memory_bytes (bytes held for replies, waiting replies). */
  watchReplyMemory(m: ReplyMemory): void {
    const r = this.base.registry;
    let memories = watched.get(r);
    if (memories) {
      memories.add(m);
      return;
    }
    memories = new Set([m]);
    watched.set(r, memories);
    const all = memories;
    new Gauge({
      name: 'weightcache_resp_reply_memory_bytes',
      help: 'Bytes RESP replies hold (shares of resp.maxReplyMemory), and the limit',
      labelNames: ['kind'] as const,
      registers: [r],
      collect() {
        let used = 0;
        let max = 0;
        for (const mem of all) {
          used += mem.used;
          max += mem.max;
        }
        this.set({ kind: 'used' }, used);
        this.set({ kind: 'limit' }, max);
      },
    });
  }
}
