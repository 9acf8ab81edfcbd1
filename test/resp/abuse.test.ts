/**
 * The abuse corpus, after Redis's tests/unit/protocol.tcl and auth.tcl: every
 * framing error and broken limit is answered `-ERR Protocol error: ...` and
 * the connection closed; the server keeps serving everyone else.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../harness/until.js';
import { type Harness, startHarness } from './harness.js';
import { exchange, open } from './raw.js';

let h: Harness;
const QBUF = 1024 * 1024;

beforeAll(async () => {
  h = await startHarness({
    seed: { 'm/a.bin': 1000 },
    limits: { maxQueryBufferBytes: QBUF, maxArgs: 4096, maxClients: 64 },
  });
});
afterAll(() => h?.close());

async function expectProtocolError(parts: Array<Buffer | string>, fragment: string) {
  const r = await exchange(h.port, parts);
  expect(r.data.toString('latin1')).toContain(`-ERR Protocol error: ${fragment}`);
  expect(r.closed).toBe(true);
}

async function stillServes() {
  const r = await exchange(h.port, ['PING\r\n', 'QUIT\r\n']);
  expect(r.data.toString()).toBe('+PONG\r\n+OK\r\n');
}

describe('protocol.tcl corpus', () => {
  it('skips an empty query and a negative multibulk length', async () => {
    const r = await exchange(h.port, ['\r\n', '*-10\r\n', '*0\r\n', 'PING\r\n', 'QUIT\r\n']);
    expect(r.data.toString()).toBe('+PONG\r\n+OK\r\n');
  });

  it('refuses out-of-range, negative and non-numeric lengths', async () => {
    await expectProtocolError(['*3000000000\r\n'], 'invalid multibulk length');
    await expectProtocolError(['*4294967296\r\n'], 'invalid multibulk length');
    await expectProtocolError(['*blabla\r\n'], 'invalid multibulk length');
    await expectProtocolError(['*3\r\n$3\r\nGET\r\n$1\r\nx\r\n$-10\r\n'], 'invalid bulk length');
    await expectProtocolError(['*3\r\n$3\r\nGET\r\n$1\r\nx\r\n$2000000000\r\n'], 'invalid bulk length');
    await expectProtocolError(['*3\r\n$3\r\nGET\r\n$1\r\nx\r\n$blabla\r\n'], 'invalid bulk length');
    await expectProtocolError(['*1\r\n$1x\r\n'], 'invalid bulk length');
    await expectProtocolError(['*1\n'], 'invalid multibulk length');
  });

  it('refuses a multibulk whose arguments are not bulk strings (nesting, RESP3 types, junk)', async () => {
    await expectProtocolError(['*3\r\n$3\r\nGET\r\n$1\r\nx\r\nfooz\r\n'], "expected '$', got 'f'");
    await expectProtocolError(['*1\r\nfoo\r\n'], "expected '$', got 'f'");
    await expectProtocolError(['*1\r\n*1\r\n$4\r\nPING\r\n'], "expected '$', got '*'");
    await expectProtocolError(['*1\r\n%1\r\n'], "expected '$', got '%'");
    await expectProtocolError(['*1\r\n\x00'], "expected '$', got '\\x00'");
    // 10,000 nested arrays overflow redis-parser's stack; here the second header is already refused.
    await expectProtocolError(['*1\r\n'.repeat(10_000)], "expected '$', got '*'");
  });

  it('requires CRLF after a bulk string', async () => {
    await expectProtocolError(['*1\r\n$4\r\nPINGxx'], 'expected CRLF after bulk string');
  });

  it('answers a wrong argument count without closing', async () => {
    const r = await exchange(h.port, ['ping x y z\r\n', 'QUIT\r\n']);
    expect(r.data.toString()).toBe("-ERR wrong number of arguments for 'ping' command\r\n+OK\r\n");
  });

  it('refuses unbalanced quotes in inline commands', async () => {
    await expectProtocolError(['set """test-key""" test-value\r\nping\r\n'], 'unbalanced quotes in request');
    await expectProtocolError(['GET "m/a.bin\r\n'], 'unbalanced quotes in request');
    await expectProtocolError(["GET 'm/a.bin\r\n"], 'unbalanced quotes in request');
    await expectProtocolError(['GET "m/a"b\r\n'], 'unbalanced quotes in request');
  });

  it('parses inline quoting as Redis does', async () => {
    const r = await exchange(h.port, [
      'ECHO "a\\x41\\n b"\r\n',
      "ECHO 'it\\'s'\r\n",
      'STRLEN "m/a.bin"\r\n',
      'QUIT\r\n',
    ]);
    expect(r.data.toString()).toBe("$5\r\naA\n b\r\n$4\r\nit's\r\n:1000\r\n+OK\r\n");
  });

  it('refuses inline requests and header lines past 64 KiB (protocol desync regression)', async () => {
    const junk = Buffer.alloc(80 * 1024, 'A');
    await expectProtocolError(['\x00', junk], 'too big inline request');
    await expectProtocolError(['*\x00', junk], 'too big mbulk count string');
    await expectProtocolError(['*1\r\n$\x00', junk], 'too big bulk count string');
    await expectProtocolError(['$\x00', junk], 'too big inline request');
  });

  it('bounds one command by the query buffer: a huge announced bulk is cut off', async () => {
    const piece = Buffer.alloc(256 * 1024, 'x');
    const parts: Array<Buffer | string> = ['*2\r\n$4\r\nECHO\r\n$500000000\r\n'];
    for (let i = 0; i < 5; i++) parts.push(piece); // 1.25 MiB > the 1 MiB query buffer
    await expectProtocolError(parts, 'query buffer limit reached');
  });

  it('bounds one command by the query buffer across arguments: many big bulks add up', async () => {
    const arg = `$100000\r\n${'y'.repeat(100_000)}\r\n`;
    const parts: string[] = ['*20\r\n$6\r\nEXISTS\r\n'];
    for (let i = 0; i < 19; i++) parts.push(arg); // 1.9 MB in 100 KB pieces > the 1 MiB query buffer
    await expectProtocolError(parts, 'query buffer limit reached');
  });

  it('limits arguments per command (20,000 args)', async () => {
    const args = ['*20000\r\n$6\r\nEXISTS\r\n'];
    for (let i = 1; i < 20000; i++) args.push('$5\r\nm/a.b\r\n');
    await expectProtocolError(
      [args.join('')],
      'invalid multibulk length (20000 arguments; the limit is 4096)',
    );
    const inline = `EXISTS ${'m/a.bin '.repeat(5000)}\r\n`;
    await expectProtocolError([inline], 'too many arguments (5001; the limit is 4096)');
    // At the limit, it is a command like any other.
    const ok = ['*4096\r\n$6\r\nEXISTS\r\n'];
    for (let i = 1; i < 4096; i++) ok.push('$7\r\nm/a.bin\r\n');
    const r = await exchange(h.port, [ok.join(''), 'QUIT\r\n']);
    expect(r.data.toString()).toBe(':4095\r\n+OK\r\n');
  });

  it('treats a RESP3 type byte at command start as an inline command, as Redis does', async () => {
    const r = await exchange(h.port, ['%1\r\n', 'QUIT\r\n']);
    expect(r.data.toString()).toBe("-ERR unknown command '%1', with args beginning with: \r\n+OK\r\n");
  });

  it('survives random garbage (fuzzed): each connection gets replies or a protocol error, never a hang', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.constantFrom(
              new Uint8Array(Buffer.from('*2\r\n$3\r\nGET\r\n')),
              new Uint8Array(Buffer.from('$-1\r\n')),
              new Uint8Array(Buffer.from('"\'\\x')),
              new Uint8Array(Buffer.from('*99999999999999999999\r\n')),
            ),
          ),
          { maxLength: 6 },
        ),
        async (pieces) => {
          const r = await exchange(h.port, [...pieces.map((p) => Buffer.from(p)), '\r\nQUIT\r\n'], 3000);
          const text = r.data.toString('latin1');
          // Either QUIT was reached (+OK last) or the connection was closed after a protocol error.
          expect(r.closed).toBe(true);
          expect(text.endsWith('+OK\r\n') || /-ERR Protocol error: [^\r\n]*\r\n$/.test(text)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    await stillServes();
  });

  it('keeps serving other clients while hostile ones are cut off', async () => {
    const hostile = Array.from({ length: 8 }, () =>
      exchange(h.port, ['*1\r\n$99999\r\n', Buffer.alloc(64 * 1024)], 2000),
    );
    const good = await open(h.port);
    good.sock.write('*2\r\n$6\r\nSTRLEN\r\n$7\r\nm/a.bin\r\n');
    expect(await good.read(7)).toBe(':1000\r\n');
    good.sock.destroy();
    await Promise.all(hostile);
    await stillServes();
    const errors = await h.metrics.registry.getSingleMetricAsString('weightcache_resp_protocol_errors_total');
    expect(errors).toContain('reason="unbalanced_quotes"');
  });
});

describe('connection limits', () => {
  it('refuses connections past maxClients with Redis wording', async () => {
    const small = await startHarness({ limits: { maxClients: 2 } });
    try {
      const a = await open(small.port);
      const b = await open(small.port);
      a.sock.write('PING\r\n');
      b.sock.write('PING\r\n');
      expect(await a.read(7)).toBe('+PONG\r\n');
      expect(await b.read(7)).toBe('+PONG\r\n');
      const r = await exchange(small.port, ['PING\r\n']);
      expect(r.data.toString()).toBe('-ERR max number of clients reached\r\n');
      expect(r.closed).toBe(true);
      a.sock.destroy();
      b.sock.destroy();
    } finally {
      await small.close();
    }
  });

  it('closes idle connections', async () => {
    const small = await startHarness({ limits: { idleTimeoutMs: 200 } });
    try {
      const r = await exchange(small.port, ['PING\r\n'], 10_000);
      expect(r.data.toString()).toBe('+PONG\r\n');
      expect(r.closed).toBe(true);
    } finally {
      await small.close();
    }
  });
});

describe('input backpressure', () => {
  it('pauses a client that pipelines past the query buffer instead of cutting it off, and answers all in order', async () => {
    const small = await startHarness({
      seed: { 'm/a.bin': 1000 },
      limits: { maxQueryBufferBytes: 64 * 1024 },
    });
    try {
      // 60,000 commands (~2.5 MiB) sent at once: far past the 64 KiB query buffer, each one small.
      const n = 60_000;
      const cmds: string[] = [];
      for (let i = 0; i < n; i++)
        cmds.push(i % 2 ? `*2\r\n$4\r\nECHO\r\n$${String(i).length}\r\n${i}\r\n` : 'STRLEN m/a.bin\r\n');
      const r = await exchange(small.port, [cmds.join(''), 'QUIT\r\n'], 30_000);
      const want: string[] = [];
      for (let i = 0; i < n; i++) want.push(i % 2 ? `$${String(i).length}\r\n${i}\r\n` : ':1000\r\n');
      expect(r.data.toString()).toBe(`${want.join('')}+OK\r\n`);
    } finally {
      await small.close();
    }
  });
});

describe('stalled readers', () => {
  it('closes a connection whose client stopped reading its replies, after the idle timeout', async () => {
    const small = await startHarness({
      seed: { 'm/big.bin': 4 * 1024 * 1024 },
      limits: { idleTimeoutMs: 300 },
    });
    try {
      const c = await open(small.port);
      c.sock.pause(); // never reads: the server's writes back up
      let cmds = '';
      for (let i = 0; i < 64; i++) cmds += `GETRANGE m/big.bin 0 ${4 * 1024 * 1024 - 1}\r\n`;
      c.sock.write(cmds);
      // Registered first (the native door tells JavaScript of a connection from its I/O thread).
      await until(() => small.server.connections() > 0);
      while (small.server.connections() > 0) await new Promise((r) => setTimeout(r, 50));
      const cut = await small.metrics.registry.getSingleMetricAsString(
        'weightcache_resp_rejected_connections_total',
      );
      expect(cut).toContain('reason="stalled_reader"');
      c.sock.destroy();
    } finally {
      await small.close();
    }
  });
});
