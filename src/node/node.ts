/**
 * A cache process: wires config → origin → tiers → lease table → cluster →
 * read path → protocol doors, and takes them down in the reverse order.
 *
 * Two roles share this assembly:
 *   - node: a cluster member. Owns the chunks placement gives it, fills them
 *     from the origin, and serves them to peers on the native transport.
 *   - sidecar: a GPU host's local front door. Owns nothing; reads chunks from
 *     their owners (then the next in rank, then the origin), keeps them in a
 *     small local tier, and serves HTTP on loopback and a unix socket.
 *
 * Readiness is true only between "everything listens" and "draining", so a
 * load balancer never routes to a process that cannot answer or is leaving.
 */

import { checkProtectedMode } from '../auth/protected-mode.js';
import { readTls } from '../auth/tls.js';
import { loadClusterSecret, TokenSet } from '../auth/tokens.js';
import { azureDoor } from '../azure-blob/door.js';
import { chunkServer } from '../cluster/chunk-server.js';
import { Cluster } from '../cluster/cluster.js';
import { Coherence } from '../coherence/coherence.js';
import { LeaseTable } from '../coherence/lease-table.js';
import type { Config } from '../config/schema.js';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { Limiter } from '../fill/limiter.js';
import type { AdminDeps } from '../http/admin.js';
import type { Door } from '../http/door.js';
import { type HttpServer, startHttpServer } from '../http/server.js';
import { hubDoor } from '../hub/door.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { createOrigin } from '../origin/create.js';
import type { Origin } from '../origin/origin.js';
import { Listings } from '../read/listings.js';
import { ObjectReader } from '../read/object-read.js';
import { ReadPath } from '../read/read-path.js';
import { type RespServer, startRespServer } from '../resp/server.js';
import { s3Door } from '../s3/door.js';
import { DramTier } from '../tier/dram.js';
import { NvmeTier } from '../tier/nvme.js';
import type { Tier } from '../tier/tier.js';
import { TransportServer } from '../transport/index.js';
import { registerTransportMetrics } from '../transport/metrics.js';
import { VERSION } from './version.js';

export type Role = 'node' | 'sidecar';

export interface RunningNode {
  readonly role: Role;
  readonly http: HttpServer;
  readonly transport: TransportServer | null;
  readonly cluster: Cluster | null;
  /** The Redis-protocol door, when `resp` is configured. */
  readonly resp: RespServer | null;
  readonly metrics: Metrics;
  readonly coherence: Coherence;
  readonly readPath: ReadPath;
  readonly origin: Origin;
  /** Drains and stops; safe to call more than once. */
  close(): Promise<void>;
}

