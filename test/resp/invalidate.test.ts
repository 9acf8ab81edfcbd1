/**
 * WC.INVALIDATE over RESP (issue #6), against a real RESP server whose
 * coherence layer is a recording seam (harness.ts invalidationSeam): the key
 * and PREFIX forms, what is refused (pinned keys, bad arity, traversal,
 * non-admin tokens), a rejected invalidation as an error reply, RESP2 and
 * RESP3 replies, a server without invalidation, pipelines keeping order while
 * the command blocks, and the wait abandoned when the client goes away —
 * with ioredis, redis-cli and raw bytes.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenSet } from '../../src/auth/tokens.js';
import type { InvalidationResult } from '../../src/coherence/invalidation.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { formatName } from '../../src/origin/names.js';
import { type Harness, type InvalidationCall, invalidationSeam, startHarness } from './harness.js';
import { exchange, open, shouldRun } from './raw.js';

const READER = 'reader-token-0123456789';
const ADMIN = 'admin-token-0123456789';
const ETAG = '"0x8DC0FFEE"';
const MODIFIED = '2026-11-24T06:00:00.000Z';

function answer({ target }: InvalidationCall): InvalidationResult {
  if ('prefix' in target) {
    return {
      container: target.container,
      prefix: target.prefix,
      names: 3,
      acked: 4,
      expired: 1,
      durationMs: 41.6,
    };
  }
  const name = formatName(target);
  if (name === 'fail/origin')
    throw new CacheError('ORIGIN_UNAVAILABLE', 'the origin did not answer the re-resolve');
  if (name === 'fail/busy') throw new CacheError('OVERLOADED', 'too many invalidations in flight');
  const version = target.container === 'gone' ? null : { etag: ETAG, size: 1234, lastModified: MODIFIED };
  return {
    container: target.container,
    key: target.key,
    version,
    names: 1,
    acked: 2,
    expired: 1,
    durationMs: 12.4,
  };
}

const seam = invalidationSeam(answer);
const authSeam = invalidationSeam(answer);
let h: Harness;
let bare: Harness;
let authed: Harness;
const clients: Redis[] = [];

function client(port: number, opts: { protocol?: 2 | 3; password?: string } = {}): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, ...opts });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

beforeAll(async () => {
  h = await startHarness({ seed: { 'models/a.bin': 100, 'models/b.bin': 200 }, invalidate: seam.invalidate });
  bare = await startHarness({ seed: { 'models/a.bin': 10 } });
  authed = await startHarness({
    seed: { 'models/a.bin': 10 },
    tokens: TokenSet.of([{ token: READER }, { token: ADMIN, admin: true }]),
    invalidate: authSeam.invalidate,
  });
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([h?.close(), bare?.close(), authed?.close()]);
});

const field = (a: unknown[], k: string) => a[a.indexOf(k) + 1];

describe('WC.INVALIDATE with ioredis (RESP2)', () => {
  it('invalidates one name: the seam gets the name and source resp; the reply is field/value pairs', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const before = seam.calls.length;
    const got = (await r.call('WC.INVALIDATE', 'models/llama/config.json')) as unknown[];
    expect(got).toEqual([
      'key',
      'models/llama/config.json',
      'version',
      ETAG,
      'size',
      1234,
      'last-modified',
      MODIFIED,
      'acked',
      2,
      'expired',
      1,
      'duration-ms',
      12,
    ]);
    const call = seam.calls[before]!;
    expect(call.target).toEqual({ container: 'models', key: 'llama/config.json' });
    expect(call.source).toBe('resp');
    expect(call.signal).toBeInstanceOf(AbortSignal);
    expect(call.signal?.aborted).toBe(false);
  });

  it('answers nil version, size and last-modified when the origin no longer has the object', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const got = (await r.call('wc.invalidate', 'gone/x.bin')) as unknown[];
    expect(field(got, 'key')).toBe('gone/x.bin');
    expect(field(got, 'version')).toBeNull();
    expect(field(got, 'size')).toBeNull();
    expect(field(got, 'last-modified')).toBeNull();
    expect(field(got, 'acked')).toBe(2);
  });

  it('invalidates a prefix (PREFIX in any case, empty prefix = the whole container)', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const before = seam.calls.length;
    const got = (await r.call('WC.INVALIDATE', 'PREFIX', 'models/llama/')) as unknown[];
    expect(got).toEqual(['prefix', 'models/llama/', 'names', 3, 'acked', 4, 'expired', 1, 'duration-ms', 42]);
    await r.call('WC.INVALIDATE', 'prefix', 'models/');
    expect(seam.calls.slice(before).map((c) => c.target)).toEqual([
      { container: 'models', prefix: 'llama/' },
      { container: 'models', prefix: '' },
    ]);
  });

  it('refuses pinned keys, bad arity, bad syntax and traversal without calling the coherence layer', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const before = seam.calls.length;
    await expect(r.call('WC.INVALIDATE', `{${ETAG}}models/a.bin`)).rejects.toThrow(
      /^ERR WC.INVALIDATE names a name, not a version: drop the '\{etag\}' pin/,
    );
    await expect(r.call('WC.INVALIDATE', 'PREFIX', '{0x1}models/')).rejects.toThrow(
      'ERR WC.INVALIDATE names a name, not a version',
    );
    await expect(r.call('WC.INVALIDATE')).rejects.toThrow(
      "ERR wrong number of arguments for 'wc.invalidate' command",
    );
    await expect(r.call('WC.INVALIDATE', 'PREFIX', 'models/', 'extra')).rejects.toThrow(
      "ERR wrong number of arguments for 'wc.invalidate' command",
    );
    await expect(r.call('WC.INVALIDATE', 'KEYS', 'models/a.bin')).rejects.toThrow(
      "ERR syntax error: WC.INVALIDATE takes 'container/key' or PREFIX 'container/prefix'",
    );
    await expect(r.call('WC.INVALIDATE', 'PREFIX')).rejects.toThrow("ERR expected 'container/key'");
    await expect(r.call('WC.INVALIDATE', 'no-slash')).rejects.toThrow("ERR expected 'container/key'");
    await expect(r.call('WC.INVALIDATE', 'models/../etc/passwd')).rejects.toThrow(
      "ERR key has a '..' path segment",
    );
    await expect(r.call('WC.INVALIDATE', '../etc/passwd')).rejects.toThrow('ERR container name');
    await expect(r.call('WC.INVALIDATE', 'PREFIX', 'models/../')).rejects.toThrow(
      "ERR prefix has a '..' path segment",
    );
    await expect(r.call('WC.INVALIDATE', 'PREFIX', 'models')).rejects.toThrow(
      "ERR WC.INVALIDATE takes 'container/key' or PREFIX 'container/prefix' (the prefix may be empty)",
    );
    await expect(r.call('WC.INVALIDATE', 'models/a\\b')).rejects.toThrow('ERR key contains a backslash');
    expect(seam.calls.length).toBe(before);
  });

  it('maps a rejected invalidation to an error reply with the cache error code', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    await expect(r.call('WC.INVALIDATE', 'fail/origin')).rejects.toThrow(
      'ORIGIN_UNAVAILABLE the origin did not answer the re-resolve',
    );
    await expect(r.call('WC.INVALIDATE', 'fail/busy')).rejects.toThrow(
      'BUSY too many invalidations in flight',
    );
    expect(await r.ping()).toBe('PONG'); // the connection goes on
    const requests = await h.metrics.registry.getSingleMetricAsString('weightcache_requests_total');
    expect(requests).toMatch(/protocol="resp",result="server_error"} [1-9]/);
  });

  it('is listed by COMMAND INFO / DOCS with arity -2 and the admin flag', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const info = (await r.call('COMMAND', 'INFO', 'wc.invalidate')) as unknown[][];
    expect(info[0]?.slice(0, 3)).toEqual(['wc.invalidate', -2, ['admin']]);
    const docs = (await r.call('COMMAND', 'DOCS', 'wc.invalidate')) as unknown[];
    expect(docs[0]).toBe('wc.invalidate');
    expect(String(field(docs[1] as unknown[], 'summary'))).toContain('PREFIX');
  });
});

describe('RESP3', () => {
  it('answers a map, nulls as _', async () => {
    const r = await exchange(h.port, [
      'HELLO 3\r\n',
      'WC.INVALIDATE gone/x\r\n',
      'WC.INVALIDATE PREFIX models/\r\n',
      'QUIT\r\n',
    ]);
    const text = r.data.toString('latin1');
    const afterHello = text.slice(text.indexOf('%7\r\n$3\r\nkey\r\n'));
    expect(afterHello).toBe(
      '%7\r\n$3\r\nkey\r\n$6\r\ngone/x\r\n$7\r\nversion\r\n_\r\n$4\r\nsize\r\n_\r\n' +
        '$13\r\nlast-modified\r\n_\r\n$5\r\nacked\r\n:2\r\n$7\r\nexpired\r\n:1\r\n$11\r\nduration-ms\r\n:12\r\n' +
        '%5\r\n$6\r\nprefix\r\n$7\r\nmodels/\r\n$5\r\nnames\r\n:3\r\n$5\r\nacked\r\n:4\r\n' +
        '$7\r\nexpired\r\n:1\r\n$11\r\nduration-ms\r\n:42\r\n+OK\r\n',
    );
  });

  it('ioredis on RESP3 (its default) reads the map', async () => {
    const r = client(h.port);
    await r.connect();
    expect(await r.client('INFO')).toContain('resp=3');
    const got = (await r.call('WC.INVALIDATE', 'models/a.bin')) as unknown;
    const flat = Array.isArray(got) ? got : Object.entries(got as object).flat();
    expect(field(flat, 'version')).toBe(ETAG);
    expect(field(flat, 'size')).toBe(1234);
  });
});

describe('without an invalidate option', () => {
  it('answers that invalidation is not available', async () => {
    const r = client(bare.port, { protocol: 2 });
    await r.connect();
    await expect(r.call('WC.INVALIDATE', 'models/a.bin')).rejects.toThrow(
      /^ERR invalidation is not available on this server$/,
    );
    await expect(r.call('WC.INVALIDATE', 'PREFIX', 'models/')).rejects.toThrow(
      'ERR invalidation is not available on this server',
    );
    expect(await r.strlen('models/a.bin')).toBe(10);
  });
});

describe('auth', () => {
  it('refuses WC.INVALIDATE before AUTH and for a non-admin token (NOPERM); an admin token may', async () => {
    const before = authSeam.calls.length;
    const r = await exchange(authed.port, [
      'WC.INVALIDATE models/a.bin\r\n',
      `AUTH ${READER}\r\n`,
      'STRLEN models/a.bin\r\n',
      'WC.INVALIDATE models/a.bin\r\n',
      'WC.INVALIDATE PREFIX models/\r\n',
      `AUTH default ${ADMIN}\r\n`,
      'WC.INVALIDATE PREFIX models/\r\n',
      'QUIT\r\n',
    ]);
    const text = r.data.toString('latin1');
    expect(text).toMatch(
      /^-NOAUTH Authentication required\.\r\n\+OK\r\n:10\r\n-NOPERM WC.INVALIDATE needs an admin token \(auth.adminTokensFile\)\r\n-NOPERM WC.INVALIDATE needs an admin token/,
    );
    expect(text).toContain('+OK\r\n*10\r\n$6\r\nprefix\r\n$7\r\nmodels/\r\n');
    expect(text.endsWith('+OK\r\n')).toBe(true);
    expect(authSeam.calls.slice(before).map((c) => c.target)).toEqual([{ container: 'models', prefix: '' }]);
  });

  it('ioredis with an admin password invalidates; with a reader password gets NOPERM', async () => {
    const admin = client(authed.port, { protocol: 2, password: ADMIN });
    await admin.connect();
    expect(field((await admin.call('WC.INVALIDATE', 'models/a.bin')) as unknown[], 'version')).toBe(ETAG);
    const reader = client(authed.port, { protocol: 2, password: READER });
    await reader.connect();
    await expect(reader.call('WC.INVALIDATE', 'models/a.bin')).rejects.toThrow(/^NOPERM /);
  });

  it('WC.PREFETCH needs an admin token too, as POST /v1/prefetch does', async () => {
    const reader = client(authed.port, { protocol: 2, password: READER });
    await reader.connect();
    await expect(reader.call('WC.PREFETCH', 'models/')).rejects.toThrow(
      /^NOPERM WC.PREFETCH needs an admin token/,
    );
    const admin = client(authed.port, { protocol: 2, password: ADMIN });
    await admin.connect();
    expect(field((await admin.call('WC.PREFETCH', 'models/')) as unknown[], 'objects')).toBe(1);
  });
});

describe('blocking', () => {
  it('holds the connection until done; a pipeline GET, WC.INVALIDATE, GET keeps order', async () => {
    const release = seam.hold();
    const before = seam.calls.length;
    const { sock, read } = await open(h.port);
    try {
      sock.write('GET models/a.bin\r\nWC.INVALIDATE models/a.bin\r\nGET models/b.bin\r\n');
      await seam.calledTimes(before + 1);
      // The first GET's reply went out before the wait; nothing after it until the invalidation completes.
      const first = await read(6 + 100 + 2);
      expect(first).toBe(`$100\r\n${h.objects.get('models/a.bin')!.toString('latin1')}\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await read(0)).toBe('');
      release();
      const tail = `$200\r\n${h.objects.get('models/b.bin')!.toString('latin1')}\r\n`;
      let rest = '';
      while (!rest.endsWith(tail) && !sock.destroyed) rest += await read(1);
      expect(rest.startsWith('*14\r\n$3\r\nkey\r\n$12\r\nmodels/a.bin\r\n')).toBe(true);
      expect(rest.endsWith(tail)).toBe(true);
    } finally {
      release();
      sock.destroy();
    }
  }, 10_000);

  it('ioredis pipeline: replies in the order asked', async () => {
    const release = seam.hold();
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const before = seam.calls.length;
    const p = r
      .pipeline()
      .getBuffer('models/a.bin')
      .call('WC.INVALIDATE', 'models/a.bin')
      .call('WC.INVALIDATE', 'fail/origin')
      .getBuffer('models/b.bin')
      .exec();
    await seam.calledTimes(before + 1);
    release();
    const out = (await p)!;
    expect(out[0]![1]).toEqual(h.objects.get('models/a.bin'));
    expect(field(out[1]![1] as unknown[], 'key')).toBe('models/a.bin');
    expect(String(out[2]![0])).toContain('ORIGIN_UNAVAILABLE');
    expect(out[3]![1]).toEqual(h.objects.get('models/b.bin'));
  });

  it('aborts the wait through the signal when the client goes away', async () => {
    const release = seam.hold();
    const before = seam.calls.length;
    const { sock } = await open(h.port);
    try {
      sock.write('WC.INVALIDATE models/a.bin\r\n');
      await seam.calledTimes(before + 1);
      const signal = seam.calls[before]!.signal!;
      expect(signal.aborted).toBe(false);
      const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      sock.destroy();
      await aborted;
      expect(signal.aborted).toBe(true);
    } finally {
      release();
    }
  });
});

function cliRun(port: number, args: string[]): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: out, code: code ?? -1 });
    });
  });
}

describe.skipIf(!shouldRun('redis-cli'))('redis-cli', () => {
  it('invalidates a key and a prefix (RESP2 and -3), prints errors', async () => {
    const key = await cliRun(h.port, ['WC.INVALIDATE', 'models/llama/config.json']);
    expect(key.code).toBe(0);
    expect(key.stdout.split('\n').slice(0, 6)).toEqual([
      'key',
      'models/llama/config.json',
      'version',
      ETAG,
      'size',
      '1234',
    ]);
    const prefix = await cliRun(h.port, ['-3', 'WC.INVALIDATE', 'PREFIX', 'models/llama/']);
    expect(prefix.stdout).toMatch(/prefix\W+models\/llama\//);
    expect(prefix.stdout).toMatch(/names\W+3/);
    const pinned = await cliRun(h.port, ['WC.INVALIDATE', '{abc}models/a.bin']);
    expect(pinned.stdout).toContain('ERR WC.INVALIDATE names a name, not a version');
    const arity = await cliRun(h.port, ['WC.INVALIDATE']);
    expect(arity.stdout).toContain("ERR wrong number of arguments for 'wc.invalidate' command");
    const failed = await cliRun(h.port, ['WC.INVALIDATE', 'fail/origin']);
    expect(failed.stdout).toContain('ORIGIN_UNAVAILABLE');
    const absent = await cliRun(bare.port, ['WC.INVALIDATE', 'models/a.bin']);
    expect(absent.stdout).toContain('ERR invalidation is not available on this server');
  });

  it('with auth: a reader token gets NOPERM, an admin token invalidates', async () => {
    const reader = await cliRun(authed.port, [
      '--no-auth-warning',
      '-a',
      READER,
      'WC.INVALIDATE',
      'models/a.bin',
    ]);
    expect(reader.stdout).toContain('NOPERM WC.INVALIDATE needs an admin token');
    const admin = await cliRun(authed.port, [
      '--no-auth-warning',
      '-a',
      ADMIN,
      'WC.INVALIDATE',
      'models/a.bin',
    ]);
    expect(admin.stdout).toContain(ETAG);
  });
});
