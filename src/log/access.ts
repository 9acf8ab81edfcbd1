/**
 * The access log: one JSON line per request, for every door (HTTP objects,
 * S3, the Hub, Azure Blob, RESP), written here and nowhere else. The HTTP
 * server and the RESP connection open a record around each request; the read
 * path notes where the bytes it served came from (noteServed), whichever door
 * asked, through the request's async context. Off by default at `info`; on at
 * `debug`/`trace`, or with `log.access: true` at any level.
 *
 * Fields: method, target, status, bytes, source (dram/nvme/peer/origin, in
 * the order they first served this request; '+'-joined when several), durationMs,
 * client. Never logged: headers (Authorization, x-ms-*), request bodies, and
 * the values of query parameters that carry credentials (presigned URL
 * signatures, SAS `sig`, tokens): their names stay, their values become
 * `REDACTED`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './logger.js';

export interface AccessRecord {
  readonly method: string;
  readonly target: string;
  readonly client: string;
  readonly startedAt: number;
  /** Body bytes the read path served for this request, by source. */
  readonly served: Map<string, number>;
}

export interface AccessLine {
  /** HTTP status, or for RESP `OK` or the error reply's first word (`ERR`, `NOT_FOUND`, ...). */
  readonly status: number | string;
  /** Body bytes sent; undefined: what the read path served. */
  readonly bytes?: number;
  /** The client went away (or the connection was cut) before the answer was complete. */
  readonly aborted?: boolean;
}

const current = new AsyncLocalStorage<AccessRecord>();

/** Query parameters whose values are credentials (case-insensitive): S3 presigned, Azure SAS, tokens. */
const SECRET_PARAM = /sig|signature|credential|token|secret|password|key|auth/i;

export class AccessLog {
  private readonly log: Logger;
  /** Whether requests are logged at all: the cost is nothing when off. */
  readonly enabled: boolean;
  private readonly atInfo: boolean;

  constructor(log: Logger, opts: { readonly access: boolean }) {
    this.log = log.child({ component: 'access' });
    this.atInfo = opts.access;
    this.enabled = opts.access || log.isLevelEnabled('debug');
  }

  /** Starts a record (nothing when off). `target` is redacted here. */
  open(method: string, target: string, client: string | undefined): AccessRecord | undefined {
    if (!this.enabled) return undefined;
    return {
      method,
      target: redactTarget(target),
      client: client ?? 'local',
      startedAt: performance.now(),
      served: new Map(),
    };
  }

  /** Runs `fn` with `record` as the current request, so the read path's notes reach it. */
  within<T>(record: AccessRecord | undefined, fn: () => T): T {
    return record ? current.run(record, fn) : fn();
  }

  /** Writes the record's line. */
  close(record: AccessRecord | undefined, line: AccessLine): void {
    if (!record) return;
    let served = 0;
    for (const n of record.served.values()) served += n;
    const entry = {
      method: record.method,
      target: record.target,
      status: line.status,
      bytes: line.bytes ?? served,
      ...(record.served.size > 0 ? { source: [...record.served.keys()].join('+') } : {}),
      ...(line.aborted ? { aborted: true } : {}),
      durationMs: Math.round((performance.now() - record.startedAt) * 10) / 10,
      client: record.client,
    };
    this.write(entry);
  }

  /**
   * Writes the line of an answer made on a native I/O thread (the fast path: bytes from DRAM or
   * NVMe). The client is shown as its door's JavaScript shows it: HTTP the address, RESP
   * "address:port" (the session's address).
   */
  native(line: NativeAccessLine, door: 'http' | 'resp' = 'http'): void {
    if (!this.enabled) return;
    this.write({
      method: line.method,
      target: redactTarget(line.target),
      status: line.status ?? 'OK',
      bytes: line.bytes,
      ...(line.bytes > 0 ? { source: line.source ?? 'dram' } : {}),
      ...(line.aborted ? { aborted: true } : {}),
      durationMs: Math.round(line.durationMs * 10) / 10,
      client: door === 'resp' ? line.client : clientOf(line.client),
    });
  }

  private write(entry: object): void {
    if (this.atInfo) this.log.info(entry, 'request');
    else this.log.debug(entry, 'request');
  }
}

/** What a native door's I/O threads report of a fast-path answer (HTTP, or RESP: the command and its key). */
export interface NativeAccessLine {
  readonly method: string;
  readonly target: string;
  readonly client: string;
  /** HTTP's status; absent: a RESP reply, `OK` (the fast path answers no errors). */
  readonly status?: number;
  /** Where the bytes came from (a resumed miss: where its fill got them); absent: DRAM. */
  readonly source?: 'dram' | 'nvme' | 'origin' | 'peer';
  readonly bytes: number;
  readonly durationMs: number;
  readonly aborted?: boolean;
}

/** "address:port" (as the native door names a peer) → the address, as node's remoteAddress. */
function clientOf(peer: string): string {
  const colon = peer.lastIndexOf(':');
  return colon > 0 ? peer.slice(0, colon) : peer;
}

/** Called by the read path for every slice it serves: attributes the bytes to the current request, if any. */
export function noteServed(source: string, bytes: number): void {
  const r = current.getStore();
  if (r) r.served.set(source, (r.served.get(source) ?? 0) + bytes);
}

/** The request target with credential-bearing query values replaced; cut to 2 KiB. */
export function redactTarget(target: string): string {
  const q = target.indexOf('?');
  const cut = (s: string) => (s.length > 2048 ? `${s.slice(0, 2048)}…` : s);
  if (q < 0) return cut(target);
  const params = target
    .slice(q + 1)
    .split('&')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return eq >= 0 && SECRET_PARAM.test(decoded) ? `${name}=REDACTED` : p;
    });
  return cut(`${target.slice(0, q)}?${params.join('&')}`);
}
