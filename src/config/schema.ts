/**
 * The one schema of weightcache's configuration.
 * Every key is documented in docs/configuration.md; keys are only added,
 * never renamed. Objects are strict: an unknown key is an error that names it.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatBytes, parseDuration, parseSize } from './units.js';

// The issue's path names the key, so messages only say what is wrong with the value.
const size = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const duration = () =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const HOST_PORT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** "host:port" → { host, port }, with the port in 0..65535 (0 = pick a free one). */
export const listenAddress = z.string().transform((v, ctx) => {
  const m = HOST_PORT_RE.exec(v);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) {
    ctx.addIssue({
      code: 'custom',
      message: `expected "host:port" with a port 0-65535, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
});

const originSchema = z.strictObject({
  type: z.enum(['fs', 'azure', 'http', 's3']).default('fs'),
  timeout: duration().default(30_000),
  maxConcurrency: z.number().int().min(1).max(1024).default(32),
  fs: z
    .strictObject({
      root: z.string().min(1).default('./var/origin'),
      // Chunk reads with O_DIRECT, straight into chunk memory (docs/origins.md).
      directIo: z.boolean().default(true),
    })
    .default({ root: './var/origin', directIo: true }),
  azure: z
    .strictObject({ connectionString: z.string().min(1) })
    .nullable()
    .default(null),
  http: z
    .strictObject({
      baseUrl: z.url({ protocol: /^https?$/ }),
      headers: z.record(z.string(), z.string()).default({}),
    })
    .nullable()
    .default(null),
  s3: z
    .strictObject({
      endpoint: z.url({ protocol: /^https?$/ }),
      region: z
        .string()
        .regex(/^[a-z0-9-]{1,64}$/, 'expected a region name such as us-east-1')
        .default('us-east-1'),
      bucket: z.string().min(1).max(255).nullable().default(null),
      pathStyle: z.boolean().default(false),
      credentials: z
        .strictObject({
          source: z.enum(['env', 'file', 'webIdentity', 'none']).default('env'),
          file: z.string().min(1).nullable().default(null),
          profile: z.string().min(1).default('default'),
          roleArn: z.string().min(1).nullable().default(null),
          tokenFile: z.string().min(1).nullable().default(null),
          stsEndpoint: z
            .url({ protocol: /^https?$/ })
            .nullable()
            .default(null),
          sessionName: z
            .string()
            .regex(/^[\w+=,.@-]{2,64}$/)
            .default('weightcache'),
        })
        .prefault({}),
    })
    .nullable()
    .default(null),
});

/** "host:port" of a cluster member (port 1-65535); IPv6 in brackets. */
const memberAddress = z.string().refine((v) => {
  const m = HOST_PORT_RE.exec(v);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}, 'expected "host:port" ("10.0.0.5:7420", "[fd00::5]:7420", "node-a:7420") with a port 1-65535');

/** A static member: "host:port" (weight 1) or { address, weight }; normalised to the object form. */
const staticMember = z
  .union([
    memberAddress,
    z.strictObject({
      address: memberAddress,
      weight: z.number().positive().max(1e6).default(1),
    }),
  ])
  .transform((v) => (typeof v === 'string' ? { address: v, weight: 1 } : v));

const DNS_SERVER_RE = /^(?:\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([0-9.]+)(?::(\d{1,5}))?|([0-9a-fA-F:]+))$/;

/** A DNS server to query instead of the system resolver: "ip", "ip:port" or "[v6]:port". */
const dnsServer = z.string().refine((v) => {
  const m = DNS_SERVER_RE.exec(v);
  if (!m) return false;
  const ip = m[1] ?? m[3] ?? m[5] ?? '';
  const port = Number(m[2] ?? m[4] ?? 53);
  return isIP(ip) !== 0 && port >= 1 && port <= 65535;
}, 'expected an IP address with an optional port ("10.0.0.10", "127.0.0.1:5353", "[::1]:5353")');

/** Where the member list comes from: exactly one of the two. */
export type MembersSource =
  | { static: Array<{ address: string; weight: number }> }
  | { dns: { name: string; port: number; interval: number; servers?: string[] | undefined } };

const clusterSchema = z
  .strictObject({
    self: z.string().nullable().default(null),
    // One object with both keys optional rather than a z.union: a union reports
    // "Invalid input" for a typo inside either branch; this names the key.
    members: z
      .strictObject({
        static: z
          .array(staticMember)
          .min(1, 'list at least one member')
          .max(1024)
          .superRefine((ms, ctx) => {
            const seen = new Set<string>();
            for (const m of ms) {
              if (seen.has(m.address)) {
                ctx.addIssue({ code: 'custom', message: `duplicate member ${JSON.stringify(m.address)}` });
              }
              seen.add(m.address);
            }
          })
          .optional(),
        dns: z
          .strictObject({
            name: z.string().min(1).max(253),
            port: z.number().int().min(1).max(65535),
            interval: duration()
              .default(10_000)
              .refine((ms) => ms >= 100 && ms <= 3_600_000, 'must be between 100ms and 1h'),
            servers: z.array(dnsServer).min(1).max(16).optional(),
          })
          .optional(),
      })
      .superRefine((v, ctx) => {
        if ((v.static === undefined) === (v.dns === undefined)) {
          ctx.addIssue({ code: 'custom', message: 'set exactly one of static or dns' });
        }
      })
      .transform((v): MembersSource => (v.static ? { static: v.static } : { dns: v.dns! }))
      .nullable()
      .default(null),
    peerBackoff: duration().default(5_000),
    peerBackoffMax: duration().default(60_000),
    peerTimeout: duration().default(10_000),
    ownerProbes: z.number().int().min(0).max(64).default(8),
  })
  .superRefine((c, ctx) => {
    if (c.peerBackoffMax < c.peerBackoff) {
      ctx.addIssue({
        code: 'custom',
        path: ['peerBackoffMax'],
        message: `must be >= cluster.peerBackoff (${c.peerBackoff}ms)`,
      });
    }
  });

/** The most I/O threads a native door runs (http.threads, resp.threads; `null` picks min(cores, this)). */
export const MAX_DOOR_THREADS = 32;

/** A front door's path on the HTTP port: one segment, e.g. "/s3"; the cache's own routes are taken. */
const doorPath = z
  .string()
  .regex(
    /^\/[a-z0-9][a-z0-9-]{0,31}$/,
    'expected one path segment such as "/s3" (lower-case letters, digits, -)',
  )
  .refine(
    (p) => !['/v1', '/metrics', '/healthz', '/readyz'].includes(p),
    "this path is one of the cache's own routes",
  );

/** A front door's own listener (it answers at the root there); null: only under its path on http.listen. */
const doorListen = listenAddress.nullable().default(null);

/** PEM files for a door's TLS; null: plain TCP. */
const tlsSchema = z
  .strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) })
  .nullable()
  .default(null);

export const configSchema = z
  .strictObject({
    http: z
      .strictObject({
        listen: listenAddress.default({ host: '127.0.0.1', port: 8420 }),
        maxConnections: z.number().int().min(1).max(100_000).default(4096),
        maxRanges: z.number().int().min(1).max(1000).default(16),
        idleTimeout: duration().default(65_000),
        shutdownGrace: duration().default(30_000),
        tls: tlsSchema,
        // Abuse bounds of the HTTP door, each explained in docs/configuration.md and docs/http-api.md.
        maxConnectionsPerAddress: z.number().int().min(1).max(100_000).nullable().default(256),
        reservedConnections: z.number().int().min(0).max(100_000).nullable().default(null),
        firstRequestTimeout: duration()
          .default(10_000)
          .refine((ms) => ms >= 100 && ms <= 600_000, 'must be between 100ms and 10m'),
        maxPipelined: z.number().int().min(1).max(1024).default(16),
        maxInFlightBytes: size().default(512 * 2 ** 20),
        maxSlowClientBytes: size().default(128 * 2 ** 20),
        slowClientAfter: duration()
          .default(2_000)
          .refine((ms) => ms >= 10, 'must be at least 10ms'),
        queueTimeout: duration()
          .default(10_000)
          .refine((ms) => ms >= 1, 'must be at least 1ms'),
        metricsCache: duration().default(1_000),
        // Which code serves http.listen (docs/http-api.md, "The native door"): node:http, or the addon's I/O
        // threads. With http.tls the listener is node:https whichever is named (docs/native-http-door.md).
        door: z.enum(['js', 'native']).default('native'),
        // null: one I/O thread per core (os.availableParallelism()), at most MAX_DOOR_THREADS.
        threads: z.number().int().min(1).max(MAX_DOOR_THREADS).nullable().default(null),
        headersTimeout: duration()
          .default(30_000)
          .refine((ms) => ms >= 100 && ms <= 600_000, 'must be between 100ms and 10m'),
        // Native door only (node:http's parser has its own 16 KiB head limit).
        maxRequestLine: size()
          .default(8 * 1024 + 64)
          .refine((n) => n >= 64 && n <= 1024 * 1024, 'must be between 64B and 1MiB'),
        maxHeaderCount: z.number().int().min(1).max(10_000).default(100),
        maxHeaderBytes: size()
          .default(16 * 1024)
          .refine((n) => n >= 64 && n <= 1024 * 1024, 'must be between 64B and 1MiB'),
        // Like a socket buffer: the send budget sees a client that does not take these as slow.
        maxBufferedBytes: size()
          .default(2 ** 20)
          .refine((n) => n >= 64 * 1024 && n <= 2 ** 31, 'must be between 64KiB and 2GiB'),
      })
      .superRefine((h, ctx) => {
        if (h.reservedConnections !== null && h.reservedConnections >= h.maxConnections) {
          ctx.addIssue({
            code: 'custom',
            path: ['reservedConnections'],
            message: `must be less than http.maxConnections (${h.maxConnections})`,
          });
        }
        if (h.maxSlowClientBytes > h.maxInFlightBytes) {
          ctx.addIssue({
            code: 'custom',
            path: ['maxSlowClientBytes'],
            message: `must be at most http.maxInFlightBytes (${h.maxInFlightBytes} bytes)`,
          });
        }
      })
      .prefault({}),
    // Limits modelled on Redis's (512 MiB = proto-max-bulk-len); each is explained in docs/resp.md.
    resp: z
      .strictObject({
        listen: listenAddress.default({ host: '127.0.0.1', port: 6380 }),
        maxClients: z.number().int().min(1).max(100_000).default(10_000),
        maxArgs: z.number().int().min(3).max(1_048_576).default(4096),
        maxBulkBytes: size().pipe(z.int().min(1024).max(536_870_912)).default(536_870_912),
        maxQueryBufferBytes: size().pipe(z.int().min(65_536).max(1_073_741_824)).default(8_388_608),
        maxGetBytes: size().pipe(z.int().min(1).max(536_870_912)).default(536_870_912),
        idleTimeout: duration().default(300_000),
        shutdownGrace: duration().default(30_000),
        // What strangers (before AUTH) and slow readers may hold: docs/resp.md, "Connections" and "Memory".
        preAuthTimeout: duration()
          .default(10_000)
          .refine((ms) => ms >= 100 && ms <= 300_000, 'must be between 100ms and 5m'),
        maxUnauthenticated: z.number().int().min(1).max(100_000).nullable().default(null),
        maxUnauthenticatedPerAddress: z.number().int().min(1).max(100_000).default(32),
        maxReplyMemory: size().pipe(z.int().min(1_048_576).max(68_719_476_736)).default(268_435_456),
        resp3: z.boolean().default(true),
        tls: tlsSchema,
        // Which code serves resp.listen (docs/resp.md, "The native door"): node's sockets, or the addon's I/O threads.
        door: z.enum(['js', 'native']).default('js'),
        // Native door: null: one I/O thread per core (os.availableParallelism()), at most MAX_DOOR_THREADS.
        threads: z.number().int().min(1).max(MAX_DOOR_THREADS).nullable().default(null),
      })
      .superRefine((r, ctx) => {
        if (r.door === 'native' && r.tls !== null) {
          ctx.addIssue({
            code: 'custom',
            path: ['door'],
            message: 'the native door does not serve TLS: use resp.door: js with resp.tls',
          });
        }
      })
      .nullable()
      .default(null),
    // What a stranger may hold before authenticating is explained in docs/wire-protocol.md.
    transport: z
      .strictObject({
        listen: listenAddress.default({ host: '127.0.0.1', port: 7420 }),
        maxConnections: z.number().int().min(1).max(100_000).default(1024),
        preAuthTimeout: duration()
          .default(5_000)
          .refine((ms) => ms >= 100 && ms <= 300_000, 'must be between 100ms and 5m'),
        maxUnauthenticated: z.number().int().min(1).max(100_000).default(256),
        maxUnauthenticatedPerAddress: z.number().int().min(1).max(100_000).default(16),
        // READ_CHUNK hits answered on the addon's I/O thread from the DRAM store (docs/wire-protocol.md).
        nativeReads: z.boolean().default(true),
      })
      .nullable()
      .default(null),
    origin: originSchema.prefault({}),
    // Front doors for existing loaders (docs/doors.md); null turns one off.
    s3: z
      .strictObject({
        path: doorPath.default('/s3'),
        listen: doorListen,
        region: z
          .string()
          .regex(/^[a-z0-9-]{1,64}$/, 'expected a region name such as us-east-1')
          .default('us-east-1'),
        baseDomain: z
          .string()
          .regex(/^[a-z0-9.-]{1,253}$/, 'expected a DNS name such as s3.cache.example')
          .nullable()
          .default(null),
        buckets: z.array(z.string().min(1).max(255)).max(10_000).nullable().default(null),
        maxClockSkew: duration().default(900_000),
      })
      .nullable()
      .prefault({}),
    hub: z
      .strictObject({
        path: doorPath.default('/hf'),
        listen: doorListen,
        container: z.string().min(1).max(255).default('models'),
        treePageSize: z.number().int().min(1).max(10_000).default(1000),
      })
      .nullable()
      .prefault({}),
    azure: z
      .strictObject({
        path: doorPath.default('/azure'),
        listen: doorListen,
        account: z
          .string()
          .regex(/^[a-z0-9]{3,24}$/, 'expected an Azure account name: 3-24 lower-case letters and digits')
          .nullable()
          .default(null),
        maxClockSkew: duration().default(900_000),
      })
      .nullable()
      .prefault({}),
    listing: z
      .strictObject({
        maxFiles: z.number().int().min(1).max(1_000_000).default(100_000),
        retainFiles: z.number().int().min(1).max(100_000_000).default(1_000_000),
        retain: duration().default(600_000),
      })
      .prefault({}),
    cache: z
      .strictObject({
        chunkSize: size().default(4 * 2 ** 20),
        readAhead: z.number().int().min(0).max(64).default(4),
        dram: z.strictObject({ maxBytes: size().default(2 ** 30) }).prefault({}),
        nvme: z
          .strictObject({
            dir: z.string().min(1).default('./var/chunks'),
            maxBytes: size().default(50 * 2 ** 30),
            // Reads in flight to the device (docs/tiers.md "Reads").
            queueDepth: z.number().int().min(1).max(1024).default(32),
            openFiles: z.number().int().min(1).max(65_536).default(256),
            directIo: z.boolean().default(true),
            io: z.enum(['auto', 'threads']).default('auto'),
            ioThreads: z.number().int().min(1).max(256).default(4),
          })
          .nullable()
          .prefault({}),
      })
      .superRefine((c, ctx) => {
        // Refused here, at start, rather than found out at the first fill: a
        // DRAM budget below one chunk would keep nothing a read fills.
        if (c.dram.maxBytes < c.chunkSize) {
          ctx.addIssue({
            code: 'custom',
            path: ['dram', 'maxBytes'],
            message: `${formatBytes(c.dram.maxBytes)} is less than one chunk (cache.chunkSize ${formatBytes(c.chunkSize)}): raise cache.dram.maxBytes or lower cache.chunkSize`,
          });
        }
      })
      .prefault({}),
    leases: z
      .strictObject({
        term: duration().default(30_000),
        // Covers clock-rate drift between a holder and its home (docs/coherence.md, "The margin").
        // null: 1s, or a tenth of a shorter term.
        margin: duration().nullable().default(null),
        // How long other processes may still see an old member list; null: the DNS interval + 5 s, or 0 for static.
        membershipLag: duration().nullable().default(null),
      })
      .transform((l) => ({ ...l, margin: l.margin ?? Math.min(1_000, l.term / 10) }))
      .superRefine((l, ctx) => {
        if (l.term < 10) ctx.addIssue({ code: 'custom', path: ['term'], message: 'must be at least 10ms' });
        if (l.margin >= l.term) {
          ctx.addIssue({
            code: 'custom',
            path: ['margin'],
            message: `must be less than leases.term (${l.term}ms)`,
          });
        } else if (l.margin < l.term / 1000) {
          ctx.addIssue({
            code: 'custom',
            path: ['margin'],
            message: `must be at least leases.term / 1000 (${l.term / 1000}ms): it covers 0.1% clock-rate drift`,
          });
        }
      })
      .prefault({}),
    cluster: clusterSchema.prefault({}),
    sidecar: z
      .strictObject({
        socket: z.string().nullable().default(null),
        originFallback: z.boolean().default(true),
        // Peer chunks read straight into DRAM store memory, kept without a copy (docs/wire-protocol.md).
        receiveInPlace: z.boolean().default(false),
      })
      .prefault({}),
    // The read-only FUSE mount (docs/mount.md); null: off.
    mount: z
      .strictObject({
        path: z.string().min(1),
        containers: z.array(z.string().min(1).max(255)).min(1).max(1000),
        modelDepth: z.number().int().min(1).max(16).default(1),
        threads: z.number().int().min(1).max(64).default(4),
        requestTimeout: duration()
          .default(30_000)
          .refine((ms) => ms >= 100 && ms <= 600_000, 'must be between 100ms and 10m'),
        listInterval: duration()
          .default(10_000)
          .refine((ms) => ms >= 0 && ms <= 3_600_000, 'must be between 0 and 1h'),
        maxPending: z.number().int().min(1).max(1_000_000).default(4096),
        maxBackground: z.number().int().min(1).max(1024).default(64),
        // The kernel's readahead window for the mount (its bdi's read_ahead_kb; docs/mount.md).
        readAhead: size()
          .default(2 ** 20)
          .refine((b) => b >= 4096 && b <= 64 * 2 ** 20, 'must be between 4KiB and 64MiB'),
        maxOpenFiles: z.number().int().min(1).max(10_000_000).default(65_536),
        allowOther: z.boolean().default(true),
      })
      .nullable()
      .default(null),
    auth: z
      .strictObject({
        tokensFile: z.string().nullable().default(null),
        adminTokensFile: z.string().nullable().default(null),
        clusterSecretFile: z.string().nullable().default(null),
        // /metrics without a token is an explicit opt-in (docs/security.md).
        openMetrics: z.boolean().default(false),
        insecure: z.boolean().default(false),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        // One line per request (src/log/access.ts); on by itself at debug and trace.
        access: z.boolean().default(false),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const cs = c.cache.chunkSize;
    if (cs < 64 * 1024 || cs > 64 * 2 ** 20 || cs % 4096 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['cache', 'chunkSize'],
        message: 'must be a multiple of 4KiB between 64KiB and 64MiB',
      });
    }
    // One HTTP response reserves up to its read's window: (readAhead + 1) chunks (src/http/send-budget.ts).
    const window = (c.cache.readAhead + 1) * cs;
    for (const key of ['maxInFlightBytes', 'maxSlowClientBytes'] as const) {
      if (c.http[key] < window) {
        ctx.addIssue({
          code: 'custom',
          path: ['http', key],
          message: `must be at least one response's read window, (cache.readAhead + 1) × cache.chunkSize = ${window} bytes`,
        });
      }
    }
    if (c.origin.type === 'azure' && !c.origin.azure) {
      ctx.addIssue({
        code: 'custom',
        path: ['origin', 'azure'],
        message: 'origin.type is azure but origin.azure.connectionString is not set',
      });
    }
    const paths = [c.s3?.path, c.hub?.path, c.azure?.path].filter((p) => p !== undefined);
    if (new Set(paths).size !== paths.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['s3', 'path'],
        message: 's3.path, hub.path and azure.path must differ',
      });
    }
    if (c.origin.type === 'http' && !c.origin.http) {
      ctx.addIssue({
        code: 'custom',
        path: ['origin', 'http'],
        message: 'origin.type is http but origin.http.baseUrl is not set',
      });
    }
    if (c.origin.type === 's3' && !c.origin.s3) {
      ctx.addIssue({
        code: 'custom',
        path: ['origin', 's3'],
        message: 'origin.type is s3 but origin.s3.endpoint is not set',
      });
    }
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
