/**
 * RESP-only metrics, registered on the node's registry next to the shared
 * ones (requests{protocol="resp"}, request duration). Labels are closed sets:
 * `reason` comes from ProtocolError.reason, never from client bytes.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';

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
        help: 'RESP connections refused or cut by the server (max_clients, idle)',
        labelNames: ['reason'] as const,
        registers: [r],
      });
  }
}
