/**
 * Operator endpoints: liveness, readiness, Prometheus metrics, status, and
 * manifests (the files under a prefix with their versions, read from the
 * origin at one moment — the unit a model load pins).
 */
import type { Hono } from 'hono';
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';
import { validateContainer, validateKey } from '../origin/names.js';
import type { Origin } from '../origin/origin.js';
import type { Tier } from '../tier/tier.js';
import { decodeSegments, MANIFESTS_PREFIX, rawPath } from './object-path.js';
import type { HttpEnv } from './objects.js';

export const MANIFEST_MAX_FILES = 10_000;

export interface AdminDeps {
  readonly metrics: Metrics;
  readonly origin: Origin;
  readonly tiers: readonly Tier[];
  readonly version: string;
  readonly startedAt: Date;
  readonly chunkSize: number;
  /** False while starting or draining: load balancers stop sending traffic. */
  readonly ready: () => boolean;
  readonly role: 'node' | 'sidecar';
  /** This process's view of the cluster, or null outside one. */
  readonly cluster: () => { self: string | null; members: string[] } | null;
  /** Leases here (docs/coherence.md), for /v1/status. */
  readonly coherence?: () => Record<string, unknown>;
}

export function adminRoutes(app: Hono<HttpEnv>, d: AdminDeps): void {
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => (d.ready() ? c.json({ ready: true }) : c.json({ ready: false }, 503)));
  app.get('/metrics', async (c) => {
    for (const t of d.tiers) {
      const s = t.stats();
      d.metrics.tierUsedBytes.set({ tier: t.name }, s.usedBytes);
      d.metrics.tierEntries.set({ tier: t.name }, s.entries);
      d.metrics.tierCapacityBytes.set({ tier: t.name }, s.capacityBytes);
    }
    return c.body(await d.metrics.registry.metrics(), 200, {
      'Content-Type': d.metrics.registry.contentType,
    });
  });
  app.get('/v1/status', (c) =>
    c.json({
      version: d.version,
      startedAt: d.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - d.startedAt.getTime()) / 1000),
      ready: d.ready(),
      role: d.role,
      origin: { type: d.origin.kind, id: d.origin.id },
      cluster: d.cluster(),
      coherence: d.coherence?.() ?? null,
      chunkSize: d.chunkSize,
      tiers: Object.fromEntries(d.tiers.map((t) => [t.name, t.stats()])),
    }),
  );
  app.get('/v1/manifests/*', async (c) => {
    const raw = rawPath(c.env.incoming.url ?? '');
    // Parse the raw target exactly as the auth middleware's scope check does.
    if (!raw.startsWith(MANIFESTS_PREFIX))
      throw new CacheError('BAD_REQUEST', `expected ${MANIFESTS_PREFIX}{container}/{prefix}`);
    const segs = decodeSegments(raw.slice(MANIFESTS_PREFIX.length));
    const [container = '', ...rest] = segs;
    validateContainer(container);
    const prefix = validateKey(rest.join('/'), { allowEmpty: true, what: 'prefix' });
    const files = [];
    for await (const o of d.origin.list(container, prefix, { limit: MANIFEST_MAX_FILES + 1 })) {
      if (files.length === MANIFEST_MAX_FILES) {
        throw new CacheError(
          'TOO_LARGE',
          `more than ${MANIFEST_MAX_FILES} files under ${container}/${prefix}`,
        );
      }
      files.push({ key: o.key, version: o.etag, size: o.size, lastModified: o.lastModified.toISOString() });
    }
    return c.json({ container, prefix, listedAt: new Date().toISOString(), files });
  });
}
