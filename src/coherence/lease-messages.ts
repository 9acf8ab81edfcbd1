/**
 * The meta layout of the four lease frames (docs/coherence.md, "Wire messages";
 * frame types FrameType.LEASE_GRANT..LEASE_ACK, 0x20–0x23). Encoding only: no
 * handlers, no state.
 *
 * Both directions are strict and symmetric: an encoder refuses (MetaError) any
 * message its decoder would refuse, and a decoder accepts only the bytes its
 * encoder produces, so decode → encode gives back the input byte for byte. The
 * decoders are strict because these frames decide which version a name means
 * cluster-wide: a value we cannot interpret exactly must close the connection
 * (docs/wire-protocol.md), never be guessed at.
 */
import { CacheError } from '../errors/cache-error.js';
import { validateName } from '../origin/names.js';
import type { ObjectName } from '../origin/origin.js';
import { MetaError, MetaReader, MetaWriter } from '../transport/codec.js';
import { readContentMd5, writeContentMd5 } from '../transport/messages.js';

/** `Version` of docs/coherence.md: the origin's ETag and size, and its last-modified time. */
export interface LeaseVersion {
  readonly etag: string;
  readonly size: number;
  /** Milliseconds since the epoch, as `Date.getTime()` gives it. */
  readonly lastModifiedMs: number;
}

/** LEASE_GRANT request: which name the holder wants a lease on. */
export type LeaseGrantRequest = ObjectName;

/** LEASE_RENEW request: a renewal names the version the holder holds (the answer may name another). */
export interface LeaseRenewRequest extends ObjectName {
  readonly held: LeaseVersion;
}

/**
 * The answer to LEASE_GRANT and to LEASE_RENEW (same layout). Only 'ok' carries
 * a lease; on the wire the other statuses carry a zero version and termMs 0, and
 * a decoder refuses anything else there, so those bytes can gain a meaning later
 * only through a deliberate format change.
 */
export type LeaseGrantResponse =
  | {
      readonly status: 'ok';
      readonly version: LeaseVersion;
      /** Integer ms, ≥ 1. The holder counts it from its own send time, minus its margin. */
      readonly termMs: number;
      readonly homeIncarnation: number;
      /**
       * The version's Content-MD5 at the origin (base64 of 16 bytes), null when it keeps none;
       * undefined: the field is absent (a holder that did not announce FEATURE_CONTENT_MD5, or
       * a home that predates it). The last field on the wire, written exactly when defined.
       */
      readonly contentMd5?: string | null;
    }
  /** The origin has no such object: no lease, the holder may not cache the absence. */
  | { readonly status: 'notFound'; readonly homeIncarnation: number }
  /** The responder is not the name's home in its view of membership. */
  | { readonly status: 'notHome'; readonly homeIncarnation: number };

export type LeaseStatus = LeaseGrantResponse['status'];

/** The u8 status codes, as docs/coherence.md numbers them. */
export const LEASE_STATUS_CODES: Readonly<Record<LeaseStatus, number>> = { ok: 0, notFound: 1, notHome: 2 };
const STATUS_BY_CODE: readonly LeaseStatus[] = ['ok', 'notFound', 'notHome'];

/** LEASE_REVOKE request (home → holder). Its response is empty and is the acknowledgement. */
export interface LeaseRevoke extends ObjectName {
  readonly homeIncarnation: number;
  /** ≥ 1: 0 is reserved for LEASE_ACK's early release. */
  readonly revokeId: number;
}

/** LEASE_ACK request (holder → home). revokeId 0 releases a lease early (eviction, shutdown). */
export interface LeaseAck extends ObjectName {
  readonly homeIncarnation: number;
  /** The revocation acknowledged, or LEASE_RELEASE (0). */
  readonly revokeId: number;
}

export const LEASE_RELEASE = 0;

/**
 * Longest etag accepted, in UTF-8 bytes. Real ones are tens of bytes (Azure,
 * S3, fs); the bound keeps a peer from filling every later chunk name and
 * If-Match header with a 64 KiB string.
 */
export const MAX_ETAG_BYTES = 1024;

/** Largest `termMs` (u32). */
export const MAX_TERM_MS = 0xffffffff;

/** The range of a Date's time value (ECMA-262 TimeClip). */
const MAX_TIME_MS = 8.64e15;

