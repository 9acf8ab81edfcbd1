/** Builds the configured origin. */
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import { AzureOrigin } from './azure.js';
import { FsOrigin } from './fs.js';
import { HttpOrigin } from './http.js';
import type { Origin } from './origin.js';

export function createOrigin(cfg: Config['origin']): Origin {
  switch (cfg.type) {
    case 'fs':
      return new FsOrigin({ root: cfg.fs.root });
    case 'azure':
      if (!cfg.azure) throw new CacheError('CONFIG_INVALID', 'origin.azure.connectionString is not set');
      return new AzureOrigin({ connectionString: cfg.azure.connectionString, timeoutMs: cfg.timeout });
    case 'http':
      if (!cfg.http) throw new CacheError('CONFIG_INVALID', 'origin.http.baseUrl is not set');
      return new HttpOrigin({ baseUrl: cfg.http.baseUrl, timeoutMs: cfg.timeout, headers: cfg.http.headers });
    default:
      throw new CacheError(
        'CONFIG_INVALID',
        `origin.type ${cfg.type} is not implemented yet; use fs, azure or http`,
      );
  }
}
