/**
 * The coherence protocol's metrics (docs/coherence.md, "Metrics"), registered
 * on a process's registry next to the others. Label values are bounded: no
 * names or holders in labels.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';

const INVALIDATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class CoherenceMetrics {
  readonly grants: Counter<'result'>;
  readonly renewals: Counter<'result'>;
  readonly revocations: Counter<'result'>;
  readonly revokesReceived: Counter;
  readonly invalidations: Counter<'source' | 'result'>;
  readonly invalidationDuration: Histogram;
  readonly outstanding: Gauge;
  readonly staleReads: Counter;
  readonly holderFallbacks: Counter<'reason'>;

  constructor(m: Metrics, outstanding: () => number) {
    const registers = [m.registry];
    this.grants = new Counter({
      name: 'weightcache_lease_grants_total',
      help: 'LEASE_GRANT requests answered by this home, by result (ok, not_found, not_home, refused)',
      labelNames: ['result'] as const,
      registers,
    });
    this.renewals = new Counter({
      name: 'weightcache_lease_renewals_total',
      help: 'LEASE_RENEW requests answered by this home, by result (ok, not_found, not_home, refused)',
      labelNames: ['result'] as const,
      registers,
    });
    this.revocations = new Counter({
      name: 'weightcache_lease_revocations_total',
      help: 'Leases an invalidation revoked, by how each ended: acked by the holder, or expired (holder unreachable)',
      labelNames: ['result'] as const,
      registers,
    });
    this.revokesReceived = new Counter({
      name: 'weightcache_lease_revokes_received_total',
      help: 'LEASE_REVOKE requests this process received as a holder (and acknowledged)',
      registers,
    });
    this.invalidations = new Counter({
      name: 'weightcache_invalidations_total',
      help: 'Invalidations received by this process, by entry point (http, cli, eventgrid, resp, peer) and result (ok, error)',
      labelNames: ['source', 'result'] as const,
      registers,
    });
    this.invalidationDuration = new Histogram({
      name: 'weightcache_invalidation_duration_seconds',
      help: 'Invalidations received by this process: received to answered (every holder acked or expired)',
      buckets: INVALIDATION_BUCKETS,
      registers,
    });
    this.outstanding = new Gauge({
      name: 'weightcache_leases_outstanding',
      help: 'Leases this home has granted that have not run out',
      registers,
      collect() {
        this.set(outstanding());
      },
    });
    this.staleReads = new Counter({
      name: 'weightcache_stale_reads_total',
      help: 'Resolutions that returned a version older than one an invalidation answered here had bound (expected 0)',
      registers,
    });
    this.holderFallbacks = new Counter({
      name: 'weightcache_lease_origin_fallbacks_total',
      help: 'Resolutions a holder made at the origin without a lease (home unreachable, not home in its view, or refusing), cached nothing',
      labelNames: ['reason'] as const,
      registers,
    });
  }
}
