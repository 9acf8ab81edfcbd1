/**
 * The front doors on the native door's fast path (addon/src/http/doors/,
 * docs/native-http-door.md "The front doors on the fast path"): the routes
 * the HTTP door's `fast` option takes (which door answers under which path,
 * with what it needs to map a request as the JavaScript door does), and the
 * doors' reads the I/O threads answered counted in
 * weightcache_object_reads_total{door} at each scrape, and the signed S3
 * reads they verified or left to JavaScript in
 * weightcache_s3_signed_fastpath_total{result} (Azure reads of a node with
 * auth: weightcache_azure_signed_fastpath_total{result}).
 */
import { HubNativeRevisions } from '../hub/native-revisions.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Listings } from '../read/listings.js';
import { binding } from '../transport/binding.js';
import type { NativeDoorRoutes } from './native-binding.js';

export interface DoorRoutesConfig {
  readonly hub: { readonly path: string; readonly container: string } | null;
  readonly s3: {
    readonly path: string;
    readonly baseDomain: string | null;
    readonly buckets: readonly string[] | null;
    /** s3.maxClockSkew: the signed reads the fast path verifies use the JavaScript door's window. */
    readonly maxClockSkew: number;
  } | null;
  /** azure.maxClockSkew: the SAS the fast path verifies use the JavaScript door's window. */
  readonly azure?: {
    readonly path: string;
    readonly account: string | null;
    readonly maxClockSkew: number;
  } | null;
}

export function nativeDoorRoutes(
  c: DoorRoutesConfig,
  listings: Listings,
  metrics: Metrics,
): { routes: NativeDoorRoutes; hubRevisions: HubNativeRevisions | null } {
  const routes = new (binding().NativeDoorRoutes)({
    hub: c.hub ? { path: c.hub.path, container: c.hub.container, maxFiles: listings.retainFiles } : null,
    s3: c.s3
      ? {
          path: c.s3.path,
          baseDomain: c.s3.baseDomain,
          buckets: c.s3.buckets,
          maxClockSkewMs: c.s3.maxClockSkew,
        }
      : null,
    azure: c.azure
      ? { path: c.azure.path, account: c.azure.account, maxClockSkewMs: c.azure.maxClockSkew }
      : null,
  });
  // Object reads by the first chunk's tier, as JavaScript counts them: NVMe hits, and the rest DRAM.
  const seen = { hub: { dram: 0, nvme: 0 }, s3: { dram: 0, nvme: 0 }, azure: { dram: 0, nvme: 0 } };
  const signed = { verified: 0, declined: 0 };
  const azureSigned = { verified: 0, declined: 0 };
  metrics.nativeCounts.add(() => {
    const s = routes.stats();
    for (const [door, body, nvme] of [
      ['hub', s.hubBodyHits, s.hubNvmeBodyHits],
      ['s3', s.s3BodyHits, s.s3NvmeBodyHits],
      ['azure', s.azureBodyHits, s.azureNvmeBodyHits],
    ] as const) {
      for (const [source, n] of [
        ['dram', body - nvme],
        ['nvme', nvme],
      ] as const) {
        if (n > seen[door][source]) metrics.objectReads.inc({ door, source }, n - seen[door][source]);
        seen[door][source] = n;
      }
    }
    for (const [result, n] of [
      ['verified', s.s3SignedHits],
      ['declined', s.s3SignedDeclined],
    ] as const) {
      if (n > signed[result]) metrics.s3SignedFastPath.inc({ result }, n - signed[result]);
      signed[result] = n;
    }
    for (const [result, n] of [
      ['verified', s.azureSignedHits],
      ['declined', s.azureSignedDeclined],
    ] as const) {
      if (n > azureSigned[result]) metrics.azureSignedFastPath.inc({ result }, n - azureSigned[result]);
      azureSigned[result] = n;
    }
  });
  return { routes, hubRevisions: c.hub ? new HubNativeRevisions(routes, listings) : null };
}
