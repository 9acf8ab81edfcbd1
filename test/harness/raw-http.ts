/**
 * HTTP/1.1 over a raw TCP socket, for tests that must control every byte
 * (request targets no client would send: fragments, NUL, absolute-form,
 * pipelines) and see every byte of the answers.
 */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Reads HTTP/1.1 responses off a socket as they arrive. */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  static async open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawConnection> {
    const socket = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  send(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** The next response; HEAD answers (or 1xx/204/304) carry no body whatever Content-Length says. */
  async read(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawAnswer> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        const noBody = opts.head || status === 304 || status === 204 || status < 200;
        const length = noBody ? 0 : Number(headers['content-length'] ?? 0);
        if (this.buf.length >= end + 4 + length) {
          const body = this.buf.subarray(end + 4, end + 4 + length);
          this.buf = this.buf.subarray(end + 4 + length);
          return { status, headers, body: Buffer.from(body) };
        }
      }
      if (this.closed)
        throw new Error(`connection closed before a whole response (${this.buf.length} bytes buffered)`);
      if (Date.now() > deadline) throw new Error('no response in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Resolves once the server closed the connection (or after timeoutMs, with false). */
  async waitClosed(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One request on its own connection: sends `bytes`, reads one answer, closes. */
export async function rawExchange(port: number, bytes: string | Buffer, head = false): Promise<RawAnswer> {
  const c = await RawConnection.open(port);
  try {
    c.send(bytes);
    return await c.read({ head });
  } finally {
    c.close();
  }
}

/** `METHOD target HTTP/1.1` with Host and the given headers, and an optional body. */
export function rawRequest(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = '',
): string {
  const h = {
    Host: 'cache',
    ...headers,
    ...(body ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
  };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;
}

/** An answer as sent: the status, the header lines in order (Date left out, `mask` applied), the body. */
export interface SentAnswer {
  readonly status: number;
  readonly head: string[];
  readonly body: Buffer;
}

/**
 * One request on its own connection (`Connection: close`), read to the end:
 * for comparing two doors' answers line for line. `Host` is the URL's unless
 * `headers` names one; `mask` rewrites header lines whose value differs on
 * every answer (a request id) into their form.
 */
export function exchangeLines(
  url: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  mask: (line: string) => string = (l) => l,
): Promise<SentAnswer> {
  const u = new URL(url);
  const hasHost = Object.keys(headers).some((k) => k.toLowerCase() === 'host');
  const lines = [
    `${method} ${target} HTTP/1.1`,
    ...(hasHost ? [] : [`Host: ${u.host}`]),
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(u.port), u.hostname, () =>
      s.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`),
    );
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, end).toString('latin1').split('\r\n');
      resolve({
        status: Number(head[0]!.split(' ')[1]),
        head: head.filter((l) => !/^date:/i.test(l)).map(mask),
        body: all.subarray(end + 4),
      });
    });
  });
}
