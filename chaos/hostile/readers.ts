/**
 * The well-behaved clients that keep reading while the attacks run, each
 * from its own source address (127.0.0.2), checking every byte:
 *
 * - http: two keep-alive connections, closed loop (a loader mid-download);
 * - http-new: one request per new connection, 4 per second (a loader starting);
 * - resp: AUTH + GETRANGE on a new connection, 4 per second;
 * - transport: a peer's new connection (HELLO, cluster-secret AUTH, STAT), 2 per second.
 *
 * Each read is a sample (when, ok, latency); the scenario cuts the samples
 * into windows (baseline, each attack) afterwards. They run in a process of
 * their own (reader-process.ts), so the attacker's work in the runner can
 * never delay them: what they measure is the node.
 */
import { request } from 'node:http';
import { TransportClient } from '../../src/transport/index.js';
import { CONTAINER, type Dataset, wrongBytes } from '../data.js';
import { RangeReader } from '../http-reader.js';
import { sleep } from '../latency.js';
import { respGetRange } from './resp-client.js';

export type ReaderKind = 'http' | 'http-new' | 'resp' | 'transport';
export const READER_KINDS: readonly ReaderKind[] = ['http', 'http-new', 'resp', 'transport'];

export interface Sample {
  readonly kind: ReaderKind;
  /** Start, in ms since the epoch (performance.timeOrigin + now()): comparable across processes. */
  readonly t: number;
  readonly ok: boolean;
  readonly ms: number;
  readonly wrong: number;
  readonly error?: string;
}

export interface ReaderOptions {
  readonly httpPort: number;
  readonly respPort: number;
  readonly transportPort: number;
  readonly token: string;
  readonly secret: Buffer;
  readonly data: Dataset;
  readonly key: string;
  /** Called with every sample as it is taken. */
  readonly onSample: (s: Sample) => void;
  readonly rangeBytes: number;
  readonly timeoutMs: number;
  readonly localAddress: string;
}

export const now = () => performance.timeOrigin + performance.now();

export function startReaders(o: ReaderOptions): { stop(): Promise<void> } {
  let stopped = false;
  const bytes = o.data.get(o.key);
  const range = () => {
    const a = Math.floor(Math.random() * (bytes.length - o.rangeBytes));
    return [a, a + o.rangeBytes - 1] as const;
  };
  const auth = { authorization: `Bearer ${o.token}` };
  const pool = new RangeReader(`http://127.0.0.1:${o.httpPort}`, {
    connections: 2,
    timeoutMs: o.timeoutMs,
    localAddress: o.localAddress,
    headers: auth,
  });
  const paced = async (perS: number, kind: ReaderKind, once: () => Promise<Omit<Sample, 'kind' | 't'>>) => {
    while (!stopped) {
      const t = now();
      o.onSample({ kind, t, ...(await once()) });
      await sleep(Math.max(0, 1000 / perS - (now() - t)));
    }
  };
  const loops = [
    ...[0, 1].map(async () => {
      while (!stopped) {
        const t = now();
        const [a, b] = range();
        const r = await pool.read(o.data.urlPath(o.key), a, b, bytes.subarray(a, b + 1));
        o.onSample({
          kind: 'http',
          t,
          ok: r.ok,
          ms: r.ms,
          wrong: r.wrong,
          ...(r.ok ? {} : { error: `${r.status} ${r.code ?? ''}` }),
        });
        if (!r.ok) await sleep(50); // a refused reader does not spin
      }
    }),
    paced(4, 'http-new', async () => {
      const [a, b] = range();
      const t0 = performance.now();
      const r = await freshGet(o.httpPort, o.localAddress, o.data.urlPath(o.key), a, b, auth, o.timeoutMs);
      const wrong = r.status === 206 ? wrongBytes(r.body, bytes.subarray(a, b + 1)) : 0;
      const ok = r.status === 206 && wrong === 0;
      return { ok, ms: performance.now() - t0, wrong, ...(ok ? {} : { error: r.error ?? `${r.status}` }) };
    }),
    paced(4, 'resp', async () => {
      const [a, b] = range();
      const r = await respGetRange(
        o.respPort,
        o.localAddress,
        o.token,
        `${CONTAINER}/${o.key}`,
        a,
        b,
        o.timeoutMs,
      );
      const wrong = r.bytes ? wrongBytes(r.bytes, bytes.subarray(a, b + 1)) : 0;
      return { ok: r.ok && wrong === 0, ms: r.ms, wrong, ...(r.error ? { error: r.error } : {}) };
    }),
    paced(2, 'transport', async () => {
      const t0 = performance.now();
      const c = new TransportClient({
        host: '127.0.0.1',
        port: o.transportPort,
        timeoutMs: o.timeoutMs,
        secret: o.secret,
        connections: 1,
        nodeId: 'chaos-peer',
        logger: { warn: () => {}, info: () => {} },
      });
      try {
        const info = await c.stat({ container: CONTAINER, key: o.key });
        const ok = info.size === bytes.length;
        return { ok, ms: performance.now() - t0, wrong: 0, ...(ok ? {} : { error: 'wrong size' }) };
      } catch (err) {
        return {
          ok: false,
          ms: performance.now() - t0,
          wrong: 0,
          error: (err as Error).message.slice(0, 80),
        };
      } finally {
        await c.close().catch(() => {});
      }
    }),
  ];
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await pool.close();
    },
  };
}

function freshGet(
  port: number,
  localAddress: string,
  path: string,
  a: number,
  b: number,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; body: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        path,
        agent: false,
        headers: { ...headers, range: `bytes=${a}-${b}` },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve(
            res.complete
              ? { status: res.statusCode ?? 0, body: Buffer.concat(parts) }
              : { status: 0, body: Buffer.alloc(0), error: 'cut' },
          ),
        );
        res.on('error', (e: NodeJS.ErrnoException) =>
          resolve({ status: 0, body: Buffer.alloc(0), error: e.code }),
        );
      },
    );
    // A hard deadline: a connect stuck in a full SYN queue is not covered by the socket's idle timeout.
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })),
      timeoutMs,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ status: 0, body: Buffer.alloc(0), error: e.code ?? e.message }),
    );
    req.end();
  });
}
