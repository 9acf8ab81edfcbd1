/**
 * What is particular to the native RESP door (resp.door: native;
 * addon/src/resp/door.h). Every other RESP suite runs on it too (vitest.config.ts,
 * project 'resp-native-door'); this file checks the door against the
 * JavaScript door directly, and the bounds its I/O threads hold:
 * - the same byte streams (commands, pipelines, protocol errors) get the
 *   same reply bytes from both doors;
 * - commands read ahead of JavaScript are bounded (the rest waits in the
 *   kernel) and a long pipeline is still answered whole and in order;
 * - a stranger's commands are parsed one at a time, so the command after a
 *   pipelined AUTH gets the authenticated limits, as on the JavaScript door;
 * - several threads share the connections, and every counter (connections,
 *   commands in flight, pinned buffers, queued bytes) returns to zero.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../harness/until.js';
import { type Harness, startHarness } from './harness.js';
import { exchange, open } from './raw.js';

const TOKEN = 'native-door-token-0123456789';
const objects = {
  'm/small.bin': randomBytes(300),
  'm/chunks.bin': randomBytes(200_000), // crosses chunk boundaries (64 KiB chunks)
  'm/empty.bin': Buffer.alloc(0),
};

async function seeded(
  door: 'js' | 'native',
  extra: Parameters<typeof startHarness>[0] = {},
): Promise<Harness> {
  const h = await startHarness({ door, ...extra });
  for (const [name, bytes] of Object.entries(objects)) await h.put(name, bytes);
  return h;
}

const bulk = (s: string | Buffer) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
};
const mb = (...args: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.map(bulk)]);

describe('native RESP door', () => {
  let js: Harness;
  let native: Harness;
  beforeAll(async () => {
    js = await seeded('js');
    native = await seeded('native');
  });
  afterAll(async () => {
    await js?.close();
    await native?.close();
  });

  it('answers the same byte streams with the same bytes as the JavaScript door', async () => {
    const key = fc.constantFrom('m/small.bin', 'm/chunks.bin', 'm/empty.bin', 'm/missing', '../x');
    const offset = fc.integer({ min: -250_000, max: 250_000 }).map(String);
    const command = fc.oneof(
      fc.constant(mb('PING')),
      fc.constant(Buffer.from('PING\r\n')),
      fc.string({ maxLength: 20 }).map((s) => mb('ECHO', s)),
      key.map((k) => mb('GET', k)),
      fc.tuple(key, offset, offset).map(([k, a, b]) => mb('GETRANGE', k, a, b)),
      key.map((k) => mb('STRLEN', k)),
      fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => mb('EXISTS', ...ks)),
      fc.array(key, { minLength: 1, maxLength: 3 }).map((ks) => mb('MGET', ...ks)),
      fc.constant(mb('SET', 'a', 'b')),
      fc.constant(mb('GET')),
      fc.string({ minLength: 1, maxLength: 8 }).map((s) => mb(`NOPE${s}`, 'x')),
    );
    const ending = fc.constantFrom(
      mb('QUIT'),
      Buffer.from('*1\r\n$-5\r\n'),
      Buffer.from('*1\r\n:1\r\n'),
      Buffer.from('GET "unbalanced\r\n'),
      Buffer.from('*5000\r\n'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { minLength: 1, maxLength: 30 }),
        ending,
        fc.array(fc.nat(), { maxLength: 4 }),
        async (cmds, end, cuts) => {
          const wire = Buffer.concat([...cmds, end]);
          const at = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const parts = [...at, wire.length].map((p, i, all) => wire.subarray(i === 0 ? 0 : all[i - 1]!, p));
          const [a, b] = await Promise.all([exchange(js.port, parts), exchange(native.port, parts)]);
          expect(a.closed && b.closed).toBe(true);
          expect(b.data.toString('latin1')).toBe(a.data.toString('latin1'));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reads a long pipeline only as fast as JavaScript answers it, and answers it whole and in order', async () => {
    const c = await open(native.port);
    c.sock.pause(); // read nothing until the whole pipeline is sent
    const n = 20_000;
    c.sock.write(Buffer.concat(Array.from({ length: n }, (_, i) => mb('ECHO', String(i)))));
    await until(() => native.server.native!.stats().pausedReads > 0);
    expect(native.server.native!.stats().inFlight).toBeLessThanOrEqual(1024);
    c.sock.resume();
    let got = '';
    const want = Array.from({ length: n }, (_, i) => `$${String(i).length}\r\n${i}\r\n`).join('');
    while (got.length < want.length) got += await c.read(1);
    expect(got).toBe(want);
    c.sock.destroy();
  });

  it('reads a stranger one command at a time: the command after a pipelined AUTH has the authenticated limits', async () => {
    const h = await seeded('native', { tokens: new Set([TOKEN]) });
    try {
      const big = 'x'.repeat(20_000); // past the 16 KiB bulk limit before AUTH
      const r = await exchange(h.port, [Buffer.concat([mb('AUTH', TOKEN), mb('ECHO', big), mb('QUIT')])]);
      expect(r.data.toString()).toBe(`+OK\r\n$${big.length}\r\n${big}\r\n+OK\r\n`);
      // Without AUTH first, the same bulk is refused with the pre-auth limit, as on the JavaScript door.
      const s = await exchange(h.port, [mb('ECHO', big)]);
      expect(s.data.toString()).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
    } finally {
      await h.close();
    }
  });

  it('spreads connections over its threads, and every counter returns to zero', async () => {
    const h = await seeded('native', { threads: 2 });
    try {
      const clients = Array.from({ length: 24 }, () => new Redis({ port: h.port, host: '127.0.0.1' }));
      await Promise.all(
        clients.map(async (r) => {
          for (let i = 0; i < 5; i++) {
            const v = await r.getrangeBuffer('m/chunks.bin', 1000 * i, 150_000);
            expect(v.equals(objects['m/chunks.bin'].subarray(1000 * i, 150_001))).toBe(true);
          }
        }),
      );
      const s = h.server.native!.stats();
      expect(s.connectionsAccepted).toBeGreaterThanOrEqual(24);
      expect(s.commands).toBeGreaterThanOrEqual(24 * 5);
      for (const r of clients) r.disconnect();
      // The threads' close events reach JavaScript a moment after their own counters drop.
      await until(() => {
        const t = h.server.native!.stats();
        const native =
          t.connectionsOpen === 0 && t.inFlight === 0 && t.pinnedBuffers === 0 && t.bufferedBytes === 0;
        return native && h.server.connections() === 0;
      });
      expect(h.server.connections()).toBe(0);
    } finally {
      await h.close();
    }
  });
});
