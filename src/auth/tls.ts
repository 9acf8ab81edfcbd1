/** Reads a door's PEM certificate and key at start, naming the key and file on failure. */
import { readFileSync } from 'node:fs';
import { CacheError } from '../errors/cache-error.js';

export function readTls(
  cfg: { certFile: string; keyFile: string } | null,
  key: string,
): { cert: Buffer; key: Buffer } | null {
  if (!cfg) return null;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CacheError(
        'CONFIG_INVALID',
        `${key}.${what}: cannot read ${file}: ${(err as Error).message}`,
      );
    }
  };
  return { cert: read(cfg.certFile, 'certFile'), key: read(cfg.keyFile, 'keyFile') };
}