const CONTROL_RE = /[\u0000-\u001f\u007f]/;
// A lone surrogate encodes as U+FFFD, so it would not survive a round trip: refused on both sides.
const LONE_SURROGATE_RE = /\p{Surrogate}/u;
// fatal: bad UTF-8 is a protocol error (docs/wire-protocol.md), not U+FFFD; ignoreBOM: a key may
// start with U+FEFF and must come back unchanged.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------- LEASE_GRANT

export function encodeLeaseGrantRequest(q: LeaseGrantRequest): Buffer {
  const w = new MetaWriter();
  writeName(w, q);
  return w.bytes();
}

export function decodeLeaseGrantRequest(meta: Buffer): LeaseGrantRequest {
  const r = new MetaReader(meta);
  const q = readName(r);
  r.end();
  return q;
}

/** The response to LEASE_GRANT and to LEASE_RENEW. */
export function encodeLeaseGrantResponse(a: LeaseGrantResponse): Buffer {
  // Checked at run time too: a status outside the union would otherwise be written as 0 ('ok').
  const code = (LEASE_STATUS_CODES as Readonly<Record<string, number>>)[a.status];
  if (code === undefined) throw new MetaError(`unknown lease status ${String(a.status)}`);
  const w = new MetaWriter().raw(Uint8Array.of(code));
  if (a.status === 'ok') {
    writeVersion(w, a.version);
    w.u32(checkTerm(a.termMs));
  } else {
    w.str('').u64(0).f64(0).u32(0);
  }
  w.u64(checkIncarnation(a.homeIncarnation));
  if (a.status === 'ok' && a.contentMd5 !== undefined) writeContentMd5(w, a.contentMd5);
  return w.bytes();
}

export function decodeLeaseGrantResponse(meta: Buffer): LeaseGrantResponse {
  const r = new MetaReader(meta);
  const code = r.raw(1)[0]!;
  const status = STATUS_BY_CODE[code];
  if (status === undefined)
    throw new MetaError(`lease status ${code} is not 0 (ok), 1 (not found) or 2 (not home)`);
  let a: LeaseGrantResponse;
  if (status === 'ok') {
    const version = readVersion(r);
    const termMs = checkTerm(r.u32());
    const homeIncarnation = checkIncarnation(r.u64());
    a = r.atEnd()
      ? { status, version, termMs, homeIncarnation }
      : { status, version, termMs, homeIncarnation, contentMd5: readContentMd5(r) };
  } else {
    const etag = readStr(r);
    const size = r.u64();
    const lastModifiedMs = r.f64();
    const termMs = r.u32();
    if (etag !== '' || size !== 0 || !Object.is(lastModifiedMs, 0) || termMs !== 0) {
      throw new MetaError(`a '${status}' lease answer must carry an empty version and termMs 0`);
    }
    a = { status, homeIncarnation: checkIncarnation(r.u64()) };
  }
  r.end();
  return a;
}

// ---------------------------------------------------------------- LEASE_RENEW

export function encodeLeaseRenewRequest(q: LeaseRenewRequest): Buffer {
  const w = new MetaWriter();
  writeName(w, q);
  writeVersion(w, q.held);
  return w.bytes();
}

export function decodeLeaseRenewRequest(meta: Buffer): LeaseRenewRequest {
  const r = new MetaReader(meta);
  const { container, key } = readName(r);
  const q = { container, key, held: readVersion(r) };
  r.end();
  return q;
}

/** LEASE_RENEW is answered exactly like LEASE_GRANT. */
export const encodeLeaseRenewResponse = encodeLeaseGrantResponse;
export const decodeLeaseRenewResponse = decodeLeaseGrantResponse;

// ---------------------------------------------------------------- LEASE_REVOKE

export function encodeLeaseRevoke(m: LeaseRevoke): Buffer {
  return encodeRevokeOrAck(m, 1);
}

export function decodeLeaseRevoke(meta: Buffer): LeaseRevoke {
  return decodeRevokeOrAck(meta, 1);
}

/** The response to LEASE_REVOKE: empty, it is the acknowledgement. */
export function encodeLeaseRevokeResponse(): Buffer {
  return Buffer.alloc(0);
}

export function decodeLeaseRevokeResponse(meta: Buffer): void {
  new MetaReader(meta).end();
}

// ---------------------------------------------------------------- LEASE_ACK

export function encodeLeaseAck(m: LeaseAck): Buffer {
  return encodeRevokeOrAck(m, LEASE_RELEASE);
}

