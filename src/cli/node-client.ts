/**
 * The HTTP client `pull` and `prefetch` use to talk to a node or sidecar:
 * JSON calls and verified chunk reads, with bounded retries for the failures
 * that a retry can fix (502/503/504, resets, refused connections while a node
 * restarts, short bodies, bad checksums) and none for those it cannot (412,
 * 404, 4xx: the caller or the model is wrong, not the network).
 */
import type { FileHandle } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { crc32c } from '../chunk/checksum.js';
import { CacheError, type ErrorCode } from '../errors/cache-error.js';

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

const WRITE_BATCH_BYTES = 1024 * 1024;

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5000 };

/**
 * Failures another attempt may fix: the network or the node hiccupped (a
 * reset, a short body, 502/503/504) or the bytes arrived damaged. Everything
 * else (4xx, a wrong range or version, a disk error) is final.
 */
const retryable = new WeakSet<Error>();

function transient(e: CacheError): CacheError {
  retryable.add(e);
  return e;
}

/** The node could not be reached, or its answer broke off: PEER_UNAVAILABLE, worth a retry. */
function unreachable(message: string, cause?: unknown): CacheError {
  return transient(new CacheError('PEER_UNAVAILABLE', message, { cause }));
}

/** One chunk of one pinned file version. */
export interface ChunkRef {
  readonly container: string;
  readonly key: string;
  readonly version: string;
  readonly size: number;
  readonly index: number;
  readonly offset: number;
  readonly length: number;
}

export class NodeClient {
  readonly base: string;
  private readonly agent: Agent;
  /** Bearer token sent with every request (auth.tokensFile on the node); undefined: none. */
  token: string | undefined;

  constructor(
    url: string,
    connections: number,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly onRetry: (what: string, err: Error, attempt: number) => void = () => {},
  ) {
    try {
      new URL(url);
    } catch {
      throw new CacheError(
        'BAD_REQUEST',
        `not a URL: ${JSON.stringify(url)} (expected e.g. http://127.0.0.1:8420)`,
      );
    }
    this.base = url.replace(/\/+$/, '');
    // Body and header timeouts bound a stalled node; a retry then opens a new connection.
    this.agent = new Agent({ connections, headersTimeout: 30_000, bodyTimeout: 30_000 });
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  /** GET a JSON document; 4xx become CacheErrors carrying the node's code and message. */
  getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.withRetry(`GET ${path}`, signal, async () => {
      const res = await this.send('GET', path, {}, undefined, signal);
      const text = await res.body.text().catch((err: unknown) => {
        throw unreachable(`GET ${path}: body interrupted: ${describe(err)}`, err);
      });
      if (res.statusCode !== 200) throw pullAnswerError(res.statusCode, text, `GET ${path}`);
      return JSON.parse(text) as T;
    });
  }

  /** POST a JSON body (not retried: the server may have acted on it). */
  async postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; body: T }> {
    const res = await this.send(
      'POST',
      path,
      { 'content-type': 'application/json' },
      JSON.stringify(body),
      signal,
    );
    const text = await res.body.text();
    if (res.statusCode >= 300) throw answerError(res.statusCode, text, `POST ${path}`);
    return { status: res.statusCode, body: JSON.parse(text) as T };
  }

  /**
   * Reads one chunk pinned to its version and streams it into `fh` at the
   * chunk's offset (positional writes: no whole chunk in memory), checking
   * status, ETag, Content-Range, Content-Length, the byte count and the
   * X-Chunk-Crc32c of the bytes received. `onBytes` sees progress, negative
   * when a failed attempt's bytes are taken back.
   */
  readChunk(c: ChunkRef, fh: FileHandle, onBytes: (n: number) => void, signal?: AbortSignal): Promise<void> {
    const what = `${c.key} chunk ${c.index}`;
    return this.withRetry(what, signal, async () => {
      const end = c.offset + c.length - 1;
      const res = await this.send(
        'GET',
        objectPath(c.container, c.key),
        { range: `bytes=${c.offset}-${end}`, 'if-match': `"${c.version}"` },
        undefined,
        signal,
      );
      if (res.statusCode !== 206) throw pullAnswerError(res.statusCode, await res.body.text(), what);
      const h = (name: string) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const problems = [
        h('etag') === `"${c.version}"` ? '' : `ETag ${h('etag')} is not the pinned "${c.version}"`,
        h('content-range') === `bytes ${c.offset}-${end}/${c.size}`
          ? ''
          : `Content-Range ${h('content-range')} is not bytes ${c.offset}-${end}/${c.size}`,
        Number(h('content-length')) === c.length
          ? ''
          : `Content-Length ${h('content-length')} is not ${c.length}`,
      ].filter(Boolean);
      if (problems.length > 0) {
        discard(res.body);
        // A server that answers the wrong range or version would corrupt the file: never retried into place.
        throw new CacheError('ORIGIN_BAD_RESPONSE', `${what}: ${problems.join('; ')}`);
      }
      const expected = h('x-chunk-crc32c');
      if (!expected || !/^[0-9a-f]{8}$/i.test(expected)) {
        discard(res.body);
        throw new CacheError(
          'ORIGIN_BAD_RESPONSE',
          `${what}: the server sent no X-Chunk-Crc32c to verify against`,
        );
      }
      let crc = 0;
      let pos = c.offset;
      // Pieces are gathered up to WRITE_BATCH_BYTES per pwritev: one thread-pool
      // hop per MiB instead of per 64 KiB socket read, and no copy.
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const drain = async () => {
        const bufs = batch;
        const at = pos - batchBytes;
        batch = [];
        batchBytes = 0;
        await writeAt(fh, bufs, at);
      };
      try {
        for await (const piece of res.body as AsyncIterable<Buffer>) {
          if (pos + piece.length > c.offset + c.length)
            throw unreachable(`${what}: body longer than ${c.length}`);
          crc = crc32c(piece, crc);
          batch.push(piece);
          batchBytes += piece.length;
          pos += piece.length;
          onBytes(piece.length);
          if (batchBytes >= WRITE_BATCH_BYTES) await drain();
        }
        if (batchBytes > 0) await drain();
      } catch (err) {
        onBytes(c.offset - pos);
        if (err instanceof CacheError) throw err; // the disk, or a body cut short above
        throw unreachable(`${what}: body interrupted: ${(err as Error).message}`, err);
      }
      const received = pos - c.offset;
      if (received !== c.length) {
        onBytes(-received);
        throw unreachable(`${what}: got ${received} of ${c.length} bytes`);
      }
      if (crc !== Number.parseInt(expected, 16)) {
        onBytes(-received);
        throw transient(
          new CacheError(
            'CHECKSUM_MISMATCH',
            `${what}: CRC32C of the received bytes is ${hex(crc)}, the server says ${expected.toLowerCase()}`,
          ),
        );
      }
    });
  }

  private send(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ) {
    const auth = this.token ? { authorization: `Bearer ${this.token}` } : {};
    return request(`${this.base}${path}`, {
      method,
      headers: { ...headers, ...auth },
      body,
      signal,
      dispatcher: this.agent,
    }).catch((err: unknown) => {
      if (signal?.aborted) throw err;
      throw unreachable(`cannot reach ${this.base}: ${describe(err)}`, err);
    });
  }

  private async withRetry<T>(
    what: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const again = err instanceof Error && retryable.has(err);
        if (!again || attempt >= this.retry.attempts) {
          if (CacheError.is(err, 'CHECKSUM_MISMATCH') && again) {
            throw new CacheError(
              'CHECKSUM_MISMATCH',
              `${err.message} (${attempt} attempts); the node or the network corrupts data`,
            );
          }
          if (CacheError.is(err) && again && attempt > 1) {
            throw new CacheError(err.code, `${err.message} (gave up after ${attempt} attempts)`, {
              cause: err,
            });
          }
          throw err;
        }
        this.onRetry(what, err as Error, attempt);
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        // Full jitter: many pullers retrying a restarted node do not come back in lockstep.
        await sleep(backoff / 2 + Math.random() * (backoff / 2), signal);
      }
    }
  }
}

