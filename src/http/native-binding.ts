/**
 * The native HTTP door's part of the addon (addon/src/http/): its request
 * parser and its I/O threads. Loaded through src/transport/binding.ts.
 */
import type { NativeStore } from '../store/native.js';

export interface HttpDoorBinding {
  // The native HTTP door's request parser (addon/src/http/, docs/http-parser.md), for tests.
  /**
   * Parses `bytes` as one connection's stream, delivered in pieces starting at each of `cuts`,
   * up to `maxRequests` requests; stops at the first error, as the door would close there.
   */
  httpReplay(
    bytes: Uint8Array,
    limits?: Partial<HttpParserLimits>,
    cuts?: readonly number[],
    maxRequests?: number,
  ): ReplayedHttpRequest[];
  /** Every rejection of the parser, in table order. */
  httpParserErrors(): { name: string; status: number; description: string }[];

  // The native HTTP door's I/O threads (addon/src/http/door.h). Use it through src/http/native-door.ts.
  /** Binds one SO_REUSEPORT socket per thread and starts the threads; throws with `code` (EADDRINUSE...). */
  httpDoorStart(
    options: NativeHttpDoorOptions,
    onEvents: (events: NativeHttpEvent[]) => void,
  ): { id: number; port: number };
  /**
   * Answers request `id`. `headers` is a flat [name, value, ...] list (the door writes Content-Length and
   * Connection itself); `body` parts are sent from their own memory, pinned until written (do not modify
   * them meanwhile). An id whose connection is gone is ignored.
   */
  httpDoorRespond(
    door: number,
    id: number,
    status: number,
    headers: string[],
    body: Uint8Array[],
    options?: { close?: boolean; headOnly?: boolean; contentLength?: number },
  ): void;
  /**
   * A piece of an answer whose bytes JavaScript frames itself (status line, headers, body, chunked
   * framing): appended to the request's earlier pieces. `flags`: 1 the last piece, 2 close the
   * connection after it, 4 post a 'drain' event once the connection's queue is down to half its bound, 8 post one
   * naming the request (`answered`) once its answer's last byte is written.
   */
  httpDoorSend(door: number, id: number, pieces: Uint8Array[], flags: number): void;
  /** The fill a 'fill' event asked for is done (`ok`), or failed: then JavaScript gets the request whole. */
  /** `source`: the first chunk's source when the fill fetched it ('origin', 'peer', 'nvme'), else ''. */
  httpDoorFillDone(door: number, id: number, ok: boolean, source: string): void;
  /** Closes a connection (by its `conn` id); its unanswered requests get 'aborted' events. */
  httpDoorClose(door: number, conn: number): void;
  /** Connection `conn` carried a valid bearer token: it leaves the unauthenticated pool (the reserve). */
  httpDoorAuthenticate(door: number, conn: number): void;
  httpDoorStats(door: number): NativeHttpDoorStats;
  /** Closes the listeners and every connection and joins the threads. */
  httpDoorStop(door: number): void;

  /** Version bindings the fast path reads (addon/src/store/bindings.h); use through src/http/fast-path.ts. */
  readonly NativeBindings: new () => NativeBindings;
  /** Token digests and scopes the fast path checks (addon/src/auth/token_table.h). */
  readonly NativeTokens: new () => NativeTokens;
  /** The front doors' object reads on the fast path (addon/src/http/doors/routes.h); use through src/http/door-routes.ts. */
  readonly NativeDoorRoutes: new (
    o: NativeDoorRoutesOptions,
  ) => NativeDoorRoutes;
}

export interface NativeDoorRoutesOptions {
  /** The Hub door's path on the HTTP port, its container, and most files over all published revisions. */
  hub: { path: string; container: string; maxFiles: number } | null;
  /** The S3 door's path, its virtual-host base domain, its buckets (null: any) and s3.maxClockSkew. */
  s3: {
    path: string;
    baseDomain: string | null;
    buckets: readonly string[] | null;
    maxClockSkewMs?: number;
  } | null;
  /** The Azure Blob door's path, its one account (null: any) and azure.maxClockSkew; absent: no Azure door. */
  azure?: { path: string; account: string | null; maxClockSkewMs?: number } | null;
}

/** A Hub revision (a listing snapshot) as the fast path maps `resolve/{sha}/{file}` with it. */
export interface NativeHubRevision {
  sha: string;
  /** The repo's key prefix, "org/name/". */
  prefix: string;
  files: ReadonlyArray<{ path: string; etag: string; size: number; blobId: string; contentType: string }>;
  /** From now, on the addon's monotonic clock. */
  validForMs: number;
}

