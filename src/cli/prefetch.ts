/**
 * `weightcache prefetch container/prefix`: asks a node to warm a model
 * (POST /v1/prefetch), then follows the job with a progress display until it
 * is done (exit 0) or failed (non-zero). `--no-wait` prints the job id and
 * returns, for rollout tools that poll GET /v1/prefetch/{id} themselves.
 */
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { NodeClient, sleep } from './node-client.js';
import { progressMode, startProgress } from './progress.js';
import { parseTarget } from './pull.js';

export interface PrefetchOptions {
  readonly target: string;
  readonly url: string;
  readonly wait: boolean;
  readonly quiet: boolean;
  readonly pollMs: number;
  /** Bearer token (an admin token, where the node has auth). */
  readonly token?: string;
}

interface JobStatus {
  state: 'running' | 'done' | 'failed';
  files: number;
  filesDone: number;
  bytesDone: number;
  bytesTotal: number;
  error?: { code: string; message: string };
}

export async function runPrefetch(o: PrefetchOptions): Promise<void> {
  const { container, prefix } = parseTarget(o.target);
  const client = new NodeClient(o.url, 2);
  client.token = o.token;
  try {
    const { body: job } = await client.postJson<{
      id: string;
      files: number;
      bytes: number;
      joined: boolean;
    }>('/v1/prefetch', { container, prefix });
    const label = `${container}/${prefix}`;
    if (!o.quiet || !o.wait) {
      process.stdout.write(
        `prefetch ${label}: job ${job.id}${job.joined ? ' (already running)' : ''}, ${job.files} files, ${formatBytes(job.bytes)}\n`,
      );
    }
    if (!o.wait) return;
    const progress = startProgress({
      label,
      totalBytes: job.bytes,
      startBytes: 0,
      mode: progressMode(o.quiet),
    });
    let s: JobStatus;
    try {
      for (;;) {
        s = await client.getJson<JobStatus>(`/v1/prefetch/${encodeURIComponent(job.id)}`);
        progress.update(s.bytesDone, s.bytesTotal);
        if (s.state !== 'running') break;
        await sleep(o.pollMs);
      }
    } finally {
      progress.stop();
    }
    if (s.state === 'failed') {
      throw CacheError.fromWire(
        s.error?.code,
        `prefetch of ${label} failed: ${s.error?.message ?? 'unknown error'}`,
      );
    }
    if (!o.quiet) {
      process.stdout.write(`prefetched ${label}: ${s.filesDone} files, ${formatBytes(s.bytesDone)} warm\n`);
    }
  } finally {
    await client.close();
  }
}
