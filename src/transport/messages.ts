/**
 * The meta layout of each message of protocol v1 (docs/wire-protocol.md,
 * "Frame types"). Encoders build the bytes the addon puts after the header;
 * decoders throw MetaError on anything that does not parse exactly.
 */
import type { ChunkName } from '../chunk/name.js';
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import { CONTENT_MD5_BYTES, type ObjectInfo, type ObjectName } from '../origin/origin.js';
import { MetaError, MetaReader, MetaWriter } from './codec.js';

export interface Hello {
  minVersion: number;
  maxVersion: number;
  /** Bit 0: this server requires AUTH before requests (a later issue). */
  features: number;
  maxFrameBytes: number;
  maxInFlight: number;
  nodeId: string;
  /** Tagged extensions; unknown tags are ignored, so later fields need no version bump. */
  extensions: { tag: number; value: Buffer }[];
}

export function encodeHello(h: Hello): Buffer {
  const w = new MetaWriter()
    .u16(h.minVersion)
    .u16(h.maxVersion)
    .u32(h.features)
    .u32(h.maxFrameBytes)
    .u32(h.maxInFlight)
    .str(h.nodeId)
    .u16(h.extensions.length);
  for (const e of h.extensions) {
    w.u16(e.tag).u16(e.value.length).raw(e.value);
  }
  return w.bytes();
}

export function decodeHello(meta: Buffer): Hello {
  const r = new MetaReader(meta);
  const h: Hello = {
    minVersion: r.u16(),
    maxVersion: r.u16(),
    features: r.u32(),
    maxFrameBytes: r.u32(),
    maxInFlight: r.u32(),
    nodeId: r.str(),
    extensions: [],
  };
  const count = r.u16();
  for (let i = 0; i < count; i++) {
    const tag = r.u16();
    h.extensions.push({ tag, value: r.raw(r.u16()) });
  }
  r.end();
  return h;
}

export interface ReadChunkRequest {
  name: ChunkName;
  offset: number;
  length: number;
  /**
   * Answer from local tiers only, never fill (NOT_FOUND on a miss): owner probes
   * and tries past the owner. Without it, two members that both believe they
   * own a chunk (membership views differ for a moment) would wait on each other.
   */
  localOnly?: boolean;
  /**
   * A stand-in request (READ_STAND_IN): the members ranked above the receiver
   * that the sender found down (unreachable or in backoff), owner first. The
   * receiver fills from the origin only if, counting these as failures it
   * observed, every member ranked above it is down in its own view
   * (docs/cluster.md, "Stand-in owner"). Sent only to a peer that announced
   * FEATURE_STAND_IN; 1..MAX_STAND_IN_REPORT addresses; never with localOnly.
   */
  standInFor?: readonly string[];
}

/** READ_CHUNK flags: the last u32 of its meta (then the stand-in report, if flagged). */
export const READ_LOCAL_ONLY = 1;
export const READ_STAND_IN = 2;
/** Addresses a stand-in request may report down (more: the sender probes local-only instead). */
export const MAX_STAND_IN_REPORT = 16;

export function encodeReadChunk(q: ReadChunkRequest): Buffer {
  const n = q.name;
  const report = q.standInFor;
  if (report !== undefined && (report.length < 1 || report.length > MAX_STAND_IN_REPORT || q.localOnly)) {
    throw new MetaError(
      `a stand-in request reports 1..${MAX_STAND_IN_REPORT} members down and is not local-only, got ${report.length}${q.localOnly ? ' with LOCAL_ONLY' : ''}`,
    );
  }
  const w = new MetaWriter()
    .str(n.originId)
    .str(n.container)
    .str(n.key)
    .str(n.etag)
    .u64(n.size)
    .u32(n.chunkSize)
    .u32(n.index)
    .u64(q.offset)
    .u32(q.length)
    .u32((q.localOnly ? READ_LOCAL_ONLY : 0) | (report ? READ_STAND_IN : 0));
  if (report) {
    w.raw(Uint8Array.of(report.length));
    for (const a of report) w.str(a);
  }
  return w.bytes();
}

