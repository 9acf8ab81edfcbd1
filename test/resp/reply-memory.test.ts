/**
 * resp.maxReplyMemory: what clients that pipeline large reads and never read
 * the replies can make the server hold, all connections together. The budget
 * itself is tested with stand-in owners and a fake clock; the bound on memory
 * with a real node in a child process (its VmRSS, generous margins) and real
 * sockets, while a well-behaved reader goes on being served.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReplyMemory, type ReplyOwner, STALL_MS } from '../../src/resp/reply-memory.js';

const MiB = 1024 * 1024;

class Owner implements ReplyOwner {
  since: number | null = null;
  evicted: string | null = null;
  stalledSince(): number | null {
    return this.since;
  }
  evict(message: string): void {
    this.evicted = message;
  }
}

/** Notes in `order` when the share is granted. */
async function tagged<T>(p: Promise<T>, name: string, order: string[]): Promise<T> {
  const s = await p;
  order.push(name);
  return s;
}

describe('the reply budget', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const signal = () => new AbortController().signal;

  it('grants within the budget, queues beyond it, in order, and a lone oversized reply still runs', async () => {
    const m = new ReplyMemory(10 * MiB);
    const a = await m.acquire(6 * MiB, new Owner(), signal());
    const b = await m.acquire(4 * MiB, new Owner(), signal());
    const order: string[] = [];
    const c = tagged(m.acquire(3 * MiB, new Owner(), signal()), 'c', order);
    const d = tagged(m.acquire(1 * MiB, new Owner(), signal()), 'd', order);
    await vi.advanceTimersByTimeAsync(0);
    expect(m.used).toBe(10 * MiB);
    expect(m.waiting).toBe(2);
    a.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['c', 'd']); // c first although d would have fitted alone
    b.release();
    (await c).release();
    (await d).release();
    expect(m.used).toBe(0);
    const huge = await m.acquire(50 * MiB, new Owner(), signal());
    expect(m.used).toBe(50 * MiB);
    huge.release();
    huge.release(); // idempotent
    expect(m.used).toBe(0);
  });

  it('serves replies within one chunk before larger ones', async () => {
    const m = new ReplyMemory(8 * MiB);
    const a = await m.acquire(8 * MiB, new Owner(), signal());
    const order: string[] = [];
    const big = tagged(m.acquire(8 * MiB, new Owner(), signal()), 'big', order);
    const small = tagged(m.acquire(4 * MiB, new Owner(), signal(), true), 'small', order);
    a.release();
    (await small).release();
    (await big).release();
    expect(order).toEqual(['small', 'big']);
  });

  it('closes the holder stalled longest, once stalled STALL_MS, only while a reply waits', async () => {
    const m = new ReplyMemory(8 * MiB);
    const reader = new Owner();
    const staller = new Owner();
    await m.acquire(4 * MiB, reader, signal());
    await m.acquire(4 * MiB, staller, signal());
    reader.since = Date.now(); // both wait for their clients now...
    staller.since = Date.now() - 10_000; // ...one for a long time already
    await vi.advanceTimersByTimeAsync(60_000);
    expect(staller.evicted).toBeNull(); // nobody waits: a slow client alone keeps its share
    const waiter = m.acquire(4 * MiB, new Owner(), signal());
    const got = await waiter;
    expect(staller.evicted).toMatch(/resp\.maxReplyMemory, 8388608 bytes\) is needed by other clients/);
    expect(reader.evicted).toBeNull();
    got.release();
    // A fresh stall is given STALL_MS before it counts.
    reader.since = Date.now();
    const second = m.acquire(8 * MiB, new Owner(), signal());
    await vi.advanceTimersByTimeAsync(STALL_MS - 10);
    expect(reader.evicted).toBeNull();
    await vi.advanceTimersByTimeAsync(20);
    expect(reader.evicted).not.toBeNull();
    (await second).release();
    expect(m.used).toBe(0);
  });

  it('drops a waiter whose connection closed', async () => {
    const m = new ReplyMemory(4 * MiB);
    const a = await m.acquire(4 * MiB, new Owner(), signal());
    const ac = new AbortController();
    const gone = m.acquire(4 * MiB, new Owner(), ac.signal);
    ac.abort(new Error('client closed the connection'));
    await expect(gone).rejects.toThrow('client closed the connection');
    expect(m.waiting).toBe(0);
    a.release();
    expect(m.used).toBe(0);
  });
});

