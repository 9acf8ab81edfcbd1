/**
 * A raw HTTP/1.1 client connection for tests that need to see the wire:
 * pipelined requests written at once, answers parsed one by one
 * (Content-Length framing, interim 1xx answers), and when the server closed.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses complete answers from the front of `buf`; returns them and the bytes left over. */
export function parseResponses(buf: Buffer): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '')?.[1]);
    if (!status) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    const len = Number(headers['content-length'] ?? 0);
    if (buf.length < end + 4 + len) break;
    responses.push({ status, headers, body: buf.subarray(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
  return { responses, rest: buf.subarray(at) };
}

export class RawConn {
  private buf: Buffer = Buffer.alloc(0);
  private parsed: RawResponse[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  /** Bytes received in total. */
  received = 0;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf = Buffer.concat([this.buf, d]);
      const { responses, rest } = parseResponses(this.buf);
      this.parsed.push(...responses);
      this.buf = rest;
      this.wake();
    });
    sock.on('error', () => {}); // a reset is an outcome the tests look at through `closed`
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  /** Connects to 127.0.0.1:`port`, from `localAddress` (another 127.0.0.x is another client address). */
  static async open(port: number, localAddress?: string): Promise<RawConn> {
    const sock = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return new RawConn(sock);
  }

  send(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits for `n` answers in all (interim 1xx included); throws past `timeoutMs`. */
  async responses(n: number, timeoutMs = 20_000): Promise<RawResponse[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.parsed.length < n) {
      if (this.isClosed) throw new Error(`closed after ${this.parsed.length} of ${n} answers`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.parsed.length} of ${n} answers after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.parsed.slice(0, n);
  }

  /** Resolves true once the server closed the connection, false after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const r = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export const get = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: cache\r\n${extra}\r\n`;