export interface NativeDoorRoutes {
  /** False when not installed (a bound reached, or no Hub door): JavaScript answers its files. */
  publishHubRevision(r: NativeHubRevision): boolean;
  removeHubRevision(sha: string): boolean;
  /**
   * Answers on the fast path per door (304s included); of them GETs with a body, and of those the
   * ones whose first chunk was read from NVMe; of the S3 answers those whose signature was verified
   * natively (auth on); signed S3 reads left to JavaScript (a signature not verified, or a bucket
   * out of the token's scope); the same for Azure reads of a node with auth (a SAS or bearer token
   * verified natively, or left to JavaScript); Hub revisions held.
   */
  stats(): {
    hubHits: number;
    hubBodyHits: number;
    hubNvmeBodyHits: number;
    s3Hits: number;
    s3BodyHits: number;
    s3NvmeBodyHits: number;
    s3SignedHits: number;
    s3SignedDeclined: number;
    azureHits: number;
    azureBodyHits: number;
    azureNvmeBodyHits: number;
    azureSignedHits: number;
    azureSignedDeclined: number;
    hubRevisions: number;
  };
}

export interface NativeVersionBinding {
  /** container/key */
  name: string;
  /** The version's object id (16 bytes): its chunks are (objectId, index) in the native store. */
  objectId: Uint8Array;
  /** Unquoted. */
  etag: string;
  size: number;
  chunkSize: number;
  /** As the Last-Modified header says it. */
  lastModified: string;
  contentType: string;
  /** The blob's Content-MD5 (base64) when the origin keeps one (the Azure door sends it). */
  contentMd5?: string;
  /** From `measuredAtNs` (else from now), on the addon's monotonic clock. */
  validForMs: number;
  /** process.hrtime.bigint() when validForMs was measured: the deadline is counted from there. */
  measuredAtNs?: bigint;
}

export interface NativeBindings {
  /** False when not installed (the table is full, or a value JavaScript must answer). */
  set(b: NativeVersionBinding): boolean;
  remove(name: string): boolean;
  /** Every binding whose name starts with `prefix` ('' for all); returns how many. */
  removePrefix(prefix: string): number;
  /** Names of bindings the fast path has used that run out within `withinMs` (at most `max`). */
  usedExpiring(withinMs: number, max: number): string[];
  /**
   * Bindings the fast paths answered from since the last call (each at most once per 100 ms), for
   * the stale-read check: name, etag, when the binding's validity was measured and when it was
   * used (CLOCK_MONOTONIC ns, process.hrtime's clock); `dropped`: reports lost past 4,096 waiting, in all.
   */
  takeServed(): { names: string[]; etags: string[]; boundNs: number[]; usedNs: number[]; dropped: number };
  size(): number;
}

export interface NativeTokens {
  /** `enabled` false: auth is off. `containers` null: every container. */
  replace(
    enabled: boolean,
    grants: ReadonlyArray<{
      digest: Uint8Array;
      admin: boolean;
      containers: readonly string[] | null;
      /** The token itself: the secret of signed S3 reads the fast path verifies (memory only). */
      secret?: string;
    }>,
  ): void;
}

/** httpDoorStart's `fast`: hits answered on the I/O threads (addon/src/http/fastpath.h). */
export interface NativeFastPathOptions {
  store: NativeStore;
  bindings: NativeBindings;
  tokens: NativeTokens;
  /** http.maxRanges: Range headers are read exactly as the JavaScript door reads them. */
  maxRanges: number;
  /** Keep-Alive: timeout=… in answers, as node's. */
  keepAliveTimeoutMs: number;
  /** The front doors' object reads (the Hub's file downloads) on the fast path too. */
  doors?: NativeDoorRoutes;
  /**
   * A miss of /v1/objects is parked on its I/O thread and a 'fill' event asks JavaScript to make
   * it resident (answered with httpDoorFillDone), instead of the whole request going to JavaScript.
   */
  fillMisses?: boolean;
}