describe('clients that pipeline large GETRANGEs and never read', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('hold no more than resp.maxReplyMemory, and a reader is still served', async () => {
    dir = await mkdtemp(join(tmpdir(), 'wc-resp-mem-'));
    await mkdir(join(dir, 'm'), { recursive: true });
    // Distinct chunks for every connection, and a DRAM tier far too small to share them.
    const size = 256 * MiB;
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i += MiB) big.fill(i / MiB, i, i + MiB);
    await writeFile(join(dir, 'm', 'big.bin'), big);
    const budget = 64 * MiB;
    const { pid, resp, http } = await startChild(dir, {
      cache: { chunkSize: '4MiB', readAhead: 4, dram: { maxBytes: '16MiB' }, nvme: null },
      resp: { maxReplyMemory: '64MiB' },
    });
    const before = rssMiB(pid);

    // 100 connections from 50 addresses, 20 GETRANGEs of 8 MiB each, never read.
    for (let i = 0; i < 100; i++) {
      const s = connect({ port: resp, host: '127.0.0.1', localAddress: `127.0.7.${1 + (i % 50)}` });
      s.on('error', () => {});
      s.pause();
      let cmds = '';
      for (let j = 0; j < 20; j++) {
        const start = ((i * 20 + j) * 8 * MiB) % (size - 8 * MiB);
        cmds += `GETRANGE m/big.bin ${start} ${start + 8 * MiB - 1}\r\n`;
      }
      s.write(cmds);
      sockets.push(s);
    }

    // Meanwhile, a reader that reads: three 64 KiB ranges, each checked.
    const reading = (async () => {
      const r = connect({ port: resp, host: '127.0.0.1' });
      sockets.push(r);
      r.on('error', () => {});
      let buf = Buffer.alloc(0);
      r.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
      });
      for (let n = 0; n < 3; n++) {
        const off = (n + 1) * 40 * MiB + 12345;
        r.write(`GETRANGE m/big.bin ${off} ${off + 65535}\r\n`);
        const head = Buffer.from('$65536\r\n');
        const want = head.length + 65536 + 2;
        while (buf.length < want) await new Promise((res) => setTimeout(res, 20));
        expect(buf.subarray(0, head.length).equals(head)).toBe(true);
        expect(buf.subarray(head.length, head.length + 65536).equals(big.subarray(off, off + 65536))).toBe(
          true,
        );
        buf = buf.subarray(want);
      }
    })();

    let peak = before;
    let evicted = 0;
    let readerDone = false;
    void reading.then(() => {
      readerDone = true;
    });
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      peak = Math.max(peak, rssMiB(pid));
      if (peak - before > (3 * budget) / MiB + 64) break; // the bound is broken: no need to wait longer
      evicted = await replyMemoryEvictions(http);
      if (readerDone && evicted >= 10) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // Before the fix: ~5 MiB per connection (200 connections: +1.1 GiB). Now: the budget, plus
    // what any process of this size moves by (buffers, heap), far below that.
    expect(peak - before).toBeLessThan((3 * budget) / MiB + 64);
    expect(evicted).toBeGreaterThanOrEqual(10);
    await reading;
  }, 300_000);

  async function startChild(
    root: string,
    config: object,
  ): Promise<{ pid: number; resp: number; http: number }> {
    const file = fileURLToPath(new URL('./fixtures/node.ts', import.meta.url));
    const proc = spawn(process.execPath, ['--import', 'tsx', file, root], {
      env: { ...process.env, CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = proc;
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the node did not start within 120 s')), 120_000);
      createInterface({ input: proc.stdout! }).once('line', (l) => {
        clearTimeout(t);
        resolve(l);
      });
      proc.once('exit', (code) => reject(new Error(`the node exited (${code}) before listening`)));
    });
    const { resp, http } = JSON.parse(line) as { resp: number; http: number };
    return { pid: proc.pid!, resp, http };
  }
});

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/** Connections the node closed to give reply memory back, from its /metrics. */
async function replyMemoryEvictions(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = /weightcache_resp_rejected_connections_total\{reason="reply_memory"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}