/** `/v1/objects/{container}/{key}` with each segment percent-encoded. */
export function objectPath(container: string, key: string): string {
  return `/v1/objects/${encodeURIComponent(container)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Writes all of `bufs` at `position` with pwritev, continuing after short writes. */
async function writeAt(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let left = bufs;
  let at = position;
  try {
    while (left.length > 0) {
      const { bytesWritten } = await fh.writev(left, at);
      at += bytesWritten;
      let skip = bytesWritten;
      while (left.length > 0 && skip >= left[0]!.length) {
        skip -= left[0]!.length;
        left = left.slice(1);
      }
      if (skip > 0) left = [left[0]!.subarray(skip), ...left.slice(1)];
    }
  } catch (err) {
    // Never retried: the disk, not the network. A full disk has its own code (the operator frees space).
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new CacheError('DISK_FULL', 'cannot write the model: the disk is full (ENOSPC)', { cause: err });
    }
    throw new CacheError('TIER_IO', `cannot write the model: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A node's error answer as a CacheError: the code it sent when this build
 * knows it (CacheError.fromWire), else one for the status (a proxy's page);
 * 502/503/504 are worth a retry.
 */
export function answerError(
  status: number,
  text: string,
  what: string,
  hint = status === 401 ? " (pass --token, --token-file, or --config with the node's config)" : '',
): CacheError {
  let code: unknown;
  let message = text.slice(0, 300);
  try {
    const j = JSON.parse(text) as { code?: unknown; message?: unknown };
    code = j.code;
    if (typeof j.message === 'string') message = j.message;
  } catch {
    // not JSON (a proxy's page): keep the text
  }
  const e = CacheError.fromWire(
    code,
    `${what}: the node answered ${status}: ${message}${hint}`,
    codeOfStatus(status),
  );
  return status === 502 || status === 503 || status === 504 ? transient(e) : e;
}

/** For an answer without a code this build knows. */
function codeOfStatus(status: number): ErrorCode {
  const known: Record<number, ErrorCode> = {
    400: 'BAD_REQUEST',
    401: 'UNAUTHORIZED',
    403: 'FORBIDDEN',
    404: 'NOT_FOUND',
    412: 'PRECONDITION_FAILED',
    413: 'TOO_LARGE',
    416: 'RANGE_NOT_SATISFIABLE',
    502: 'PEER_UNAVAILABLE',
    503: 'PEER_UNAVAILABLE',
    504: 'PEER_UNAVAILABLE',
  };
  return known[status] ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
}

/** As answerError; a 412 to a pinned read means the file changed at the origin during the pull. */
function pullAnswerError(status: number, text: string, what: string): CacheError {
  if (status !== 412) return answerError(status, text, what);
  return new CacheError(
    'VERSION_CHANGED',
    `the model changed during the pull; re-run to get the new version (${answerError(status, text, what).message})`,
  );
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** Drops a body we refuse; destroying it emits an error nobody else listens for. */
function discard(body: { on(event: 'error', fn: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => {});
  body.destroy();
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