export function decodeLeaseAck(meta: Buffer): LeaseAck {
  return decodeRevokeOrAck(meta, LEASE_RELEASE);
}

/** The response to LEASE_ACK: empty. */
export function encodeLeaseAckResponse(): Buffer {
  return Buffer.alloc(0);
}

export function decodeLeaseAckResponse(meta: Buffer): void {
  new MetaReader(meta).end();
}

// ---------------------------------------------------------------- fields

function encodeRevokeOrAck(m: LeaseRevoke | LeaseAck, minRevokeId: number): Buffer {
  const w = new MetaWriter();
  writeName(w, m);
  return w.u64(checkIncarnation(m.homeIncarnation)).u64(checkRevokeId(m.revokeId, minRevokeId)).bytes();
}

function decodeRevokeOrAck(meta: Buffer, minRevokeId: number): LeaseRevoke & LeaseAck {
  const r = new MetaReader(meta);
  const { container, key } = readName(r);
  const m = {
    container,
    key,
    homeIncarnation: checkIncarnation(r.u64()),
    revokeId: checkRevokeId(r.u64(), minRevokeId),
  };
  r.end();
  return m;
}

function writeName(w: MetaWriter, n: ObjectName): void {
  checkName(n.container, n.key);
  w.str(n.container).str(n.key);
}

function readName(r: MetaReader): ObjectName {
  const container = readStr(r);
  const key = readStr(r);
  return checkName(container, key);
}

function writeVersion(w: MetaWriter, v: LeaseVersion): void {
  checkVersion(v.etag, v.size, v.lastModifiedMs);
  w.str(v.etag).u64(v.size).f64(v.lastModifiedMs);
}

function readVersion(r: MetaReader): LeaseVersion {
  const etag = readStr(r);
  const size = r.u64();
  const lastModifiedMs = r.f64();
  return checkVersion(etag, size, lastModifiedMs);
}

/** MetaReader.str() would turn bad UTF-8 into U+FFFD; here it is an error. */
function readStr(r: MetaReader): string {
  const bytes = r.raw(r.u16());
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new MetaError('string field is not valid UTF-8');
  }
}

function checkName(container: string, key: string): ObjectName {
  const name = { container, key };
  try {
    validateName(name);
  } catch (err) {
    // validateName speaks CacheError for HTTP doors; on the wire a bad name is a broken peer.
    if (err instanceof CacheError) throw new MetaError(`bad lease name: ${err.message}`, { cause: err });
    throw err;
  }
  // validateName counts UTF-16 units and does not look at surrogates.
  if (LONE_SURROGATE_RE.test(key)) throw new MetaError('bad lease name: key holds a lone UTF-16 surrogate');
  return name;
}

function checkVersion(etag: string, size: number, lastModifiedMs: number): LeaseVersion {
  const n = Buffer.byteLength(etag);
  if (n === 0) throw new MetaError('version etag is empty');
  if (n > MAX_ETAG_BYTES) throw new MetaError(`version etag of ${n} bytes exceeds ${MAX_ETAG_BYTES}`);
  // Etags come from HTTP headers and go back into If-Match: no control characters either way.
  if (CONTROL_RE.test(etag) || LONE_SURROGATE_RE.test(etag)) {
    throw new MetaError('version etag holds a control character or a lone surrogate');
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new MetaError(`version size out of range: ${size}`);
  if (!Number.isInteger(lastModifiedMs) || Math.abs(lastModifiedMs) > MAX_TIME_MS) {
    throw new MetaError(`version lastModifiedMs is not a Date's time value: ${lastModifiedMs}`);
  }
  return { etag, size, lastModifiedMs };
}

function checkTerm(termMs: number): number {
  // A zero term is no lease; a fraction would be truncated by the u32 silently. Callers floor (shorter is safe).
  if (!Number.isInteger(termMs) || termMs < 1 || termMs > MAX_TERM_MS) {
    throw new MetaError(`lease termMs must be an integer in [1, ${MAX_TERM_MS}], got ${termMs}`);
  }
  return termMs;
}

function checkIncarnation(v: number): number {
  // 0 is never a live home's incarnation, so a zeroed field can never match one.
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new MetaError(`homeIncarnation must be an integer in [1, 2^53-1], got ${v}`);
  }
  return v;
}

function checkRevokeId(v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new MetaError(`revokeId must be an integer in [${min}, 2^53-1], got ${v}`);
  }
  return v;
}