export async function startNode(config: Config, log: Logger, role: Role = 'node'): Promise<RunningNode> {
  // Authentication first: a process that would expose weights unauthenticated never starts.
  const tokens = TokenSet.load(config.auth);
  const secret = loadClusterSecret(config.auth.clusterSecretFile);
  checkProtectedMode(
    [
      { name: 'http.listen', host: config.http.listen.host, authenticated: tokens !== null },
      ...(config.resp
        ? [{ name: 'resp.listen', host: config.resp.listen.host, authenticated: tokens !== null }]
        : []),
      ...[config.s3, config.hub, config.azure].flatMap((d, i) =>
        d?.listen
          ? [
              {
                name: `${['s3', 'hub', 'azure'][i]}.listen`,
                host: d.listen.host,
                authenticated: tokens !== null,
              },
            ]
          : [],
      ),
      ...(role === 'node' && config.transport
        ? [{ name: 'transport.listen', host: config.transport.listen.host, authenticated: secret !== null }]
        : []),
    ],
    config.auth.insecure,
  );
  const httpTls = readTls(config.http.tls, 'http.tls');
  const respTls = config.resp ? readTls(config.resp.tls, 'resp.tls') : null;
  const metrics = new Metrics({ defaultMetrics: true });
  registerTransportMetrics(metrics);
  const origin = createOrigin(config.origin);
  const nvme = config.cache.nvme
    ? await NvmeTier.open({
        dir: config.cache.nvme.dir,
        maxBytes: config.cache.nvme.maxBytes,
        metrics,
        logger: log.child({ tier: 'nvme' }),
      })
    : null;
  const dram = new DramTier({
    maxBytes: config.cache.dram.maxBytes,
    metrics,
    // Demotion: a chunk pushed out of DRAM stays a local hit on NVMe. Fills
    // already write through, so this only matters for chunks NVMe dropped.
    onEvict: (key, chunk) => {
      if (nvme && !nvme.has(key)) void nvme.put(key, chunk);
    },
  });
  const self = role === 'node' ? selfAddress(config) : null;
  const cluster = config.cluster.members
    ? await Cluster.start({ config: config.cluster, self, log, metrics, secret })
    : null;
  if (role === 'node' && cluster && !config.transport) {
    log.warn(
      'cluster.members is set but transport is null: peers cannot read from this node, so it owns nothing usefully',
    );
  }
  if (role === 'sidecar' && !cluster) {
    throw new CacheError('CONFIG_INVALID', 'a sidecar needs cluster.members (the cache nodes it reads from)');
  }
  const table = new LeaseTable({ origin, termMs: config.leases.term, metrics });
  // Leases from each name's home, revocation, invalidation (docs/coherence.md).
  const coherence = new Coherence({
    config,
    role,
    table,
    origin,
    cluster,
    metrics,
    log,
    originFallback: role === 'node' || config.sidecar.originFallback,
  });
  // Waiters beyond 64 per origin slot are refused (OVERLOADED) instead of queued without bound.
  const originLimiter = new Limiter(
    config.origin.maxConcurrency,
    config.origin.maxConcurrency * 64,
    'origin reads',
  );
  const readPath = new ReadPath({
    origin,
    leases: coherence.resolver,
    dram,
    nvme,
    chunkSize: config.cache.chunkSize,
    readAhead: config.cache.readAhead,
    originLimiter,
    metrics,
    log,
    cluster,
    keepPeerChunks: role === 'sidecar',
    originFallback: role === 'node' || config.sidecar.originFallback,
  });
  const transport =
    role === 'node' && config.transport
      ? await TransportServer.listen({
          host: config.transport.listen.host,
          port: config.transport.listen.port,
          secret,
          handler: chunkServer({
            originId: origin.id,
            chunkSize: config.cache.chunkSize,
            readPath,
            dram,
            nvme,
            cluster,
            leases: coherence.home,
          }),
          logger: log,
          nodeId: cluster?.nodeId,
        })
      : null;
  const tiers: Tier[] = nvme ? [dram, nvme] : [dram];
  const doors = frontDoors(config, { tokens, reader: new ObjectReader({ readPath, metrics }), origin });
  let ready = false;
  const admin: AdminDeps = {
    metrics,
    origin,
    tiers,
    version: VERSION,
    startedAt: new Date(),
    chunkSize: config.cache.chunkSize,
    ready: () => ready,
    role,
    cluster: () => (cluster ? { self, members: cluster.members().map((m) => m.address) } : null),
    coherence: () => coherence.status(),
  };
  const http = await startHttpServer({
    host: config.http.listen.host,
    port: config.http.listen.port,
    socketPath: role === 'sidecar' ? config.sidecar.socket : null,
    auth: { tokens, openMetrics: config.auth.openMetrics },
    tls: httpTls,
    maxConnections: config.http.maxConnections,
    idleTimeoutMs: config.http.idleTimeout,
    log,
    metrics,
    objects: { readPath, metrics, maxRanges: config.http.maxRanges },
    admin,
    invalidate: coherence.invalidate,
    doors,
    prefetch: {
      readPath,
      origin,
      log,
      // A cluster holds about members × one node (members are configured alike).
      capacityBytes: () =>
        tiers.reduce((sum, t) => sum + t.stats().capacityBytes, 0) *
        Math.max(1, cluster?.members().length ?? 1),
      // In a cluster each chunk is warmed at its owner ("each owner pulls its own chunks").
      warmChunk: (info, index, signal) => readPath.warm(info, index, signal),
    },
  });
  // A door with a listener of its own answers there at the root (endpoint_url=http://cache:9000).
  const doorServers: HttpServer[] = [];
  const doorsWithListener = doors.filter((d) => d.listen);
  try {
    for (const d of doorsWithListener) {
      doorServers.push(
        await startHttpServer({
          host: d.listen!.host,
          port: d.listen!.port,
          auth: { tokens, openMetrics: config.auth.openMetrics },
          tls: httpTls,
          maxConnections: config.http.maxConnections,
          idleTimeoutMs: config.http.idleTimeout,
          log,
          metrics,
          objects: { readPath, metrics, maxRanges: config.http.maxRanges },
          admin,
          onlyDoor: d,
        }),
      );
    }
  } catch (err) {
    await Promise.all([http, ...doorServers].map((s) => s.close(0)));
    throw err;
  }
  const resp = config.resp
    ? await startRespServer({
        host: config.resp.listen.host,
        port: config.resp.listen.port,
        readPath,
        origin,
        metrics,
        log,
        version: VERSION,
        limits: {
          maxClients: config.resp.maxClients,
          maxArgs: config.resp.maxArgs,
          maxBulkBytes: config.resp.maxBulkBytes,
          maxQueryBufferBytes: config.resp.maxQueryBufferBytes,
          maxGetBytes: config.resp.maxGetBytes,
          idleTimeoutMs: config.resp.idleTimeout,
        },
        resp3: config.resp.resp3,
        tokens,
        tls: respTls,
        invalidate: coherence.invalidate,
      }).catch(async (err: unknown) => {
        // a node that can't open every configured door does not half-start
        await Promise.all([http, ...doorServers].map((s) => s.close(0)));
        throw err;
      })
    : null;
  ready = true;
  log.info(
    {
      role,
      http: `${http.address.host}:${http.address.port}`,
      doors: Object.fromEntries(doors.map((d) => [d.name, d.path])),
      doorListeners: Object.fromEntries(
        doorServers.map((s, i) => [doorsWithListener[i]!.name, `${s.address.host}:${s.address.port}`]),
      ),
      socket: http.socketPath ?? undefined,
      transport: transport ? `${transport.address.host}:${transport.address.port}` : undefined,
      members: cluster?.members().length,
      resp: resp ? `${resp.address.host}:${resp.address.port}` : 'off',
      origin: origin.id,
      chunkSize: formatBytes(config.cache.chunkSize),
      dram: formatBytes(config.cache.dram.maxBytes),
      nvme: config.cache.nvme
        ? `${config.cache.nvme.dir} (${formatBytes(config.cache.nvme.maxBytes)})`
        : 'off',
      nvmeChunks: nvme?.stats().entries ?? 0,
    },
    `weightcache ${role} ready`,
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      ready = false;
      if (resp && config.resp) await resp.close(config.resp.shutdownGrace);
      await Promise.all([http, ...doorServers].map((s) => s.close(config.http.shutdownGrace)));
      await coherence.close();
      await transport?.close();
      await cluster?.close();
      await nvme?.close(); // flushes pending chunk writes: what was filled survives the restart
      await dram.close();
      await origin.close();
      log.info(`weightcache ${role} stopped`);
    })();
    return closing;
  };
  return { role, http, transport, cluster, resp, metrics, coherence, readPath, origin, close };
}

