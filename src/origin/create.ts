/** Builds the configured origin. */
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';
import { AzureOrigin } from './azure.js';
import { FsOrigin } from './fs.js';
import { HttpOrigin } from './http.js';
import type { Origin } from './origin.js';
import { S3Origin } from './s3.js';
import { credentialSource } from './s3-credentials.js';

export function createOrigin(cfg: Config['origin']): Origin {
  switch (cfg.type) {
    case 'fs':
      return new FsOrigin({ root: cfg.fs.root, directIo: cfg.fs.directIo });
    case 'azure':
      if (!cfg.azure) throw new CacheError('CONFIG_INVALID', 'origin.azure.connectionString is not set');
      return new AzureOrigin({ connectionString: cfg.azure.connectionString, timeoutMs: cfg.timeout });
    case 'http':
      if (!cfg.http) throw new CacheError('CONFIG_INVALID', 'origin.http.baseUrl is not set');
      return new HttpOrigin({ baseUrl: cfg.http.baseUrl, timeoutMs: cfg.timeout, headers: cfg.http.headers });
    case 's3': {
      const s3 = cfg.s3;
      if (!s3) throw new CacheError('CONFIG_INVALID', 'origin.s3.endpoint is not set');
      return new S3Origin({
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: s3.bucket,
        pathStyle: s3.pathStyle,
        credentials: credentialSource(s3.credentials, s3.region, process.env, cfg.timeout),
        timeoutMs: cfg.timeout,
      });
    }
  }
}
