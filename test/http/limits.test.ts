import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_HTTP_LIMITS, reserveOf } from '../../src/http/limits.js';

describe('HTTP limits in the config', () => {
  it('the config defaults are the door defaults, and /metrics is closed unless opted in', () => {
    const c = parseConfig({}, 'test');
    expect({
      maxConnections: c.http.maxConnections,
      maxConnectionsPerAddress: c.http.maxConnectionsPerAddress,
      reservedConnections: c.http.reservedConnections,
      firstRequestTimeoutMs: c.http.firstRequestTimeout,
      idleTimeoutMs: c.http.idleTimeout,
      headersTimeoutMs: DEFAULT_HTTP_LIMITS.headersTimeoutMs,
      maxPipelined: c.http.maxPipelined,
      maxInFlightBytes: c.http.maxInFlightBytes,
      maxSlowClientBytes: c.http.maxSlowClientBytes,
      slowClientAfterMs: c.http.slowClientAfter,
      queueTimeoutMs: c.http.queueTimeout,
      metricsCacheMs: c.http.metricsCache,
    }).toEqual(DEFAULT_HTTP_LIMITS);
    expect(c.auth.openMetrics).toBe(false);
    expect(reserveOf(DEFAULT_HTTP_LIMITS, true)).toBe(256);
    expect(reserveOf(DEFAULT_HTTP_LIMITS, false)).toBe(0);
  });

  it('bad combinations are refused naming the key', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [
        { http: { reservedConnections: 4096 } },
        /http\.reservedConnections: must be less than http\.maxConnections/,
      ],
      [
        { http: { maxSlowClientBytes: '1GiB' } },
        /http\.maxSlowClientBytes: must be at most http\.maxInFlightBytes/,
      ],
      [
        { http: { maxInFlightBytes: '16MiB', maxSlowClientBytes: '16MiB' } },
        /http\.maxInFlightBytes: must be at least one response's read window/,
      ],
      [
        { cache: { chunkSize: '64MiB' } },
        /http\.maxSlowClientBytes: must be at least one response's read window/,
      ],
      [{ http: { firstRequestTimeout: '0s' } }, /http\.firstRequestTimeout/],
      [{ http: { maxPipelined: 0 } }, /http\.maxPipelined/],
    ];
    for (const [tree, message] of bad) expect(() => parseConfig(tree, 'test')).toThrow(message);
    expect(
      parseConfig({ http: { maxConnectionsPerAddress: null } }, 'test').http.maxConnectionsPerAddress,
    ).toBeNull();
  });
});
