/** Counts chunk reads from peers: result (hit, miss, error), bytes and latency. */
import { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';

export class PeerMetrics {
  private readonly requests: Counter<'result'>;
  private readonly bytes: Counter;
  private readonly duration: Histogram;
  /** Stand-in requests served here, by outcome (docs/cluster.md, "Stand-in owner"). */
  readonly standIn: Counter<'result'>;

  constructor(metrics: Metrics) {
    const registers = [metrics.registry];
    this.requests = new Counter({
      name: 'weightcache_peer_requests_total',
      help: 'Chunk reads from peers by result: hit, miss (peer did not have it), error (peer failed; backed off)',
      labelNames: ['result'] as const,
      registers,
    });
    this.bytes = new Counter({
      name: 'weightcache_peer_bytes_total',
      help: 'Bytes read from peers',
      registers,
    });
    this.duration = new Histogram({
      name: 'weightcache_peer_request_duration_seconds',
      help: 'Latency of chunk reads from peers',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.standIn = new Counter({
      name: 'weightcache_stand_in_requests_total',
      help: 'Stand-in requests for chunks not held here: fill (every member ranked above is down here) or refused (one is up here: NOT_FOUND)',
      labelNames: ['result'] as const,
      registers,
    });
  }

  /** Starts a timer; call the result with the outcome. */
  start(): (result: 'hit' | 'miss' | 'error', bytes: number) => void {
    const end = this.duration.startTimer();
    return (result, bytes) => {
      end();
      this.requests.inc({ result });
      if (bytes) this.bytes.inc(bytes);
    };
  }
}
