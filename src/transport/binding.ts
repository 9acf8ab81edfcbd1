/**
 * The typed face of the native addon (addon/). Everything native goes through
 * this one interface, so the rest of the code never touches `require` or
 * untyped exports.
 */

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FillBinding } from '../fill/file-jobs.js';
import type { HttpDoorBinding, NativeBindings } from '../http/native-binding.js';
import type { FuseBinding } from '../mount/binding.js';
import type { RespDoorBinding } from '../resp/native-binding.js';
import type { NativeStore, NativeStoreOptions } from '../store/native.js';

/** Every export of the addon; the HTTP and RESP doors' and the mount's parts are typed beside their code. */
export interface Binding extends HttpDoorBinding, RespDoorBinding, FuseBinding, FillBinding {
  /** CRC32C of `data`, extending `seed` (0 for a fresh checksum). */
  crc32c(data: Uint8Array, seed?: number): number;
  /** One implementation by name (see crc32cImplementations), for tests and the microbenchmark. */
  crc32cWith(implementation: string, data: Uint8Array, seed?: number): number;
  /** CRC32C of A followed by B, from CRC32C(A), CRC32C(B) and B's length (CRC combine). */
  crc32cCombine(crcA: number, crcB: number, lengthB: number): number;
  /** What crc32c uses on this CPU: 'avx512', 'sse4.2' or 'table'. */
  readonly crc32cImplementation: string;
  /** The implementations this CPU can run, slowest first ('table' is always there). */
  readonly crc32cImplementations: readonly string[];

  // The NVMe tier's chunk files (addon/src/nvme/), used through src/tier/chunk-file.ts and nvme-reader.ts.
  nvmeEncodeHeader(
    key: string,
    objectId: Uint8Array,
    index: number,
    data: Uint8Array,
    blockBytes: number,
  ): { header: Buffer; dataCrc: number };
  nvmeDecodeHeader(buf: Uint8Array): NativeChunkHeader | NativeHeaderFailure;
  /** Takes the directory's lock file; throws with code 'ELOCKED' (and holderPid) when another holds it. */
  nvmeLockDir(dir: string): number;
  nvmeUnlockDir(fd: number): void;
  readonly NvmeReader: new (
    options: NativeReaderOptions,
    onDone: (results: unknown[]) => void,
  ) => NativeReader;
  readonly nvmeFormat: {
    readonly formatVersion: number;
    readonly fixedHeaderBytes: number;
    readonly maxKeyBytes: number;
    readonly maxDataBytes: number;
    readonly maxDataOffset: number;
    readonly alignBytes: number;
    readonly defaultBlockBytes: number;
    readonly minBlockBytes: number;
    readonly maxBlockBytes: number;
  };

