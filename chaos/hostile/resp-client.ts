/**
 * The smallest honest RESP client: one new connection per read (so a full
 * connection table shows), AUTH, GETRANGE, QUIT, with a deadline. Replies are
 * parsed only as far as this sequence needs: simple strings, errors, one bulk.
 */
import { connect } from 'node:net';

export interface RespRead {
  readonly ok: boolean;
  readonly ms: number;
  readonly bytes?: Buffer;
  readonly error?: string;
}

export function respGetRange(
  port: number,
  localAddress: string,
  token: string,
  key: string,
  start: number,
  end: number,
  timeoutMs: number,
): Promise<RespRead> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r: Omit<RespRead, 'ms'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    s.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
    s.on('close', () => finish({ ok: false, error: 'closed' }));
    s.once('connect', () => {
      const cmd = (...args: string[]) =>
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
      s.write(cmd('AUTH', token) + cmd('GETRANGE', key, String(start), String(end)) + cmd('QUIT'));
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // +OK\r\n  then  $n\r\n<n bytes>\r\n
      const first = buf.indexOf('\r\n');
      if (first < 0) return;
      const auth = buf.subarray(0, first).toString('latin1');
      if (!auth.startsWith('+OK')) return finish({ ok: false, error: auth.slice(0, 80) });
      const second = buf.indexOf('\r\n', first + 2);
      if (second < 0) return;
      const head = buf.subarray(first + 2, second).toString('latin1');
      if (!head.startsWith('$')) return finish({ ok: false, error: head.slice(0, 80) });
      const n = Number(head.slice(1));
      if (buf.length < second + 2 + n + 2) return;
      finish({ ok: true, bytes: buf.subarray(second + 2, second + 2 + n) });
    });
  });
}
