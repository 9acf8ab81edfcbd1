/**
 * Starts a real Azurite blob service for tests.
 *
 *   const az = await startAzurite();
 *   new AzureOrigin({ connectionString: az.connectionString, timeoutMs: 5000 });
 *   await az.stop();
 *
 * Azurite runs as its own process group (node + azurite's blob entry) on
 * 127.0.0.1 with port 0: the kernel picks a free port and Azurite prints it,
 * so two test files starting Azurite at once never race for a port. State is
 * in memory only, so nothing is left on disk. `stop()` kills the whole group.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { until } from './until.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  readonly connectionString: string;
  readonly port: number;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const LISTEN_RE = /successfully listens on https?:\/\/[^:]+:(\d+)/;

export async function startAzurite(): Promise<AzuriteHandle> {
  const require = createRequire(import.meta.url);
  // Resolve the blob entry directly and run it with our own node, so the test does not depend on
  // PATH or on the .bin shim's shebang.
  const entry = join(require.resolve('azurite/package.json'), '..', 'dist', 'src', 'blob', 'main.js');
  const cwd = await mkdtemp(join(tmpdir(), 'wc-azurite-'));
  const child = spawn(
    process.execPath,
    [
      entry,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--inMemoryPersistence',
      '--silent',
    ],
    { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });

  // If the test process dies without calling stop(), do not leave Azurite running.
  const onExit = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    await killGroup(child);
    await rm(cwd, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Azurite did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      const onData = (): void => {
        const m = LISTEN_RE.exec(stdout);
        if (m) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          resolve(Number(m[1]));
        }
      };
      child.stdout?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited during start (code ${code}, signal ${signal})`));
      });
    });
    await waitForConnect(port, START_TIMEOUT_MS);
  } catch (err) {
    await stop();
    throw new Error(
      `could not start Azurite (${entry}): ${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`,
    );
  }

  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
  return { connectionString, port, stop };
}

async function waitForConnect(port: number, timeoutMs: number): Promise<void> {
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  await until(accepts, { what: `a listener on 127.0.0.1:${port}`, timeoutMs, stepMs: 50 });
}

/** SIGTERM to the process group, SIGKILL if it lingers; resolves once the leader has exited. */
export async function killGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Azurite's container `models` with two blobs: `md5/with.bin` uploaded with a Content-MD5 of
 * `withBytes`, and `md5/without.bin` committed as a block list (Azure keeps no MD5 for it).
 */
export async function seedMd5Blobs(
  az: AzuriteHandle,
  withBytes: Buffer,
  withoutBytes: Buffer,
): Promise<void> {
  const c = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('models');
  await c.createIfNotExists();
  const md5 = createHash('md5').update(withBytes).digest();
  await c
    .getBlockBlobClient('md5/with.bin')
    .uploadData(withBytes, { blobHTTPHeaders: { blobContentMD5: md5 } });
  const without = c.getBlockBlobClient('md5/without.bin');
  const block = Buffer.from('block-0').toString('base64');
  await without.stageBlock(block, withoutBytes, withoutBytes.length);
  await without.commitBlockList([block]);
}
