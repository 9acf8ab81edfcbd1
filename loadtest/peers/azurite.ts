/**
 * Azurite (the npm Azure Blob emulator) as an origin for cold fills, with the
 * model uploaded once per run. In-memory storage: nothing left on disk.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { freePort, waitForPort } from '../ports.js';
import { start } from '../processes.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  readonly port: number;
  readonly pid: number;
  readonly connectionString: string;
  upload(container: string, files: readonly { key: string; path: string }[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzurite(workDir: string): Promise<Azurite> {
  const require = createRequire(import.meta.url);
  const entry = join(require.resolve('azurite/package.json'), '..', 'dist', 'src', 'blob', 'main.js');
  const port = await freePort();
  const p = start(
    'azurite',
    process.execPath,
    [
      entry,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--inMemoryPersistence',
      '--silent',
    ],
    { cwd: workDir },
  );
  await waitForPort(port, 'azurite', p.exited, 30_000);
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};` +
    `BlobEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`;
  return {
    port,
    pid: p.pid,
    connectionString,
    async upload(container, files) {
      const svc = BlobServiceClient.fromConnectionString(connectionString);
      const c = svc.getContainerClient(container);
      // Public read, so the "Azurite direct" baseline can GET ranges without signing.
      await c.createIfNotExists({ access: 'blob' });
      for (const f of files) {
        await c.getBlockBlobClient(f.key).uploadFile(f.path, { blockSize: 8 * 2 ** 20, concurrency: 4 });
      }
    },
    stop: () => p.stop(),
  };
}
