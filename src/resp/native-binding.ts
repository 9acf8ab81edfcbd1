/**
 * The native RESP door's part of the addon (addon/src/resp/): its request
 * parser and its I/O threads. Loaded through src/transport/binding.ts.
 */
import type { NativeAccessRecord, NativeBindings } from '../http/native-binding.js';
import type { NativeStore } from '../store/native.js';

export interface RespDoorBinding {
  // The native RESP request parser (addon/src/resp/parser.h), for tests.
  /**
   * Parses the stream delivered as `chunks`, taking every whole command after each chunk, as a
   * connection would; stops at the first error (the door answers it and closes).
   */
  respReplay(chunks: readonly Uint8Array[], options?: RespReplayOptions): RespReplayed;

  // The native RESP door's I/O threads (addon/src/resp/door.h). Use it through src/resp/native-door.ts.
  /** Binds one SO_REUSEPORT socket per thread and starts the threads; throws with `code` (EADDRINUSE...). */
  respDoorStart(
    options: NativeRespDoorOptions,
    onEvents: (events: NativeRespEvent[]) => void,
  ): { id: number; port: number };
  /**
   * A batch of sends, flat: `[conn, pieces, done, flags, grant, conn, ...]`. Each appends reply `pieces` to
   * connection `conn`'s output (written in this order; pieces of 16 KiB and more are sent from their
   * own memory, pinned until written: do not modify them meanwhile) and says `done` more of its
   * commands finished. `flags`: 1 close once written, 2 close now, 4 AUTH succeeded (the pre-auth
   * limits are lifted), 8 report written bytes at once until the queue is empty (else they ride on
   * the connection's next command, or come within a tick, 50 ms), 16 the connection's grant (what
   * the fast path may answer it) is every container, 32 it is the containers listed in `grant`
   * (else `grant` is ignored: pass null). A connection that is gone is ignored. One call takes each
   * I/O thread's lock and rings its doorbell once.
   */
  respDoorSend(door: number, batch: (number | Uint8Array[] | string[] | null)[]): void;
  respDoorStats(door: number): NativeRespDoorStats;
  /** Closes the listeners and every connection and joins the threads. */
  respDoorStop(door: number): void;
}

export interface NativeRespDoorOptions {
  host: string;
  port: number;
  threads?: number;
  /** Connections are strangers (pre-auth limits, one command at a time) until a send says AUTH succeeded. */
  auth?: boolean;
  maxArgs?: number;
  maxBulkBytes?: number;
  maxQueryBufferBytes?: number;
  /** Descriptors held at once, all threads; past it a connection is closed at accept. */
  maxConnections?: number;
  /** Per connection: commands posted and not yet finished. */
  maxPipelined?: number;
  /** Per connection: their argument bytes (16 KiB before AUTH, whatever this says). */
  pipelineWindowBytes?: number;
  /** After a closing connection's last reply: input read and dropped this long. */
  closeGraceMs?: number;
  /** GET/GETRANGE/STRLEN/EXISTS answered on the I/O threads (addon/src/resp/fastpath.h); absent: none. */
  fast?: NativeRespFastPathOptions;
  /**
   * The request-duration histogram's bounds (seconds, ascending, ≤ 32): fast-path replies are timed
   * (read → last byte written) in these buckets (stats().fastDurations).
   */
  durationBounds?: readonly number[];
  /** Fast-path replies go to the access log ('access' events); absent or false: they are only counted. */
  accessLog?: boolean;
}

/** respDoorStart's `fast`: the DRAM store and the version bindings both native doors read. */
export interface NativeRespFastPathOptions {
  store: NativeStore;
  bindings: NativeBindings;
  /** resp.maxGetBytes: a larger GET (or GETRANGE) is JavaScript's to refuse. */
  maxGetBytes: number;
}

export type NativeRespEvent =
  | { kind: 'open'; conn: number; peer: string }
  /** `written`: reply bytes written since the last report; `served`: commands the thread answered since. */
  | { kind: 'command'; conn: number; args: Buffer[]; written: number; served: number }
  | { kind: 'protocolError'; conn: number; reason: string; message: string }
  | { kind: 'written'; conn: number; bytes: number; served: number }
  | { kind: 'closed'; conn: number; reason: string }
  /** Fast-path replies written (with accessLog): method is the command, target its key; no status (OK). */
  | { kind: 'access'; records: NativeAccessRecord[] };

export interface NativeRespDoorStats {
  connectionsAccepted: number;
  connectionsRejected: number;
  connectionsOpen: number;
  commands: number;
  inFlight: number;
  protocolErrors: number;
  bytesRead: number;
  bytesWritten: number;
  pinnedBuffers: number;
  bufferedBytes: number;
  pausedReads: number;
  /** With the fast path: commands answered on the I/O threads, their value bytes, and why others went to JavaScript. */
  fastHits?: number;
  fastBodyBytes?: number;
  fastNoBinding?: number;
  fastMisses?: number;
  fastUnauthorised?: number;
  fastOther?: number;
  /** An earlier command of the connection was still running in JavaScript (reply order). */
  fastBusy?: number;
  /** Chunk references held by fast-path replies not yet written: 0 once every reply is written or dropped. */
  /** Of fastHits: replies with bytes read from NVMe on the I/O thread; of fastBodyBytes: those bytes. */
  fastNvmeHits?: number;
  fastNvmeBodyBytes?: number;
  fastChunkRefs?: number;
  /** Durations of fast-path replies, every I/O thread's summed: counts per bucket of durationBounds (not cumulative; the last +Inf). */
  fastDurations?: { buckets: number[]; sumSeconds: number; count: number };
  /** Access records of fast-path replies dropped: 10,000 were already waiting for JavaScript. */
  accessDropped: number;
}

export interface RespReplayOptions {
  maxArgs?: number;
  maxBulkBytes?: number;
  maxQueryBufferBytes?: number;
  /** False: the pre-auth limits apply (as before AUTH). Default true. */
  authenticated?: boolean;
}

export interface RespReplayed {
  commands: Buffer[][];
  /** The protocol error the connection would be closed with: the same as src/resp/request-parser.ts'. */
  error: { reason: string; message: string } | null;
  /** Bytes left unparsed (an incomplete command). */
  buffered: number;
}
