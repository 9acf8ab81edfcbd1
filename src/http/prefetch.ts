/**
 * `POST /v1/prefetch {container, prefix}` starts (or joins) a prefetch job
 * and answers 202 with its id; `GET /v1/prefetch/{id}` reports its progress.
 * The jobs themselves, their limits and owner warming are src/prefetch/
 * (shared with RESP's WC.PREFETCH); this file only translates HTTP.
 */
import type { Hono } from 'hono';
import type { TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { type PrefetchJobs, validateTarget } from '../prefetch/jobs.js';
import { requireAdmin } from './auth.js';
import type { HttpEnv } from './objects.js';

const MAX_BODY_BYTES = 16 * 1024;
export const PREFETCH_PATH = '/v1/prefetch';

export interface PrefetchDeps {
  readonly jobs: PrefetchJobs;
  /** Bearer tokens; null or absent: no auth. POST checks for an admin token itself (defence in depth). */
  readonly tokens?: TokenSet | null;
}

export function prefetchRoutes(app: Hono<HttpEnv>, d: PrefetchDeps): PrefetchJobs {
  const { jobs } = d;
  app.post(PREFETCH_PATH, async (c) => {
    requireAdmin(c, d.tokens ?? null, PREFETCH_PATH);
    const { container, prefix } = parseBody(await readBody(c.req.raw));
    const { job, joined } = await jobs.start(container, prefix);
    return c.json({ id: job.id, files: job.files, bytes: job.bytesTotal, joined }, 202);
  });
  app.get('/v1/prefetch/:id', (c) => {
    const job = jobs.get(c.req.param('id'));
    if (!job) throw new CacheError('NOT_FOUND', `no prefetch job ${JSON.stringify(c.req.param('id'))}`);
    return c.json({
      id: job.id,
      container: job.container,
      prefix: job.prefix,
      state: job.state,
      files: job.files,
      filesDone: job.filesDone,
      bytesDone: job.bytesDone,
      bytesTotal: job.bytesTotal,
      chunks: job.chunks,
      found: job.found,
      startedAt: job.startedAt.toISOString(),
      ...(job.finishedAt ? { finishedAt: job.finishedAt.toISOString() } : {}),
      ...(job.error ? { error: job.error } : {}),
    });
  });
  return jobs;
}

async function readBody(req: Request): Promise<string> {
  if (!req.body) return '';
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new CacheError('TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseBody(text: string): { container: string; prefix: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CacheError('BAD_REQUEST', 'body must be JSON: {"container": "...", "prefix": "..."}');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new CacheError('BAD_REQUEST', 'body must be a JSON object {"container", "prefix"}');
  }
  const { container, prefix } = body as Record<string, unknown>;
  if (typeof container !== 'string') throw new CacheError('BAD_REQUEST', '"container" must be a string');
  if (typeof prefix !== 'string') throw new CacheError('BAD_REQUEST', '"prefix" must be a string');
  return validateTarget(container, prefix);
}
