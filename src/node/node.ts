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

import { availableParallelism } from 'node:os';
import { checkProtectedMode } from '../auth/protected-mode.js';
import { readTls } from '../auth/tls.js';
import { loadClusterSecret, TokenSet } from '../auth/tokens.js';
import { azureDoor } from '../azure-blob/door.js';
import { chunkServer } from '../cluster/chunk-server.js';
import { Cluster } from '../cluster/cluster.js';
import { Coherence } from '../coherence/coherence.js';
import { LeaseTable } from '../coherence/lease-table.js';
import { type Config, MAX_DOOR_THREADS } from '../config/schema.js';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { Limiter } from '../fill/limiter.js';
import type { AdminDeps } from '../http/admin.js';
import type { Door } from '../http/door.js';
import { nativeDoorRoutes } from '../http/door-routes.js';
import { NativeFastPath } from '../http/fast-path.js';
import { SendBudget } from '../http/send-budget.js';
import type { SendLimits } from '../http/send-read.js';
import { type HttpServer, startHttpServer } from '../http/server.js';
import { hubDoor } from '../hub/door.js';
import type { HubNativeRevisions } from '../hub/native-revisions.js';
import { AccessLog } from '../log/access.js';
import type { Logger } from '../log/logger.js';
import { Metrics } from '../metrics/metrics.js';
import { type RunningMount, startMount } from '../mount/mount.js';
import { createOrigin } from '../origin/create.js';
import type { ObjectName, Origin } from '../origin/origin.js';
import { PrefetchJobs } from '../prefetch/jobs.js';
import { Listings } from '../read/listings.js';
import { ObjectReader } from '../read/object-read.js';
import { ReadPath } from '../read/read-path.js';
import { type RespServer, startRespServer } from '../resp/server.js';
import { s3Door } from '../s3/door.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { TieredStore } from '../store/tiered.js';
import { NvmeTier } from '../tier/nvme.js';
import { TransportServer } from '../transport/index.js';
import { registerTransportMetrics } from '../transport/metrics.js';
import { nativeTransport } from '../transport/native.js';
import { Messages } from '../transport/rpc.js';
import { VERSION } from './version.js';

/** Origin reads (count) that may wait per origin.maxConcurrency slot; past that a read is refused OVERLOADED instead of queued without bound. */
const ORIGIN_WAITERS_PER_SLOT = 64;
/** How often the bindings the fast paths answered from go through the stale-read check. */
const SERVED_CHECK_PERIOD_MS = 250;

export type Role = 'node' | 'sidecar';

