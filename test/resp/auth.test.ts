/**
 * auth.tcl-style: with tokens configured, nothing but AUTH/HELLO/QUIT runs
 * before AUTH, and pre-auth frames are limited to 10 arguments and 16 KiB
 * bulks (Redis 7), so an unauthenticated client cannot make us buffer much.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';
import { exchange } from './raw.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ tokens: new Set(['s3cret']), seed: { 'c/k': 3 } });
});
afterAll(() => h?.close());

describe('AUTH', () => {
  it('refuses commands before AUTH and wrong passwords', async () => {
    const r = await exchange(h.port, ['GET c/k\r\n', 'AUTH wrong\r\n', 'AUTH default wrong\r\n', 'QUIT\r\n']);
    expect(r.data.toString()).toBe(
      '-NOAUTH Authentication required.\r\n' +
        '-WRONGPASS invalid username-password pair or user is disabled.\r\n' +
        '-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n',
    );
  });

  it('accepts AUTH password and AUTH default password', async () => {
    const r = await exchange(h.port, [
      'AUTH s3cret\r\n',
      'STRLEN c/k\r\n',
      'AUTH default s3cret\r\n',
      'QUIT\r\n',
    ]);
    expect(r.data.toString()).toBe('+OK\r\n:3\r\n+OK\r\n+OK\r\n');
  });

  it('HELLO without AUTH is refused; HELLO 3 AUTH authenticates', async () => {
    const r = await exchange(h.port, [
      'HELLO 3\r\n',
      'HELLO 3 AUTH default s3cret\r\n',
      'GET c/k\r\n',
      'QUIT\r\n',
    ]);
    const text = r.data.toString('latin1');
    expect(text).toMatch(/^-NOAUTH HELLO must be called with the client already authenticated/);
    expect(text).toContain('%7\r\n');
    expect(text).toContain(`$3\r\n${h.objects.get('c/k')!.toString('latin1')}\r\n+OK\r\n`);
  });

  it('ioredis authenticates through HELLO 3 AUTH', async () => {
    const r = new Redis({ port: h.port, host: '127.0.0.1', password: 's3cret', lazyConnect: true });
    r.on('error', () => {});
    try {
      await r.connect();
      expect((await r.getBuffer('c/k'))?.equals(h.objects.get('c/k')!)).toBe(true);
    } finally {
      r.disconnect();
    }
  });

  it('limits multibulk and bulk lengths for unauthenticated clients', async () => {
    const a = await exchange(h.port, ['*100\r\n']);
    expect(a.data.toString()).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n');
    expect(a.closed).toBe(true);
    const b = await exchange(h.port, ['*1\r\n$100000000\r\n']);
    expect(b.data.toString()).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
    expect(b.closed).toBe(true);
    const c = await exchange(h.port, [`ECHO ${'a '.repeat(20)}\r\n`]);
    expect(c.data.toString()).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n');
    // Once authenticated, the same frames are ordinary.
    const d = await exchange(h.port, [
      'AUTH s3cret\r\n',
      '*2\r\n$4\r\nECHO\r\n$20000\r\n',
      'x'.repeat(20000),
      '\r\nQUIT\r\n',
    ]);
    expect(d.data.toString()).toBe(`+OK\r\n$20000\r\n${'x'.repeat(20000)}\r\n+OK\r\n`);
  });
});
