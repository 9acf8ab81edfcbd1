/**
 * A well-behaved HTTP client that checks every byte: keep-alive connections
 * (undici), one GET with a Range per read, no retries (a failed read is a
 * failure the scenario counts), and a per-read timeout. It reports what a
 * loader would see: the status, the error code in the JSON body, a body cut
 * short, and how many bytes differ from the origin's.
 */
import { Pool } from 'undici';
import { wrongBytes } from './data.js';

export interface ReadOutcome {
  readonly ok: boolean;
  /** HTTP status, or 0 when no response arrived (refused, reset, timed out). */
  readonly status: number;
  readonly ms: number;
  /** Bytes that differ from the origin's (0 unless a full body arrived with a 2xx). */
  readonly wrong: number;
  /** The error's `code` from the JSON body, or the socket error's code. */
  readonly code?: string;
}

export interface ReaderOptions {
  readonly connections: number;
  readonly timeoutMs: number;
  /** Source address (127.0.0.x): tells this client apart from an attacker on the same host. */
  readonly localAddress?: string;
  readonly headers?: Record<string, string>;
}

export class RangeReader {
  private readonly pool: Pool;

  constructor(
    base: string,
    private readonly o: ReaderOptions,
  ) {
    this.pool = new Pool(base, {
      connections: o.connections,
      pipelining: 1,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      connectTimeout: o.timeoutMs,
      keepAliveTimeout: 30_000,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
  }

  /** GET `path` bytes [start, end] and compare them with `expected` (exactly those bytes). */
  async read(path: string, start: number, end: number, expected: Buffer): Promise<ReadOutcome> {
    const r = await this.get(path, start, end);
    if (r.status !== 206 || !r.body) return { ok: false, status: r.status, ms: r.ms, wrong: 0, code: r.code };
    const wrong = wrongBytes(r.body, expected);
    return { ok: wrong === 0, status: 206, ms: r.ms, wrong };
  }

  /** GET `path` bytes [start, end]: the whole body of a 206 (null if cut short or another status). */
  async get(
    path: string,
    start: number,
    end: number,
  ): Promise<{ status: number; body: Buffer | null; ms: number; code?: string }> {
    const t0 = performance.now();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.o.timeoutMs);
    try {
      const res = await this.pool.request({
        path,
        method: 'GET',
        headers: { range: `bytes=${start}-${end}`, ...this.o.headers },
        signal: ac.signal,
      });
      const parts: Buffer[] = [];
      for await (const c of res.body) parts.push(c as Buffer);
      const body = Buffer.concat(parts);
      const ms = performance.now() - t0;
      if (res.statusCode !== 206) return { status: res.statusCode, body: null, ms, code: codeOf(body) };
      return { status: 206, body, ms };
    } catch (err) {
      // undici rejects a body shorter than its Content-Length: a cut response lands here.
      const e = err as NodeJS.ErrnoException;
      const code = ac.signal.aborted ? 'CLIENT_TIMEOUT' : (e.code ?? e.name ?? 'ERROR');
      return { status: 0, body: null, ms: performance.now() - t0, code };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function codeOf(body: Buffer): string | undefined {
  try {
    const j = JSON.parse(body.toString('utf8')) as { code?: unknown };
    return typeof j.code === 'string' ? j.code : undefined;
  } catch {
    return undefined;
  }
}
