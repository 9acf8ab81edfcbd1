/**
 * Operator endpoints: liveness, readiness, Prometheus metrics, status, and
 * manifests (the files under a prefix with their versions, read from the
 * origin at one moment — the unit a model load pins).
 */
import type { Hono } from 'hono';
import type { TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import type { Metrics } from '../metrics/metrics.js';
import { RenderCache } from '../metrics/render-cache.js';
import { validateContainer, validateKey } from '../origin/names.js';
import type { Origin } from '../origin/origin.js';
import type { Tier } from '../tier/tier.js';
import { requireContainer } from './auth.js';
import { MANIFESTS_PREFIX, splitUnder } from './object-path.js';
import type { HttpEnv } from './objects.js';
import { targetOf } from './target.js';

export const MANIFEST_MAX_FILES = 10_000;

export interface AdminDeps {
  readonly metrics: Metrics;
  readonly origin: Origin;
  readonly tiers: readonly Pick<Tier<unknown>, 'name' | 'stats'>[];
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
  /** The FUSE mount's counters (docs/mount.md), for /v1/status; null when there is none. */
  readonly mount?: () => Record<string, unknown> | null;
  /** A rendered /metrics page is reused this long (http.metricsCache); 0: render every scrape. */
  readonly metricsCacheMs?: number;
  /** Bearer tokens (manifests check the container scope themselves too); null: no auth. */
  readonly tokens?: TokenSet | null;
}

export function adminRoutes(app: Hono<HttpEnv>, d: AdminDeps): void {
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => (d.ready() ? c.json({ ready: true }) : c.json({ ready: false }, 503)));
  const page = new RenderCache(async () => {
    for (const t of d.tiers) {
      const s = t.stats();
      d.metrics.tierUsedBytes.set({ tier: t.name }, s.usedBytes);
      d.metrics.tierEntries.set({ tier: t.name }, s.entries);
      d.metrics.tierCapacityBytes.set({ tier: t.name }, s.capacityBytes);
    }
    return d.metrics.registry.metrics();
  }, d.metricsCacheMs ?? 0);
  app.get('/metrics', async (c) =>
    c.body(await page.get(), 200, { 'Content-Type': d.metrics.registry.contentType }),
  );
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
      mount: d.mount?.() ?? null,
      chunkSize: d.chunkSize,
      tiers: Object.fromEntries(d.tiers.map((t) => [t.name, t.stats()])),
    }),
  );
  app.get('/v1/manifests/*', async (c) => {
    const { container, rest } = splitUnder(targetOf(c.env.incoming), MANIFESTS_PREFIX);
    requireContainer(c, d.tokens ?? null, container);
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
