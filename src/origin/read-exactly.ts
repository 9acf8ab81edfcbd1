/**
 * Reads a response body into one preallocated Buffer of exactly `length`
 * bytes. Chunk-by-chunk copying into a single allocation avoids holding every
 * network chunk and then concatenating them (two copies of a 4 MiB chunk per
 * read). A body that ends early or runs past `length` is a bad response:
 * partial bytes are never returned.
 */
import { CacheError } from '../errors/cache-error.js';

export async function readExactly(
  body: AsyncIterable<Uint8Array> & { destroy?(err?: Error): void },
  length: number,
  signal: AbortSignal,
  what: string,
  into?: Buffer,
): Promise<Buffer> {
  const buf = into ?? Buffer.allocUnsafe(length);
  let at = 0;
  // A stalled body never yields again; destroying it makes the pending iteration reject.
  const onAbort = (): void => body.destroy?.(signal.reason instanceof Error ? signal.reason : undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body) {
      if (at + chunk.length > length) {
        // Leaving the loop destroys the body, so the rest is never read.
        throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: body is longer than the ${length} bytes asked`);
      }
      buf.set(chunk, at);
      at += chunk.length;
    }
  } catch (err) {
    if (CacheError.is(err) || signal.aborted) throw err;
    throw new CacheError(
      'ORIGIN_BAD_RESPONSE',
      `${what}: body broke off after ${at} of ${length} bytes: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (at !== length) {
    throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: body ended after ${at} of ${length} bytes`);
  }
  return buf;
}
