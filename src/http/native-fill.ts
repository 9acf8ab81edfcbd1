/**
 * Fills for the native door's parked misses (addon/src/http/worker_fill.cc,
 * docs/native-http-door.md "Misses"): the I/O thread parks a GET/HEAD of
 * /v1/objects whose name has no binding or whose chunks are in no tier, and
 * asks for this instead of handing over the request. It runs the one read
 * path: resolve the name (the lease table publishes its binding), then the
 * chunks the range covers through ReadPath.fill (the read-ahead across
 * requests, then DRAM → NVMe → peers → origin per chunk, single-flight,
 * bounded by the origin limiter, readAhead + 1 at a time, in order). No byte is sent from here: the thread
 * answers from the store once this resolves. A failure rejects (and chunks
 * another cluster member owns are not filled here: false); the thread then
 * gives JavaScript the request whole. After a failure JavaScript answers
 * that failure (carryFillFailure): reading again would ask the origin or the
 * owner a second time for one request (a missing name, a second stat), and
 * could answer differently from the JavaScript door, whose one read would
 * have failed the same way. `signal` aborts when the parked request no longer
 * waits (its client left, or it was answered 504): chunks not yet started are
 * then not fetched.
 */
import type { IncomingMessage } from 'node:http';
import { CacheError } from '../errors/cache-error.js';
import type { Source } from '../metrics/metrics.js';
import type { ReadPath } from '../read/read-path.js';
import type { NativeFill } from './native-binding.js';

/**
 * Once resident: where the range's first chunk was found or fetched from (the
 * answer's X-Cache-Source, as JavaScript's read would report it), or true
 * when only the name was resolved. False when the chunks would not stay here
 * (JavaScript then answers the request).
 */
export async function fillForDoor(
  read: ReadPath,
  f: NativeFill,
  signal?: AbortSignal,
): Promise<Source | boolean> {
  const slash = f.name.indexOf('/');
  if (slash <= 0) throw new CacheError('BAD_KEY', `native fill: "${f.name}" is not container/key`);
  const name = { container: f.name.slice(0, slash), key: f.name.slice(slash + 1) };
  // The pin is passed as the expected version (pinned.ts's rule); whether it is the version the
  // name means is the door's to decide when it plans again (else JavaScript answers 412).
  const info = await read.resolve(name, undefined, f.pin || undefined);
  // Resolve only, or the name has moved on since the thread planned: it plans again from the new binding.
  if (f.first < 0 || info.etag !== f.etag) return true;
  return read.fill(info, f.first, f.last, signal);
}

const fillFailures = new WeakMap<IncomingMessage, CacheError>();

/** The request the door handed over after its fill failed with `err`: JavaScript answers `err` (throwFillFailure). */
export function carryFillFailure(req: IncomingMessage, err: CacheError): void {
  fillFailures.set(req, err);
}

/** Throws the failure of this request's fill on the native door, if it had one (before anything is read again). */
export function throwFillFailure(req: IncomingMessage): void {
  const err = fillFailures.get(req);
  if (err) throw err;
}
