/**
 * The typed face of the native addon (addon/). Everything native goes through
 * this one interface, so the rest of the code never touches `require` or
 * untyped exports.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Binding {
  /** CRC32C of `data`, extending `seed` (0 for a fresh checksum). */
  crc32c(data: Uint8Array, seed?: number): number;
  /** The portable table implementation, for tests that check both agree. */
  crc32cPortable(data: Uint8Array, seed?: number): number;
  /** 'sse4.2' or 'table'. */
  readonly crc32cImplementation: string;

  // The native transport (docs/wire-protocol.md). Use it through
  // src/transport/native.ts, which owns the single event callback.
  /** Starts the I/O thread; `onEvent` receives every event, on the JS thread. Once per process. */
  transportInit(onEvent: (event: NativeEvent) => void): void;
  /** Keeps the process alive while there is transport work (counted in native.ts). */
  transportRef(): void;
  transportUnref(): void;
  /** Binds and listens on the JS thread (throws with `code`, e.g. EADDRINUSE); accepts on the I/O thread. */
  transportListen(
    host: string,
    port: number,
    maxFrameBytes: number,
    maxInFlight: number,
    maxConnections: number,
  ): { id: number; port: number };
  transportCloseListener(id: number): void;
  /** Starts a connection; a 'connected' or 'closed' event follows. `host` must be an IP address. */
  transportConnect(host: string, port: number, maxFrameBytes: number, maxInFlight: number): number;
  /**
   * Queues one frame. `payload` is sent from its own memory (pinned until written; do not modify it
   * meanwhile); or `filePath` is sent with sendfile(2) from [fileOffset, fileOffset + length).
   * `crc` is the payload's CRC32C, or -1 to compute it on the I/O thread.
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
  ): void;
  /** Closes now, or after the queued frames are written (`afterFlush`); a 'closed' event follows. */
  transportClose(conn: number, reason: string, afterFlush: boolean): void;
  transportStats(): NativeTransportStats;
}

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
  connectionsRejected: number;
  protocolErrors: number;
  sendFailures: number;
  pinnedBuffers: number;
  queuedBytes: number;
  pooledBytes: number;
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
