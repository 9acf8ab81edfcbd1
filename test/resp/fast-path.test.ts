/**
 * The native RESP door's fast path (docs/resp.md, "The fast path";
 * addon/src/resp/fastpath.h): GET, GETRANGE, STRLEN, EXISTS and MGET
 * answered on the I/O thread from the native DRAM store and the lease
 * table's version bindings, against a real fs origin:
 * - random streams of those commands (and others between them, RESP2 and
 *   RESP3) get the JavaScript door's bytes exactly, and the thread's counter
 *   shows most of them never reached JavaScript;
 * - a token outside the container gets JavaScript's exact error, a token
 *   inside it is answered on the thread;
 * - an invalidation followed at once by a GETRANGE returns the new version;
 * - a client that leaves in the middle of pipelined replies leaves no chunk
 *   reference behind.
 * Also run under ASan+UBSan (scripts/native-checks.mjs).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenSet } from '../../src/auth/tokens.js';
import type { NativeRespDoorStats } from '../../src/resp/native-binding.js';
import { sumMetric } from '../harness/node-process.js';
import { until } from '../harness/until.js';
import { type Harness, type HarnessOptions, startHarness } from './harness.js';
import { exchange, open } from './raw.js';

const MAX_GET = 150_000;
const objects: Record<string, Buffer> = {
  'm/small.bin': randomBytes(300),
  'm/chunks.bin': randomBytes(200_000), // four 64 KiB chunks, over the GET limit below
  'm/mid.bin': randomBytes(100_000), // two chunks, a GET the fast path answers
  'm/empty.bin': Buffer.alloc(0),
  'other/x.bin': randomBytes(1000),
};
const opts: HarnessOptions = { leaseTermMs: 60_000, limits: { maxGetBytes: MAX_GET } };

const bulk = (s: string | Buffer) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
};
const mb = (...args: (string | Buffer)[]) =>
  Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.map(bulk)]);

async function seeded(door: 'js' | 'native', extra: HarnessOptions = {}): Promise<Harness> {
  const h = await startHarness({ ...opts, door, ...extra });
  for (const [name, bytes] of Object.entries(objects)) await h.put(name, bytes);
  return h;
}

/** Reads every object once through JavaScript: bindings published, chunks in DRAM. */
async function warm(h: Harness, names = Object.keys(objects)): Promise<void> {
  const wire = Buffer.concat([...names.map((n) => mb('GETRANGE', n, '0', '-1')), mb('QUIT')]);
  const r = await exchange(h.port, [wire]);
  expect(r.closed).toBe(true);
}

const stats = (h: Harness): NativeRespDoorStats => h.server.native!.stats();

type RedisParserCtor = new (o: {
  returnReply: (r: unknown) => void;
  returnError: (e: Error) => void;
  returnBuffers?: boolean;
}) => { execute(b: Buffer): void };
const RedisParser = createRequire(import.meta.url)('redis-parser') as RedisParserCtor;

/**
 * Sends each command once the reply to the one before it arrived (RESP2 replies counted with
 * redis-parser), then QUIT; returns every byte received. A command sent while an earlier one
 * still runs in JavaScript is JavaScript's too (reply order), so this is how a client that waits
 * for its replies meets the fast path.
 */
async function lockstep(port: number, cmds: Buffer[]): Promise<Buffer> {
  const sock = connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  let replies = 0;
  let wake: (() => void) | null = null;
  const parser = new RedisParser({
    returnReply: () => replies++,
    returnError: () => replies++,
    returnBuffers: true,
  });
  sock.on('data', (d: Buffer) => {
    got.push(d);
    parser.execute(d);
    wake?.();
  });
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  for (const [i, c] of [...cmds, mb('QUIT')].entries()) {
    sock.write(c);
    while (replies <= i) await new Promise<void>((resolve) => (wake = resolve));
  }
  await closed;
  return Buffer.concat(got);
}