/** The configured front doors, each a translation onto the same object read and listings. */
function frontDoors(
  config: Config,
  d: { tokens: TokenSet | null; reader: ObjectReader; origin: Origin },
): Door[] {
  const listings = new Listings({
    origin: d.origin,
    maxFiles: config.listing.maxFiles,
    retainFiles: config.listing.retainFiles,
    retainMs: config.listing.retain,
  });
  const doors: Door[] = [];
  if (config.s3) {
    doors.push(
      s3Door({
        path: config.s3.path,
        listen: config.s3.listen,
        region: config.s3.region,
        baseDomain: config.s3.baseDomain,
        buckets: config.s3.buckets,
        maxClockSkewMs: config.s3.maxClockSkew,
        tokens: d.tokens,
        reader: d.reader,
        listings,
      }),
    );
  }
  if (config.hub) {
    doors.push(
      hubDoor({
        path: config.hub.path,
        listen: config.hub.listen,
        container: config.hub.container,
        treePageSize: config.hub.treePageSize,
        tokens: d.tokens,
        reader: d.reader,
        listings,
      }),
    );
  }
  if (config.azure) {
    doors.push(
      azureDoor({
        path: config.azure.path,
        listen: config.azure.listen,
        account: config.azure.account,
        maxClockSkewMs: config.azure.maxClockSkew,
        tokens: d.tokens,
        reader: d.reader,
        listings,
      }),
    );
  }
  return doors;
}

/** The address this node is known by in the member list. */
function selfAddress(config: Config): string | null {
  if (config.cluster.self) return config.cluster.self;
  const t = config.transport?.listen;
  return t ? `${t.host}:${t.port}` : null;
}