export interface NativeHttpDoorOptions {
  host: string;
  port: number;
  threads?: number;
  maxConnections?: number;
  /** Open connections from one client address (an IPv6 /64); 0 or absent: no limit. */
  maxPerAddress?: number;
  /** Auth is on: connections start unauthenticated (httpDoorAuthenticate, or a fast-path hit, proves one). */
  authRequired?: boolean;
  /** With authRequired: slots unauthenticated connections may not take (< maxConnections). */
  reserved?: number;
  maxInFlight?: number;
  maxBufferedBytes?: number;
  /** Accept → the first request's complete head. */
  firstRequestTimeoutMs?: number;
  /** A later request's first byte → its complete head. */
  headerTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** A request's head's first byte → its whole body (node's requestTimeout): else 408 and close. */
  requestTimeoutMs?: number;
  /**
   * Fast-path answer bytes queued and not yet written, all connections (http.maxInFlightBytes): at or
   * past it, hits go to JavaScript (whose answers wait in its send budget). Absent or 0: no bound.
   */
  maxFastQueuedBytes?: number;
  maxRequestLineBytes?: number;
  maxHeaderCount?: number;
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
  /**
   * Per connection: body bytes of requests handed to JavaScript and not yet answered; at or past it
   * the connection is not read (default 2 MiB). With authRequired, a connection without a valid token
   * has one request handed on at a time.
   */
  maxPostedBodyBytes?: number;
  /** Hits answered on the I/O threads; absent: every request goes to JavaScript. */
  fast?: NativeFastPathOptions;
  /** Upper bounds (seconds, ascending, ≤ 32) of the histogram fast-path answer durations are counted in. */
  durationBounds?: readonly number[];
  /** Fast-path answers go to the access log ('access' events); absent or false: they are only counted. */
  accessLog?: boolean;
}

/** A fast-path answer for the access log (src/log/access.ts's fields; source is always dram). */
export interface NativeAccessRecord {
  method: string;
  target: string;
  client: string;
  /** HTTP's status; absent for a RESP fast-path reply (never an error: OK). */
  status?: number;
  /** Body bytes written (HEAD and 304: 0). */
  bytes: number;
  /** Request head parsed → last byte written. */
  durationMs: number;
  /** The connection went away before the answer was written. */
  aborted?: boolean;
  /** 'nvme': the bytes were read from NVMe (else DRAM). */
  source?: 'nvme';
}

export type NativeHttpEvent =
  | {
      kind: 'request';
      id: number;
      conn: number;
      method: string;
      target: string;
      /** Raw (percent-encoded); '/' for an absolute-form target without a path. */
      path: string;
      query: string;
      hasQuery: boolean;
      /** The absolute-form target's authority, else the Host field. */
      authority: string;
      versionMinor: number;
      keepAlive: boolean;
      peer: string;
      headers: [string, string][];
      body: Buffer;
    }
  | { kind: 'aborted'; id: number; conn: number; reason: string }
  /** The connection's queue is down to half its bound; `written`: bytes written since the last drain. */
  | { kind: 'drain'; id: number; conn: number; written: number; answered: boolean }
  /** A connection that posted requests is closed (after any 'aborted' for its requests). */
  | { kind: 'closed'; id: number; conn: number; reason: string }
  /** Fast-path answers for the access log (with accessLog), one batch per I/O-thread wakeup. */
  | { kind: 'access'; records: NativeAccessRecord[] }
  /** A fast-path miss is parked: make it resident, then call httpDoorFillDone(door, id, ok). */
  | ({ kind: 'fill'; id: number; conn: number } & NativeFill)
  /** Parked request `id` no longer waits (its client left, or it was answered 504): stop its fill. */
  | { kind: 'fillCancel'; id: number; conn: number };

/**
 * What a parked miss needs resident: `name` ("container/key") resolved (with `pin`, its
 * ?version=, as the expected version), and when `first` ≥ 0 the chunks `first`..`last` of
 * version `etag` in the store.
 */
export interface NativeFill {
  name: string;
  pin: string;
  etag: string;
  first: number;
  last: number;
}

export interface NativeHttpDoorStats {
  connectionsAccepted: number;
  /** Refused at accept: at maxConnections with no idle connection to take the place of. */
  connectionsRejected: number;
  /** Refused at accept: over maxPerAddress. */
  rejectedPerAddress: number;
  /** Refused at accept: unauthenticated, with the reserve all that is left. */
  rejectedReserve: number;
  /** Closed (idle longest) to make room for a newcomer at maxConnections or at the reserve. */
  idleEvicted: number;
  /** Closed for sending more than maxInFlight requests in one go. */
  pipelineCuts: number;
  /** Closed (408) for no first request head in time, or unauthenticated and idle that long. */
  firstRequestTimeouts: number;
  /** Open connections that have not presented a valid token (auth on). */
  unauthenticated: number;
  connectionsOpen: number;
  /** Posted to JavaScript. */
  requests: number;
  /** Answers written completely. */
  responses: number;
  /** Posted and neither answered nor abandoned. */
  inFlight: number;
  parseErrors: number;
  headerTimeouts: number;
  idleTimeouts: number;
  /** Requests whose body had not all arrived within requestTimeoutMs of their first byte (408). */
  requestTimeouts: number;
  /** Fast-path answer bytes queued until each answer is written, all connections. */
  fastQueuedBytes: number;
  /** Requests sent to JavaScript because fastQueuedBytes was at maxFastQueuedBytes. */
  fastOverBudget: number;
  /** Body bytes of requests handed to JavaScript whose answers are not yet written, all connections. */
  postedBodyBytes: number;
  bytesRead: number;
  bytesWritten: number;
  /** Body Buffers pinned until written. */
  pinnedBuffers: number;
  /** Answer bytes queued and not yet written, all connections. */
  bufferedBytes: number;
  /** Times a connection stopped reading at one of its bounds (in flight, buffered bytes, posted bodies, a stranger's one request). */
  pausedReads: number;
  /** With a fast path: answered on the I/O threads (200, 206, 304) and their body bytes. */
  fastHits?: number;
  fastBodyBytes?: number;
  /** Of fastHits: GETs answered with a body (object reads of the objects door, source dram). */
  fastBodyHits?: number;
  fastNotModified?: number;
  /** With a fast path: sent to JavaScript for want of a valid binding, a chunk in DRAM, a token allowed, or otherwise. */
  fastNoBinding?: number;
  /** To JavaScript because an earlier request of the connection had not been answered there yet. */
  fastBusy?: number;
  fastMisses?: number;
  fastUnauthorised?: number;
  fastOther?: number;
  /** Chunk references and NVMe read buffers held by fast-path answers not yet written: 0 once they are. */
  fastChunkRefs?: number;
  /** Misses parked for a fill (each fill asked), answered natively once filled, handed whole to JavaScript after a fill, not parked at a limit, answered 504 past the request timeout; parked now. */
  fastFillParked?: number;
  fastFillResumed?: number;
  fastFillFallback?: number;
  fastFillOverflow?: number;
  fastFillTimeouts?: number;
  fastFillWaiting?: number;
  /**
   * Resumed misses answered with their first chunk from DRAM whose fill fetched that chunk, by the
   * fill's source [origin, peer, nvme], and their bytes not read from NVMe: counted in fastBodyHits /
   * fastBodyBytes too, and reported (X-Cache-Source, metrics) as that source, as JavaScript's reads are.
   */
  fastFillSourceHits?: number[];
  fastFillSourceBytes?: number[];
  /**
   * Durations of fast-path answers, every I/O thread's summed: counts per bucket of durationBounds
   * (not cumulative; the last is +Inf), their sum and count.
   */
  fastDurations?: { buckets: number[]; sumSeconds: number; count: number };
  /** Access records dropped because JavaScript had not taken the 10,000 before them (never blocks a thread). */
  accessDropped: number;
  /** Of fastBodyHits: answers whose first chunk was read from NVMe on the I/O thread (source nvme). */
  fastNvmeHits?: number;
  /** Of fastBodyBytes: bytes read from NVMe. */
  fastNvmeBodyBytes?: number;
}

export interface HttpParserLimits {
  maxRequestLineBytes: number;
  maxHeaderCount: number;
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

/** One request as the native parser saw it; strings are latin1 (one char per byte). */
export interface ReplayedHttpRequest {
  /** Head and body parsed. */
  complete: boolean;
  /** Why the connection would be closed (a name from httpParserErrors), or null. */
  error: string | null;
  /** The status the door answers for `error` (0 without one). */
  status: number;
  /** Stream offset of the byte where the error was found. */
  errorOffset: number;
  start: number;
  headBytes: number;
  end: number;
  method: string;
  target: string;
  form: 'origin' | 'absolute' | 'asterisk';
  scheme: string;
  authority: string;
  host: string;
  hasHost: boolean;
  path: string;
  query: string;
  hasQuery: boolean;
  versionMinor: number;
  keepAlive: boolean;
  expectContinue: boolean;
  framing: 'none' | 'content-length' | 'chunked';
  contentLength: number;
  headers: [string, string][];
  body: Buffer;
}