  // The native transport (docs/wire-protocol.md). Use it through
  // src/transport/native.ts, which owns the single event callback.
  /** Starts the I/O thread; `onEvent` receives every event, on the JS thread. Once per process. */
  transportInit(onEvent: (event: NativeEvent) => void): void;
  /** Keeps the process alive while there is transport work (counted in native.ts). */
  transportRef(): void;
  transportUnref(): void;
  /**
   * Binds and listens on the JS thread (throws with `code`, e.g. EADDRINUSE); accepts on the I/O thread.
   * Accepted connections start unauthenticated (docs/wire-protocol.md, "Before authentication"): only
   * small HELLO/AUTH frames, one at a time, within `preAuthTimeoutMs`; see `admit` in transportSend.
   */
  transportListen(
    host: string,
    port: number,
    maxFrameBytes: number,
    maxInFlight: number,
    maxConnections: number,
    preAuthTimeoutMs: number,
    maxUnauthenticated: number,
    maxUnauthenticatedPerAddress: number,
  ): { id: number; port: number };
  transportCloseListener(id: number): void;
  /**
   * READ_CHUNK requests on the listener's admitted connections for chunks of bound versions that
   * are whole in `store` are answered on the I/O thread (addon/src/transport/chunk_serve.h);
   * null turns that off. Everything else still comes to JavaScript as a frame event.
   */
  transportServeNative(listener: number, source: NativeChunkSource | null): void;
  /**
   * READ_CHUNK answers of ≥ 64 KiB on outbound connections are read straight into allocations of
   * `store` (null: the receive pool), so committing them (NativeStore.commit) publishes them in
   * place, after the CRC32C check, without a copy.
   */
  transportReceiveInto(store: NativeStore | null): void;
  /** Starts a connection; a 'connected' or 'closed' event follows. `host` must be an IP address. */
  transportConnect(host: string, port: number, maxFrameBytes: number, maxInFlight: number): number;
  /**
   * Queues one frame. `payload` is sent from its own memory (pinned until written; do not modify it
   * meanwhile); or `filePath` is sent with sendfile(2) from [fileOffset, fileOffset + length).
   * `crc` is the payload's CRC32C, or -1 to compute it on the I/O thread.
   * `admit` (a server's handshake replies): after queueing, ADMIT_HANDSHAKE reads the peer's next
   * handshake frame, ADMIT_OPEN lifts the pre-auth limits (the peer is authenticated).
   */
  transportSend(
    conn: number,
    type: number,
    flags: number,
    requestId: number,
    meta: Uint8Array | null,
    payload: Uint8Array | null,
    filePath: string | null,
    fileOffset: number,
    length: number,
    crc: number,
    admit?: typeof ADMIT_HANDSHAKE | typeof ADMIT_OPEN,
  ): void;
  /** Closes now, or after the queued frames are written (`afterFlush`); a 'closed' event follows. */
  transportClose(conn: number, reason: string, afterFlush: boolean): void;
  transportStats(): NativeTransportStats;

  /** The DRAM chunk store (addon/src/store/); use it through src/store/dram.ts. */
  readonly NativeStore: new (
    options: NativeStoreOptions,
  ) => NativeStore;
}

/** transportSend's `admit`: read one more handshake frame. */
export const ADMIT_HANDSHAKE = 1;
/** transportSend's `admit`: the peer is authenticated; requests may flow. */
export const ADMIT_OPEN = 2;

export type NativeEvent =
  | { kind: 'accepted'; conn: number; listener: number; peer: string }
  | { kind: 'connected'; conn: number }
  | { kind: 'closed'; conn: number; reason: string }
  | {
      kind: 'frame';
      conn: number;
      type: number;
      flags: number;
      version: number;
      requestId: number;
      meta: Buffer;
      /** Received straight into pooled, page-aligned memory; returned to the pool when collected. */
      payload?: Buffer;
      payloadCrc: number;
      /** The CRC32C computed over the received payload (on the I/O thread) equals `payloadCrc`. */
      crcOk: boolean;
      /** A READ_CHUNK whose NVMe chunk file the I/O thread found damaged, gone or short. */
      nvmeFailed?: boolean;
    };

export interface NativeTransportStats {
  /** Payload bytes sent from pinned JS memory by writev(2). */
  bytesWritev: number;
  /** Payload bytes sent by sendfile(2). */
  bytesSendfile: number;
  /** Payload bytes copied in user space (the zero-copy proof: stays 0). */
  bytesCopied: number;
  /** Payload bytes read straight into their final Buffer. */
  bytesReceivedDirect: number;
  bytesCrcComputed: number;
  framesSent: number;
  framesReceived: number;
  connectionsOpened: number;
  connectionsClosed: number;
  /** Over maxConnections with no unauthenticated connection to close instead. */
  connectionsRejected: number;
  /** Closed for not authenticating within the pre-auth timeout. */
  preAuthTimeouts: number;
  /** Unauthenticated connections closed to make room (oldest first; per address first). */
  preAuthEvicted: number;
  /** Closed for a frame other than a small HELLO/AUTH before authentication (answered with ERROR). */
  preAuthRefused: number;
  protocolErrors: number;
  sendFailures: number;
  pinnedBuffers: number;
  queuedBytes: number;
  pooledBytes: number;
  /** READ_CHUNK answered on the I/O thread from the native store, and their payload bytes. */
  nativeServed: number;
  nativeServedBytes: number;
  /** READ_CHUNK of a natively serving listener passed to JavaScript, by why (docs/wire-protocol.md). */
  nativePassUnbound: number;
  nativePassMiss: number;
  nativePassOther: number;
  /** On NVMe, but the I/O thread's NVMe reads were at their bound. */
  nativePassBusy: number;
  /** Of nativeServed: answers whose bytes were read from NVMe chunk files on the I/O thread, and their bytes. */
  nativeNvmeServed: number;
  nativeNvmeServedBytes: number;
  /** NVMe reads that failed (a block's CRC32C, a file gone or short): the request went to JavaScript. */
  nativeNvmeFailed: number;
  /** Answers waiting on NVMe reads now (at most kMaxTransportDiskReads). */
  nativeNvmeWaiting: number;
  /** Store references held by native replies not yet written (0 when every reply is written or dropped). */
  nativeChunkRefs: number;
  /** READ_CHUNK answer payload bytes read straight into native store memory (transportReceiveInto). */
  bytesReceivedStore: number;
}