describe('native RESP door fast path', () => {
  let js: Harness;
  let native: Harness;
  beforeAll(async () => {
    js = await seeded('js');
    native = await seeded('native', { fast: true });
    // Both doors see the same connections before the streams (HELLO's reply carries the client id).
    await Promise.all([warm(js), warm(native)]);
  });
  afterAll(async () => {
    await js?.close();
    await native?.close();
  });

  it('answers random GET/GETRANGE/STRLEN/EXISTS/MGET streams with the JavaScript door bytes, most on the I/O thread', async () => {
    const key = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('m/small.bin', 'm/mid.bin', 'm/chunks.bin') },
      { weight: 1, arbitrary: fc.constantFrom('m/empty.bin', 'm/missing', 'nokey', 'other/x.bin') },
    );
    const index = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: -120_000, max: 120_000 }).map(String) },
      { weight: 4, arbitrary: fc.integer({ min: -400, max: 400 }).map(String) },
      { weight: 1, arbitrary: fc.integer({ min: -250_000, max: 250_000 }).map(String) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '0',
          '-1',
          '-0',
          '01',
          '+1',
          'x',
          '9007199254740993',
          '-999999999999999999',
        ),
      },
    );
    const fastOne = fc.oneof(
      key.map((k) => mb('GET', k)),
      fc.tuple(key, index, index).map(([k, a, b]) => mb('GETRANGE', k, a, b)),
      fc.tuple(key, index, index).map(([k, a, b]) => mb('getrange', k, a, b)),
      key.map((k) => mb('STRLEN', k)),
      key.map((k) => mb('exists', k)),
      fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => mb('MGET', ...ks)),
      fc.array(key, { minLength: 2, maxLength: 3 }).map((ks) => mb('EXISTS', ...ks)),
    );
    const command = fc.oneof(
      { weight: 8, arbitrary: fastOne },
      { weight: 1, arbitrary: fc.constantFrom(mb('MGET'), mb('mget', 'm/small.bin', 'nokey')) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          mb('PING'),
          mb('GET'),
          mb('GETRANGE', 'm/small.bin', '1'),
          mb('ECHO', 'e'),
        ),
      },
    );
    const before = stats(native);
    let sent = 0;
    // A client that waits for each reply: hits are answered on the thread.
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 40 }), async (cmds) => {
        sent += cmds.length;
        const [a, b] = await Promise.all([lockstep(js.port, cmds), lockstep(native.port, cmds)]);
        expect(b.toString('latin1')).toBe(a.toString('latin1'));
      }),
      { numRuns: 40 },
    );
    const after = stats(native);
    // Most commands are fast-path hits by construction (present keys, plain names, in DRAM).
    expect(after.fastHits! - before.fastHits!).toBeGreaterThan(sent / 2);
    // Hits answered on the thread count in the same metrics as every other reply (added at scrape).
    await native.metrics.servedBytes.get();
    const ok = (await native.metrics.requests.get()).values.find(
      (v) => v.labels.protocol === 'resp' && v.labels.result === 'ok',
    );
    expect(ok?.value ?? 0).toBeGreaterThanOrEqual(after.fastHits!);
    // Pipelined, RESP2 and RESP3, cut anywhere: a hit after a command still running in JavaScript
    // goes there too, and the bytes are the same either way.
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        async (resp3, cmds, cuts) => {
          const wire = Buffer.concat([...(resp3 ? [mb('HELLO', '3')] : []), ...cmds, mb('QUIT')]);
          const at = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const parts = [...at, wire.length].map((p, i, all) => wire.subarray(i === 0 ? 0 : all[i - 1]!, p));
          const [a, b] = await Promise.all([exchange(js.port, parts), exchange(native.port, parts)]);
          expect(a.closed && b.closed).toBe(true);
          expect(b.data.toString('latin1')).toBe(a.data.toString('latin1'));
        },
      ),
      { numRuns: 40 },
    );
    await until(() => stats(native).fastChunkRefs === 0 && stats(native).inFlight === 0);
  });

  it('answers an MGET of hits on the thread as one array, chunk slices and copies alike', async () => {
    // Their bindings live one lease term from their last resolution, which may have been in
    // beforeAll, and the test before takes most of a term under ASan: bind both afresh, so the MGET
    // below finds them bound rather than one of them running out just then.
    await Promise.all(['small.bin', 'mid.bin'].map((key) => native.leases.refresh({ container: 'm', key })));
    const cmd = mb('MGET', 'm/small.bin', 'm/mid.bin', 'm/small.bin');
    const before = stats(native).fastHits!;
    const [a, b] = await Promise.all([lockstep(js.port, [cmd]), lockstep(native.port, [cmd])]);
    const small = bulk(objects['m/small.bin']!);
    const want = Buffer.concat([Buffer.from('*3\r\n'), small, bulk(objects['m/mid.bin']!), small]);
    expect(b.subarray(0, want.length).equals(want)).toBe(true);
    expect(b.equals(a)).toBe(true);
    expect(stats(native).fastHits! - before).toBe(1);
    // One key missing: the whole MGET is JavaScript's (nil for that key), bytes still the same.
    const miss = mb('MGET', 'm/small.bin', 'm/missing');
    const [c, d] = await Promise.all([lockstep(js.port, [miss]), lockstep(native.port, [miss])]);
    expect(d.toString('latin1')).toBe(c.toString('latin1'));
    expect(d.toString('latin1').startsWith(`*2\r\n${small.toString('latin1')}$-1\r\n`)).toBe(true);
    await until(() => stats(native).fastChunkRefs === 0);
  });

  it('pipelines replies answered on the thread and by JavaScript in the order asked', async () => {
    const c = await open(native.port);
    const n = 2000;
    const cmds: Buffer[] = [];
    let want = '';
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) {
        cmds.push(mb('ECHO', String(i)));
        want += `$${String(i).length}\r\n${i}\r\n`;
      } else {
        const s = i % 250;
        cmds.push(mb('GETRANGE', 'm/small.bin', String(s), String(s + 9)));
        const v = objects['m/small.bin']!.subarray(s, s + 10);
        want += `$${v.length}\r\n${v.toString('latin1')}\r\n`;
      }
    }
    c.sock.write(Buffer.concat(cmds));
    let got = '';
    while (got.length < want.length) got += await c.read(1);
    expect(got).toBe(want);
    c.sock.destroy();
  });

  it('answers a token outside the container with the JavaScript error, a token inside it on the thread', async () => {
    const tokens = TokenSet.of([
      { token: 'token-for-m-0123456789', containers: ['m'] },
      { token: 'token-for-other-0123456789', containers: ['other'] },
    ]);
    const [jsA, nativeA] = await Promise.all([
      seeded('js', { tokens }),
      seeded('native', { tokens, fast: true }),
    ]);
    try {
      // Warmed through a token that may read 'm' (a stranger reads nothing).
      await exchange(nativeA.port, [
        Buffer.concat([
          mb('AUTH', 'token-for-m-0123456789'),
          mb('GETRANGE', 'm/mid.bin', '0', '-1'),
          mb('QUIT'),
        ]),
      ]);
      const ask = [
        mb('GETRANGE', 'm/mid.bin', '0', '99'), // before AUTH: NOAUTH
        mb('AUTH', 'token-for-other-0123456789'),
        mb('GETRANGE', 'm/mid.bin', '0', '99'), // FORBIDDEN, from JavaScript
        mb('STRLEN', 'm/mid.bin'),
        mb('AUTH', 'token-for-m-0123456789'),
        mb('GETRANGE', 'm/mid.bin', '0', '99'), // allowed now
        mb('STRLEN', 'm/mid.bin'),
        mb('AUTH', 'default', 'wrong-token-0123456789'), // a failed AUTH keeps the grant
        mb('GETRANGE', 'm/mid.bin', '5', '9'),
      ];
      const before = stats(nativeA);
      const [a, b] = await Promise.all([lockstep(jsA.port, ask), lockstep(nativeA.port, ask)]);
      expect(b.toString('latin1')).toBe(a.toString('latin1'));
      expect(a.toString('latin1')).toContain('-NOPERM this token may not read container m');
      expect(a.toString('latin1')).toContain(objects['m/mid.bin']!.subarray(5, 10).toString('latin1'));
      const after = stats(nativeA);
      expect(after.fastHits! - before.fastHits!).toBeGreaterThanOrEqual(3);
      expect(after.fastUnauthorised! - before.fastUnauthorised!).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all([jsA.close(), nativeA.close()]);
    }
  });

  it('returns the new version to a GETRANGE sent at once after an invalidation', async () => {
    const name = 'm/replaced.bin';
    const v1 = randomBytes(70_000);
    await native.put(name, v1);
    await warm(native, [name]);
    const probe = mb('GETRANGE', name, '0', '-1');
    const hits = stats(native).fastHits!;
    const first = await exchange(native.port, [Buffer.concat([probe, mb('QUIT')])]);
    expect(first.data.equals(Buffer.concat([bulk(v1), Buffer.from('+OK\r\n')]))).toBe(true);
    expect(stats(native).fastHits!).toBe(hits + 1);
    for (let round = 0; round < 3; round++) {
      const next = randomBytes(71_000 + round); // another size: another version whatever the clock says
      await native.put(name, next);
      // The invalidation's step 2 drops the binding before it returns to the event loop.
      const refreshed = native.leases.refresh({ container: 'm', key: 'replaced.bin' });
      const r = await exchange(native.port, [Buffer.concat([probe, mb('QUIT')])]);
      expect(r.data.equals(Buffer.concat([bulk(next), Buffer.from('+OK\r\n')]))).toBe(true);
      await refreshed;
    }
  });

  it('counts in /metrics, by reason, the commands the thread answered and those it sent to JavaScript', async () => {
    await native.put('m/fresh.bin', randomBytes(500)); // never read: no version binding yet
    await lockstep(native.port, [
      mb('GETRANGE', 'm/fresh.bin', '0', '9'),
      mb('GETRANGE', 'm/small.bin', '0', '9'),
      mb('STRLEN', 'm/small.bin'),
    ]);
    const s = stats(native);
    expect(s.fastNoBinding).toBeGreaterThan(0);
    expect(s.fastHits).toBeGreaterThan(0);
    const text = await native.metrics.registry.metrics();
    const reasons = {
      hit: s.fastHits,
      no_binding: s.fastNoBinding,
      miss: s.fastMisses,
      unauthorised: s.fastUnauthorised,
      busy: s.fastBusy,
      other: s.fastOther,
    };
    for (const [result, v] of Object.entries(reasons)) {
      expect({ result, n: sumMetric(text, 'weightcache_resp_fastpath_commands_total', { result }) }).toEqual({
        result,
        n: v ?? 0,
      });
    }
  });

  it('drops every chunk reference when a client leaves in the middle of its replies', async () => {
    const name = 'm/large.bin';
    await native.put(name, randomBytes(4 * 2 ** 20)); // 64 chunks: the most one fast reply covers
    // Read through JavaScript in pieces within the GET limit, so every chunk is in DRAM.
    const pieces: Buffer[] = [];
    for (let at = 0; at < 4 * 2 ** 20; at += MAX_GET)
      pieces.push(mb('GETRANGE', name, String(at), String(at + MAX_GET - 1)));
    await exchange(native.port, [Buffer.concat([...pieces, mb('QUIT')])]);
    const c = await open(native.port);
    c.sock.pause(); // reads nothing: replies pile up on the thread
    const before = stats(native).fastHits!;
    c.sock.write(
      Buffer.concat(
        Array.from({ length: 200 }, (_, i) =>
          mb('GETRANGE', name, String(i * 1000), String(i * 1000 + MAX_GET - 1)),
        ),
      ),
    );
    await until(() => stats(native).fastHits! > before && stats(native).fastChunkRefs! > 0, {
      timeoutMs: 10_000,
    }).catch((err) => {
      throw new Error(`${JSON.stringify(stats(native))}: ${err}`);
    });
    // Bounded: the thread stops reading once a few replies are queued for a client that reads nothing.
    await new Promise((r) => setTimeout(r, 100));
    expect(stats(native).fastHits! - before).toBeLessThan(200);
    c.sock.destroy();
    await until(
      () => {
        const s = stats(native);
        return s.fastChunkRefs === 0 && s.bufferedBytes === 0 && s.connectionsOpen === 0;
      },
      { timeoutMs: 10_000 },
    ).catch((err) => {
      throw new Error(`${JSON.stringify(stats(native))}: ${err}`);
    });
  });
});
