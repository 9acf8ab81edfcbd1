/**
 * `weightcache invalidate container/key` and `weightcache invalidate --prefix
 * container/prefix`: asks a node (POST /v1/invalidate) to make every cache in
 * the cluster forget what a name means, and returns when that is done: from
 * then on no new read anywhere gets the old version. Prints what the name is
 * bound to now (or that the origin no longer has it), how many leases were
 * revoked (acknowledged, or waited out) and how long it took; `--json` prints
 * the node's answer as it is. Not retried: a failure is reported and the
 * operator re-runs (an invalidation is idempotent).
 */
import { Agent, request } from 'undici';
import type { InvalidationResult, InvalidationTarget } from '../coherence/invalidation.js';
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { formatName, parseName, validateContainer, validateKey } from '../origin/names.js';
import { answerError } from './node-client.js';

export interface InvalidateOptions {
  /** `container/key`, or with `prefix` `container/prefix` (`container` or `container/` alone: all of it). */
  readonly target: string;
  readonly prefix: boolean;
  readonly url: string;
  readonly json: boolean;
  /** 0: wait as long as the node takes (at most about one lease term when a holder is unreachable). */
  readonly timeoutMs: number;
  /** An admin bearer token, where the node has auth. */
  readonly token?: string;
}

export function parseInvalidateTarget(target: string, prefix: boolean): InvalidationTarget {
  if (prefix) {
    const slash = target.indexOf('/');
    const container = validateContainer(slash < 0 ? target : target.slice(0, slash));
    const p = slash < 0 ? '' : target.slice(slash + 1);
    return { container, prefix: validateKey(p, { allowEmpty: true, what: 'prefix' }) };
  }
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1) {
    throw new CacheError(
      'BAD_KEY',
      `expected container/key, got ${JSON.stringify(target.slice(0, 200))} (for everything under a prefix: --prefix container/prefix)`,
    );
  }
  return parseName(target);
}

export async function runInvalidate(o: InvalidateOptions): Promise<void> {
  const target = parseInvalidateTarget(o.target, o.prefix);
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs < 0) {
    throw new CacheError('BAD_REQUEST', '--timeout must be a number of milliseconds (0: no timeout)');
  }
  let base: string;
  try {
    base = new URL(o.url).href.replace(/\/+$/, '');
  } catch {
    throw new CacheError(
      'BAD_REQUEST',
      `not a URL: ${JSON.stringify(o.url)} (expected e.g. http://127.0.0.1:8420)`,
    );
  }
  const result = await post(base, target, o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${summary(result)}\n`);
}

async function post(
  base: string,
  target: InvalidationTarget,
  o: InvalidateOptions,
): Promise<InvalidationResult> {
  const url = `${base}/v1/invalidate`;
  // The node answers only once the invalidation completed, which may take a
  // lease term: undici's own header and body timeouts must not cut it short.
  const agent = new Agent({ connections: 1, headersTimeout: 0, bodyTimeout: 0 });
  try {
    let res: Awaited<ReturnType<typeof request>>;
    let text: string;
    try {
      res = await request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-weightcache-source': 'cli',
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
        body: JSON.stringify(target),
        dispatcher: agent,
        ...(o.timeoutMs > 0 ? { signal: AbortSignal.timeout(o.timeoutMs) } : {}),
      });
      text = await res.body.text();
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError') {
        throw new CacheError(
          'PEER_UNAVAILABLE',
          `${url}: no answer within ${o.timeoutMs} ms; the invalidation may still complete (re-run to be sure)`,
        );
      }
      throw new CacheError(
        'PEER_UNAVAILABLE',
        `cannot reach ${base}: ${e.cause?.code ?? e.code ?? e.cause?.message ?? e.message}`,
        { cause: err },
      );
    }
    if (res.statusCode !== 200) throw statusError(res.statusCode, text, describeTarget(target));
    try {
      return JSON.parse(text) as InvalidationResult;
    } catch {
      throw new CacheError(
        'INTERNAL',
        `${url} answered 200 with a body that is not JSON: ${text.slice(0, 200)}`,
      );
    }
  } finally {
    await agent.close();
  }
}

function describeTarget(t: InvalidationTarget): string {
  return 'key' in t ? formatName(t) : `${t.container}/${t.prefix}*`;
}

export function summary(r: InvalidationResult): string {
  const leases = `${r.acked} lease${r.acked === 1 ? '' : 's'} acknowledged, ${r.expired} waited out`;
  const took = `in ${duration(r.durationMs)}`;
  if (r.key !== undefined) {
    const bound =
      r.version === null || r.version === undefined
        ? 'deleted (the origin no longer has it; reads get 404)'
        : `now ETag "${r.version.etag}", ${sizeOf(r.version.size)}`;
    return `invalidated ${r.container}/${r.key}: ${bound}; ${leases}, ${took}`;
  }
  const names = `${r.names} name${r.names === 1 ? '' : 's'} re-resolved`;
  return `invalidated ${r.container}/${r.prefix ?? ''}*: ${names}; ${leases}, ${took}`;
}

function duration(ms: number): string {
  if (ms >= 10_000) return `${Math.round(ms / 1000)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

function sizeOf(n: number): string {
  return n < 1024 ? `${n} bytes` : `${formatBytes(n)} (${n} bytes)`;
}

/** The node's answer as a CacheError (answerError), with a hint where one helps. */
function statusError(status: number, text: string, what: string): CacheError {
  const noRoute = status === 404 && /no route/.test(text);
  const hint =
    status === 401
      ? ' (pass an admin token with --token or --token-file)'
      : status === 403
        ? ' (invalidation needs an admin token: auth.adminTokensFile)'
        : noRoute
          ? ' (this server has no /v1/invalidate: is it a weightcache node of this version?)'
          : status >= 500
            ? '; the invalidation did not complete, retry it'
            : '';
  return answerError(status, text, `invalidate ${what}`, hint);
}