/** What a transport listener answers READ_CHUNK hits from without JavaScript. */
export interface NativeChunkSource {
  readonly store: NativeStore;
  readonly bindings: NativeBindings;
  /** This process's origin id: a request for another origin's chunk is JavaScript's to answer. */
  readonly originId: string;
  /** The listener's maxFrameBytes: a longer read is answered TOO_LARGE by JavaScript. */
  readonly maxFrameBytes: number;
}

export interface NativeChunkHeader {
  readonly ok: true;
  readonly key: Buffer;
  readonly objectId: Buffer;
  readonly index: number;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly dataCrc: number;
  readonly blockBytes: number;
  readonly blockCount: number;
}

export interface NativeHeaderFailure {
  readonly ok: false;
  /** 'truncated', 'magic', 'version', 'key-length', 'bounds', 'header-crc', 'block-table'. */
  readonly reason: string;
  /** The header or its block table failed a CRC: damaged bytes, not a foreign file. */
  readonly checksum: boolean;
  /** Set when the fixed part is valid: the full header is this long ('truncated': read this much). */
  readonly dataOffset?: number;
}

export interface NativeReaderOptions {
  readonly queueDepth?: number;
  readonly threads?: number;
  readonly forceThreads?: boolean;
  readonly direct?: boolean;
  readonly openFiles?: number;
  readonly maxPending?: number;
}

export interface NativeReaderStats {
  readonly backend: 'io_uring' | 'threads' | 'closed';
  readonly fallbackReason: string;
  readonly direct: boolean;
  readonly queueDepth: number;
  readonly bytesRead: number;
  readonly bytesServed: number;
  readonly readsOk: number;
  readonly headerReads: number;
  readonly corrupt: number;
  readonly errors: number;
  readonly bytesCopied: number;
  readonly openFiles: number;
  readonly pending: number;
  readonly inFlight: number;
}

export interface NativeReader {
  read(
    id: number,
    path: string,
    key: string,
    dataOffset: number,
    dataLength: number,
    dataCrc: number,
    offset: number,
    length: number,
    dest?: Uint8Array,
  ): void;
  forget(path: string): void;
  stats(): NativeReaderStats;
  close(): void;
}

let cached: Binding | undefined;

/** Loads addon/build/Release/weightcache.node once. */
export function binding(): Binding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  // WEIGHTCACHE_ADDON_PATH loads another build (e.g. one compiled with ASan, see docs/transport.md).
  const override = process.env.WEIGHTCACHE_ADDON_PATH;
  if (override) {
    cached = require(override) as Binding;
    return cached;
  }
  const candidates = [
    '../../addon/build/Release/weightcache.node',
    '../../../addon/build/Release/weightcache.node',
  ];
  let lastError: unknown;
  for (const rel of candidates) {
    try {
      cached = require(fileURLToPath(new URL(rel, import.meta.url))) as Binding;
      return cached;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(
    `weightcache: the native addon is not built (addon/build/Release/weightcache.node); run 'npm install' or 'npm run build'`,
    { cause: lastError },
  );
}
