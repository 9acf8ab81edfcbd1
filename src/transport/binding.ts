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
}

let cached: Binding | undefined;

/** Loads addon/build/Release/weightcache.node once. */
export function binding(): Binding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
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
