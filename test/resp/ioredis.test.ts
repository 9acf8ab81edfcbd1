/**
 * ioredis 6 against the RESP door: the RESP3 handshake (and its fallback to
 * RESP2 on NOPROTO), pipelines of 4,096 GETRANGEs answered in order, and the
 * read commands' Redis semantics, byte-exact against the origin's files.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';

let h: Harness;
const clients: Redis[] = [];

function client(port: number, opts: { protocol?: 2 | 3 } = {}): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, ...opts });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

beforeAll(async () => {
  h = await startHarness({
    seed: {
      'models/llama/model-00001.safetensors': 5 * CHUNK + 123,
      'models/llama/config.json': 700,
      'models/llama/empty.bin': 0,
      'models/other/x.bin': 10,
      'big/huge.bin': 3 * CHUNK,
    },
    limits: { maxGetBytes: 2 * CHUNK },
  });
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await h?.close();
});

const SHARD = 'models/llama/model-00001.safetensors';

describe('handshake', () => {
  it('speaks RESP3 after HELLO 3 (ioredis default)', async () => {
    const r = client(h.port);
    await r.connect();
    expect(await r.ping()).toBe('PONG');
    expect(await r.client('INFO')).toContain('resp=3');
    expect(await r.client('INFO')).toContain('lib-name=ioredis');
    const hello = (await r.call('HELLO', '3')) as unknown[];
    expect(hello).toEqual(expect.arrayContaining(['proto', 3, 'mode', 'standalone']));
  });

  it('falls back to RESP2 when HELLO 3 is refused with NOPROTO', async () => {
    const old = await startHarness({ resp3: false, seed: { 'c/k': 5 } });
    try {
      const r = client(old.port);
      await r.connect();
      expect(await r.client('INFO')).toContain('resp=2');
      expect((await r.getBuffer('c/k'))?.equals(old.objects.get('c/k')!)).toBe(true);
      await expect(r.call('HELLO', '3')).rejects.toThrow('NOPROTO unsupported protocol version');
    } finally {
      await old.close();
    }
  });

  it('answers SELECT 0, CLIENT SETNAME/GETNAME/ID, INFO, CONFIG GET, COMMAND', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    expect(await r.select(0)).toBe('OK');
    await expect(r.select(1)).rejects.toThrow('ERR DB index is out of range');
    expect(await r.client('SETNAME', 'loader-1')).toBe('OK');
    expect(await r.client('GETNAME')).toBe('loader-1');
    expect(typeof (await r.client('ID'))).toBe('number');
    expect(await r.info()).toContain('loading:0');
    expect(await r.config('GET', 'save')).toEqual(['save', '']);
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    const count = (await r.call('COMMAND', 'COUNT')) as number;
    expect(count).toBeGreaterThan(10);
    const info = (await r.call('COMMAND', 'INFO', 'getrange')) as unknown[][];
    expect(info[0]?.slice(0, 2)).toEqual(['getrange', 4]);
    await expect(r.call('AUTH', 'secret')).rejects.toThrow('without any password configured');
    expect(await r.echo('hi')).toBe('hi');
  });
});

describe('reads', () => {
  it('GET and GETRANGE are byte-exact, across chunk boundaries', async () => {
    const r = client(h.port);
    await r.connect();
    const bytes = h.objects.get(SHARD)!;
    expect((await r.getrangeBuffer(SHARD, 0, 7)).equals(bytes.subarray(0, 8))).toBe(true);
    expect(
      (await r.getrangeBuffer(SHARD, CHUNK - 5, 2 * CHUNK + 5)).equals(
        bytes.subarray(CHUNK - 5, 2 * CHUNK + 6),
      ),
    ).toBe(true);
    expect((await r.getrangeBuffer(SHARD, -10, -1)).equals(bytes.subarray(-10))).toBe(true);
    // Clamped like Redis: past the end is the end.
    expect((await r.getrangeBuffer(SHARD, bytes.length - 3, 10 ** 12)).equals(bytes.subarray(-3))).toBe(true);
  });

  it('GET of a value over maxGetBytes says to use GETRANGE; GETRANGE over it too', async () => {
    const r = client(h.port);
    await r.connect();
    await expect(r.getBuffer('big/huge.bin')).rejects.toThrow(/over the GET limit .* GETRANGE key start end/);
    await expect(r.getrangeBuffer('big/huge.bin', 0, -1)).rejects.toThrow(
      /asks for \d+ bytes, over the limit/,
    );
    const part = await r.getrangeBuffer('big/huge.bin', 0, 2 * CHUNK - 1);
    expect(part.equals(h.objects.get('big/huge.bin')!.subarray(0, 2 * CHUNK))).toBe(true);
  });

  it('missing and malformed keys read as Redis missing keys; WC.STAT says why', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    expect(await r.get('models/llama/nope')).toBeNull();
    expect(await r.getrange('models/llama/nope', 0, 10)).toBe('');
    expect(await r.strlen('models/llama/nope')).toBe(0);
    expect(
      await r.exists('models/llama/config.json', 'models/llama/nope', 'junk', 'models/llama/config.json'),
    ).toBe(2);
    expect(await r.type('models/llama/config.json')).toBe('string');
    expect(await r.type('models/llama/nope')).toBe('none');
    expect(await r.get('no-slash')).toBeNull();
    expect(await r.get('models/../etc/passwd')).toBeNull();
    expect(await r.strlen('models/../etc/passwd')).toBe(0);
    await expect(r.call('WC.STAT', 'no-slash')).rejects.toThrow("ERR expected 'container/key'");
    await expect(r.call('WC.STAT', 'models/../etc/passwd')).rejects.toThrow(
      "ERR key has a '..' path segment",
    );
    await expect(r.call('WC.STAT', 'models/llama/nope')).rejects.toThrow('ERR ');
    expect(await r.getBuffer('models/llama/empty.bin')).toEqual(Buffer.alloc(0));
    expect(await r.getrange('models/llama/empty.bin', 0, -1)).toBe('');
  });

  it('MGET answers values in order, nil for missing or malformed keys', async () => {
    const r = client(h.port);
    await r.connect();
    const got = await r.mgetBuffer(
      'models/llama/config.json',
      'nope',
      'models/other/x.bin',
      'models/llama/empty.bin',
    );
    expect(got[0]?.equals(h.objects.get('models/llama/config.json')!)).toBe(true);
    expect(got[1]).toBeNull();
    expect(got[2]?.equals(h.objects.get('models/other/x.bin')!)).toBe(true);
    expect(got[3]).toEqual(Buffer.alloc(0));
  });

  it('refuses writes with READONLY and unknown commands with Redis wording', async () => {
    const r = client(h.port);
    await r.connect();
    await expect(r.set('models/llama/config.json', 'x')).rejects.toThrow(
      "READONLY You can't write against a read only replica.",
    );
    await expect(r.del('models/llama/config.json')).rejects.toThrow('READONLY');
    await expect(r.flushall()).rejects.toThrow('READONLY');
    await expect(r.call('NOSUCH', 'a', 'b')).rejects.toThrow(
      "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b'",
    );
    await expect(r.call('GET')).rejects.toThrow("ERR wrong number of arguments for 'get' command");
    await expect(r.getrange(SHARD, 'x', 1)).rejects.toThrow('ERR value is not an integer or out of range');
  });

  it('pins a version with {etag}container/key and refuses a stale pin', async () => {
    const r = client(h.port);
    await r.connect();
    const stat = (await r.call('WC.STAT', 'models/other/x.bin')) as Array<string | number>;
    const etag = String(stat[stat.indexOf('version') + 1]);
    expect(stat[stat.indexOf('size') + 1]).toBe(10);
    expect(stat[stat.indexOf('chunk-size') + 1]).toBe(CHUNK);
    expect(
      (await r.getBuffer(`{${etag}}models/other/x.bin`))?.equals(h.objects.get('models/other/x.bin')!),
    ).toBe(true);
    await expect(r.getBuffer('{0xdeadbeef}models/other/x.bin')).rejects.toThrow(
      /^VERSION_CHANGED .* is not the current version/,
    );
    await expect(r.call('WC.STAT', '{}models/other/x.bin')).rejects.toThrow('ERR a pinned key is');
  });

  it('SCAN MATCH pages through a prefix with stateless-looking cursors', async () => {
    const r = client(h.port);
    await r.connect();
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', 'models/llama/*', 'COUNT', 1);
      seen.push(...keys);
      cursor = next;
      pages++;
    } while (cursor !== '0' && pages < 20);
    expect(seen.sort()).toEqual(['models/llama/config.json', 'models/llama/empty.bin', SHARD].sort());
    expect(pages).toBe(1); // COUNT is a hint: a small directory comes back whole, as Redis does
    const [, jsonOnly] = await r.scan('0', 'MATCH', 'models/*/*.json', 'COUNT', 100);
    expect(jsonOnly).toEqual(['models/llama/config.json']);
    await expect(r.scan('0')).rejects.toThrow("SCAN needs MATCH 'container/prefix*'");
    await expect(r.scan('12345678', 'MATCH', 'models/*')).rejects.toThrow('ERR invalid cursor');
    const streamed: string[] = [];
    for await (const keys of r.scanStream({ match: 'models/*', count: 2 }))
      streamed.push(...(keys as string[]));
    expect(streamed.length).toBe(4);
  });

  it('SCAN pages through thousands of keys, each returned once, while keys are added', async () => {
    for (let i = 0; i < 2500; i++)
      await h.put(`many/d/${String(i).padStart(5, '0')}`, Buffer.from([i & 255]));
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', 'many/d/*', 'COUNT', 10);
      seen.push(...keys);
      cursor = next;
      if (pages++ === 0) await h.put('many/d/00000-added-late', Buffer.from('x')); // sorts before the cursor
    } while (cursor !== '0' && pages < 100);
    expect(pages).toBe(3);
    const want = Array.from({ length: 2500 }, (_, i) => `many/d/${String(i).padStart(5, '0')}`);
    // Every key present for the whole scan is returned exactly once; the late one may or may not be.
    expect(seen.filter((k) => !k.endsWith('added-late'))).toEqual(want);
  });

  it('WC.PREFETCH warms every chunk under a prefix; a second run finds them in DRAM', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const first = (await r.call('WC.PREFETCH', 'models/llama/')) as Array<string | number>;
    const field = (a: Array<string | number>, k: string) => a[a.indexOf(k) + 1];
    expect(field(first, 'objects')).toBe(3);
    expect(field(first, 'chunks')).toBe(7); // 6 for the shard, 1 for config.json, 0 for the empty file
    const second = (await r.call('WC.PREFETCH', 'models/llama/')) as Array<string | number>;
    expect(field(second, 'from-dram')).toBe(7);
    expect(field(second, 'from-origin')).toBe(0);
  });
});

describe('pipelining', () => {
  it('answers a pipeline of 4,096 GETRANGEs in order, byte-exact', async () => {
    const r = client(h.port);
    await r.connect();
    const bytes = h.objects.get(SHARD)!;
    const ranges = Array.from({ length: 4096 }, (_, i) => {
      const start = (i * 7919) % bytes.length;
      const len = 1 + ((i * 104729) % 3000);
      return [start, Math.min(bytes.length - 1, start + len - 1)] as const;
    });
    const p = r.pipeline();
    for (const [s, e] of ranges) p.getrangeBuffer(SHARD, s, e);
    const results = (await p.exec())!;
    expect(results.length).toBe(4096);
    results.forEach(([err, value], i) => {
      expect(err).toBeNull();
      const [s, e] = ranges[i]!;
      expect((value as Buffer).equals(bytes.subarray(s, e + 1))).toBe(true);
    });
  });

  it('keeps order when cheap and expensive commands are mixed', async () => {
    const r = client(h.port, { protocol: 2 });
    await r.connect();
    const p = r.pipeline();
    for (let i = 0; i < 1000; i++) {
      if (i % 3 === 0) p.echo(`e${i}`);
      else if (i % 3 === 1) p.strlen(SHARD);
      else p.getrangeBuffer(SHARD, i, i + 2 * CHUNK - 1);
    }
    const results = (await p.exec())!;
    results.forEach(([err, v], i) => {
      expect(err).toBeNull();
      if (i % 3 === 0) expect(v).toBe(`e${i}`);
      else if (i % 3 === 1) expect(v).toBe(5 * CHUNK + 123);
      else expect((v as Buffer).length).toBe(2 * CHUNK);
    });
  });

  it('sees a replaced object as a new version', async () => {
    const r = client(h.port);
    await r.connect();
    await h.put('models/other/replace.bin', randomBytes(100));
    expect(
      (await r.getBuffer('models/other/replace.bin'))?.equals(h.objects.get('models/other/replace.bin')!),
    ).toBe(true);
  });
});