export interface RunningNode {
  readonly role: Role;
  readonly http: HttpServer;
  readonly transport: TransportServer | null;
  readonly cluster: Cluster | null;
  /** The Redis-protocol door, when `resp` is configured. */
  readonly resp: RespServer | null;
  /** The FUSE mount, when `mount` is configured. */
  readonly mount: RunningMount | null;
  readonly metrics: Metrics;
  readonly coherence: Coherence;
  /** The version bindings the native fast paths answer from (null: no native door or native reads). */
  readonly fastPath: NativeFastPath | null;
  readonly readPath: ReadPath;
  /** The chunk store (DRAM + NVMe) every door reads through. */
  readonly store: ChunkStore;
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
        queueDepth: config.cache.nvme.queueDepth,
        openFiles: config.cache.nvme.openFiles,
        directIo: config.cache.nvme.directIo,
        io: config.cache.nvme.io,
        ioThreads: config.cache.nvme.ioThreads,
        metrics,
        logger: log.child({ tier: 'nvme' }),
      })
    : null;
  // DRAM (native, budgeted by cache.dram.maxBytes) in front of NVMe: the one
  // store every door, prefetch and the transport read through.
  const store = new TieredStore({
    dramBytes: config.cache.dram.maxBytes,
    chunkSize: config.cache.chunkSize,
    nvme,
    metrics,
    log: log.child({ tier: 'store' }),
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
  // The native doors answer hits themselves (http.door: native without TLS, resp.door: native):
  // they read the versions leases resolve to from here (one table for both), published and taken
  // back by the coherence layer.
  const nativeResp = config.resp?.door === 'native' && !respTls;
  // A node's transport answers peers' DRAM hits on its I/O thread from the same bindings.
  const nativeReads = role === 'node' && config.transport?.nativeReads === true;
  const fast =
    (config.http.door === 'native' && !httpTls) || nativeResp || nativeReads
      ? new NativeFastPath(origin.id, config.cache.chunkSize, tokens)
      : null;
  const table = new LeaseTable({ origin, termMs: config.leases.term, metrics, sink: fast });
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
    sink: fast,
  });
  if (fast) {
    // Leases of names served only on the fast path are renewed ahead, as a read through JavaScript would.
    const termMs = config.leases.term;
    const aheadMs = termMs / 4 + Math.min(1_000, termMs / 4);
    fast.startRenewal(
      (name) => void coherence.resolver.resolve(name, undefined, undefined, aheadMs).catch(() => {}),
      aheadMs,
      Math.min(1_000, termMs / 4),
    );
    // Answers made on the I/O threads go through the same stale-read check as JavaScript's.
    fast.watchServed((s) => coherence.checkServed(s), SERVED_CHECK_PERIOD_MS);
  }
  const originLimiter = new Limiter(
    config.origin.maxConcurrency,
    config.origin.maxConcurrency * ORIGIN_WAITERS_PER_SLOT,
    'origin reads',
  );
  const readPath = new ReadPath({
    origin,
    leases: coherence.resolver,
    store,
    chunkSize: config.cache.chunkSize,
    readAhead: config.cache.readAhead,
    originLimiter,
    metrics,
    log,
    cluster,
    keepPeerChunks: role === 'sidecar',
    originFallback: role === 'node' || config.sidecar.originFallback,
  });
  // The transport's messages beyond chunk reads: the lease home's, registered by coherence itself.
  const served = new Messages();
  coherence.serveOn(served);
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
            store,
            cluster,
            bindVersions: nativeReads,
          }),
          messages: served,
          logger: log,
          nodeId: cluster?.nodeId,
          maxConnections: config.transport.maxConnections,
          preAuthTimeoutMs: config.transport.preAuthTimeout,
          maxUnauthenticated: config.transport.maxUnauthenticated,
          maxUnauthenticatedPerAddress: config.transport.maxUnauthenticatedPerAddress,
        })
      : null;
  if (transport && nativeReads && fast) {
    transport.serveNative({
      store: store.dram.nativeStore,
      bindings: fast.bindings,
      originId: origin.id,
    });
  }
  if (role === 'sidecar' && config.sidecar.receiveInPlace) {
    // A sidecar keeps the chunks it reads from nodes: the addon reads them into DRAM store memory,
    // and the read path's put (after the CRC32C check) publishes them in place, without a copy.
    nativeTransport().b.transportReceiveInto(store.dram.nativeStore);
  }
  const tiers = nvme ? [store.dram, nvme] : [store.dram];
  // One set of prefetch jobs for HTTP's /v1/prefetch and RESP's WC.PREFETCH.
  const prefetch = new PrefetchJobs({
    resolve: (name: ObjectName, signal?: AbortSignal) => readPath.resolve(name, signal),
    // In a cluster each chunk is warmed at its owner ("each owner pulls its own chunks").
    warmChunk: (info, index, signal) => readPath.warm(info, index, signal),
    chunkSize: config.cache.chunkSize,
    origin,
    log,
    // A cluster holds about members × one node (members are configured alike).
    capacityBytes: () =>
      tiers.reduce((sum, t) => sum + t.stats().capacityBytes, 0) *
      Math.max(1, cluster?.members().length ?? 1),
  });
  const listings = new Listings({
    origin,
    maxFiles: config.listing.maxFiles,
    retainFiles: config.listing.retainFiles,
    retainMs: config.listing.retain,
  });
  // The front doors' object reads on the native door's fast path too (src/http/door-routes.ts).
  const doorsFast =
    fast && config.http.door === 'native' && !httpTls && (config.hub || config.s3 || config.azure)
      ? nativeDoorRoutes(
          { hub: config.hub ?? null, s3: config.s3 ?? null, azure: config.azure ?? null },
          listings,
          metrics,
        )
      : null;
  const doors = frontDoors(config, {
    tokens,
    reader: new ObjectReader({ readPath, metrics }),
    listings,
    hubNative: doorsFast?.hubRevisions ?? null,
  });
  let mount: RunningMount | null = null;
  // Every invalidation through this process also flips the mount's model symlinks at once.
  const invalidate: typeof coherence.invalidate = async (target, source, signal) => {
    const result = await coherence.invalidate(target, source, signal);
    mount?.invalidated(target.container, 'prefix' in target ? target.prefix : target.key);
    return result;
  };
  // And every invalidation other members make this process part of (a revoked lease, an INVALIDATE to its home).
  coherence.onInvalidation((t) => mount?.invalidated(t.container, 'prefix' in t ? t.prefix : t.key));
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
    mount: () => (mount ? { path: mount.path, ...mount.stats() } : null),
  };
  const httpLimits = {
    maxConnectionsPerAddress: config.http.maxConnectionsPerAddress,
    reservedConnections: config.http.reservedConnections,
    firstRequestTimeoutMs: config.http.firstRequestTimeout,
    maxPipelined: config.http.maxPipelined,
    maxInFlightBytes: config.http.maxInFlightBytes,
    maxSlowClientBytes: config.http.maxSlowClientBytes,
    slowClientAfterMs: config.http.slowClientAfter,
    queueTimeoutMs: config.http.queueTimeout,
    metricsCacheMs: config.http.metricsCache,
    headersTimeoutMs: config.http.headersTimeout,
  };
  // One send budget for every HTTP listener (the main port and each door's own).
  const send: SendLimits = {
    budget: new SendBudget({
      maxBytes: config.http.maxInFlightBytes,
      maxSlowBytes: config.http.maxSlowClientBytes,
      slowAfterMs: config.http.slowClientAfter,
      queueMs: config.http.queueTimeout,
      metrics,
    }),
    readAhead: config.cache.readAhead,
    chunkSize: config.cache.chunkSize,
  };
  const access = new AccessLog(log, { access: config.log.access });
  const http = await startHttpServer({
    host: config.http.listen.host,
    port: config.http.listen.port,
    socketPath: role === 'sidecar' ? config.sidecar.socket : null,
    auth: { tokens, openMetrics: config.auth.openMetrics },
    tls: httpTls,
    maxConnections: config.http.maxConnections,
    idleTimeoutMs: config.http.idleTimeout,
    limits: httpLimits,
    native:
      config.http.door === 'native'
        ? {
            threads: config.http.threads ?? Math.min(availableParallelism(), MAX_DOOR_THREADS),
            maxRequestLineBytes: config.http.maxRequestLine,
            maxHeaderCount: config.http.maxHeaderCount,
            maxHeaderBytes: config.http.maxHeaderBytes,
            maxBufferedBytes: config.http.maxBufferedBytes,
            fast:
              fast && !httpTls
                ? {
                    store: store.dram.nativeStore,
                    bindings: fast.bindings,
                    tokens: fast.tokens,
                    maxRanges: config.http.maxRanges,
                    keepAliveTimeoutMs: config.http.idleTimeout,
                    ...(doorsFast ? { doors: doorsFast.routes } : {}),
                  }
                : null,
          }
        : null,
    log,
    metrics,
    access,
    objects: { readPath, metrics, maxRanges: config.http.maxRanges },
    admin,
    send,
    invalidate,
    doors,
    prefetch: { jobs: prefetch },
  });
  if (http.native) {
    const { door, fillStats } = http.native;
    // After close the door is gone: a last scrape sees no counters rather than an error.
    metrics.httpDoorStats = () => {
      try {
        const f = fillStats();
        return {
          ...door.stats(),
          fillsInProgress: f.inProgress,
          fillsCancelled: f.cancelled,
          fillsRefused: f.refused,
        };
      } catch {
        return undefined;
      }
    };
  }
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
          limits: httpLimits,
          send,
          log,
          metrics,
          access,
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
        access,
        version: VERSION,
        limits: {
          maxClients: config.resp.maxClients,
          maxArgs: config.resp.maxArgs,
          maxBulkBytes: config.resp.maxBulkBytes,
          maxQueryBufferBytes: config.resp.maxQueryBufferBytes,
          maxGetBytes: config.resp.maxGetBytes,
          idleTimeoutMs: config.resp.idleTimeout,
          preAuthTimeoutMs: config.resp.preAuthTimeout,
          maxUnauthenticated: config.resp.maxUnauthenticated,
          maxUnauthenticatedPerAddress: config.resp.maxUnauthenticatedPerAddress,
          maxReplyMemory: config.resp.maxReplyMemory,
        },
        resp3: config.resp.resp3,
        tokens,
        tls: respTls,
        door: config.resp.door,
        threads: config.resp.threads,
        fast: fast && nativeResp ? { store: store.dram.nativeStore, bindings: fast.bindings } : null,
        invalidate,
        prefetch,
      }).catch(async (err: unknown) => {
        // a node that can't open every configured door does not half-start
        await Promise.all([http, ...doorServers].map((s) => s.close(0)));
        throw err;
      })
    : null;
  if (config.mount) {
    try {
      mount = await startMount({
        config: config.mount,
        readPath,
        listings,
        // In a cluster invalidations may run elsewhere: hold leases to hear of them. A lone node
        // sees every invalidation itself, and leases would only cost origin stats.
        resolve: cluster
          ? (name: ObjectName, signal?: AbortSignal) => readPath.resolve(name, signal)
          : undefined,
        native: { store: store.dram.nativeStore, chunkSize: config.cache.chunkSize, metrics },
        log,
      });
    } catch (err) {
      await resp?.close(0);
      await Promise.all([http, ...doorServers].map((s) => s.close(0)));
      throw err;
    }
  }
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
      mount: mount?.path ?? 'off',
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
      await mount?.close(); // first: a reader of the mount gets ENOTCONN, not a hang on a closed read path
      if (resp && config.resp) await resp.close(config.resp.shutdownGrace);
      await Promise.all([http, ...doorServers].map((s) => s.close(config.http.shutdownGrace)));
      fast?.stopRenewal();
      await coherence.close();
      await transport?.close();
      await cluster?.close();
      await store.close(); // flushes pending NVMe writes: what was filled survives the restart
      await origin.close();
      log.info(`weightcache ${role} stopped`);
    })();
    return closing;
  };
  return {
    role,
    http,
    transport,
    cluster,
    resp,
    mount,
    metrics,
    coherence,
    fastPath: fast,
    readPath,
    store,
    origin,
    close,
  };
}

/** The configured front doors, each a translation onto the same object read and listings. */
function frontDoors(
  config: Config,
  d: {
    tokens: TokenSet | null;
    reader: ObjectReader;
    listings: Listings;
    hubNative: HubNativeRevisions | null;
  },
): Door[] {
  const listings = d.listings;
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
        native: d.hubNative,
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