export function decodeReadChunk(meta: Buffer): ReadChunkRequest {
  const r = new MetaReader(meta);
  const name: ChunkName = {
    originId: r.str(),
    container: r.str(),
    key: r.str(),
    etag: r.str(),
    size: r.u64(),
    chunkSize: r.u32(),
    index: r.u32(),
  };
  const q: ReadChunkRequest = { name, offset: r.u64(), length: r.u32() };
  const flags = r.u32();
  if (flags & ~(READ_LOCAL_ONLY | READ_STAND_IN)) throw new MetaError(`unknown READ_CHUNK flags ${flags}`);
  if (flags & READ_LOCAL_ONLY) q.localOnly = true;
  if (flags & READ_STAND_IN) {
    if (q.localOnly) throw new MetaError('READ_CHUNK flags LOCAL_ONLY and STAND_IN together');
    const count = r.raw(1)[0]!;
    if (count < 1 || count > MAX_STAND_IN_REPORT) {
      throw new MetaError(`stand-in report of ${count} members (1..${MAX_STAND_IN_REPORT})`);
    }
    const report: string[] = [];
    for (let i = 0; i < count; i++) report.push(r.str());
    q.standInFor = report;
  }
  r.end();
  return q;
}

export function encodeObjectName(n: ObjectName): Buffer {
  return new MetaWriter().str(n.container).str(n.key).bytes();
}

export function decodeObjectName(meta: Buffer): ObjectName {
  const r = new MetaReader(meta);
  const n = { container: r.str(), key: r.str() };
  r.end();
  return n;
}

/**
 * The STAT answer. `contentMd5Field`: the asker announced FEATURE_CONTENT_MD5
 * (protocol.ts), so the Content-MD5 field follows; an older asker gets the
 * v1 layout it decodes.
 */
export function encodeObjectInfo(i: ObjectInfo, contentMd5Field = false): Buffer {
  const w = new MetaWriter()
    .str(i.container)
    .str(i.key)
    .str(i.etag)
    .u64(i.size)
    .f64(i.lastModified.getTime());
  if (contentMd5Field) writeContentMd5(w, i.contentMd5 ?? null);
  return w.bytes();
}

/** A STAT answer, with or without the Content-MD5 field (a peer that predates it sends none). */
export function decodeObjectInfo(meta: Buffer): ObjectInfo {
  const r = new MetaReader(meta);
  const info = {
    container: r.str(),
    key: r.str(),
    etag: r.str(),
    size: r.u64(),
    lastModified: new Date(r.f64()),
  };
  const md5 = r.atEnd() ? null : readContentMd5(r);
  r.end();
  return md5 === null ? info : { ...info, contentMd5: md5 };
}

/**
 * The Content-MD5 field (FEATURE_CONTENT_MD5): `u8 length, bytes`, the length
 * 0 (the origin keeps none) or 16. Only ever the last field of a meta.
 */
export function writeContentMd5(w: MetaWriter, md5: string | null): MetaWriter {
  if (md5 === null) return w.raw(Uint8Array.of(0));
  const b = Buffer.from(md5, 'base64');
  if (b.length !== CONTENT_MD5_BYTES || b.toString('base64') !== md5) {
    throw new MetaError(`Content-MD5 ${JSON.stringify(md5.slice(0, 40))} is not base64 of 16 bytes`);
  }
  return w.raw(Uint8Array.of(CONTENT_MD5_BYTES)).raw(b);
}

export function readContentMd5(r: MetaReader): string | null {
  const n = r.raw(1)[0]!;
  if (n === 0) return null;
  if (n !== CONTENT_MD5_BYTES) throw new MetaError(`Content-MD5 field of ${n} bytes (0 or 16)`);
  return r.raw(n).toString('base64');
}

export function encodeError(code: ErrorCode, message: string): Buffer {
  // Messages are for humans; cut them so an error frame can never exceed the meta limit.
  return new MetaWriter().str(code).str(truncateUtf8(message, 4096)).bytes();
}

/**
 * An error the peer answered with (an ERROR frame), as opposed to a failure to
 * reach it: the peer is healthy, it just could not serve this request.
 */
export class RemoteError extends CacheError {}

/** An ERROR frame's meta as a RemoteError; a code this build does not know becomes INTERNAL (CacheError.fromWire). */
export function decodeError(meta: Buffer, peer: string): CacheError {
  const r = new MetaReader(meta);
  const code = r.str();
  const message = r.str();
  r.end();
  const e = CacheError.fromWire(code, message);
  return new RemoteError(e.code, `peer ${peer}: ${e.message}`);
}

export function encodePing(opaque: number): Buffer {
  return new MetaWriter().u64(opaque).bytes();
}

export function decodePing(meta: Buffer): number {
  const r = new MetaReader(meta);
  const v = r.u64();
  r.end();
  return v;
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  return Buffer.from(s)
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}
