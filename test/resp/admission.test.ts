/**
 * Who gets a RESP connection (issue 12, item 5): with auth on, strangers
 * (not yet AUTHed) are bounded overall and per address, must authenticate
 * within resp.preAuthTimeout, and are the ones closed to make room — so idle
 * strangers can never keep a client with a token out. Real server, real
 * sockets; strangers come from other loopback addresses (127.0.x.y).
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { addressKey } from '../../src/resp/admission.js';
import { selfSignedCert } from '../harness/tls.js';
import { until } from '../harness/until.js';
import { type Harness, type HarnessOptions, startHarness } from './harness.js';
import { exchange, open } from './raw.js';

const TOKEN = 'legit-token-0123456789';

interface Stranger {
  sock: Socket;
  said(): string;
  closed: boolean;
}

let h: Harness | undefined;
const socks: Socket[] = [];
afterEach(async () => {
  for (const s of socks.splice(0)) s.destroy();
  await h?.close();
  h = undefined;
});

async function server(o: HarnessOptions): Promise<Harness> {
  h = await startHarness({ tokens: new Set([TOKEN]), seed: { 'c/k': 10 }, ...o });
  return h;
}

async function stranger(port: number, localAddress: string): Promise<Stranger> {
  const sock = connect({ port, host: '127.0.0.1', localAddress });
  socks.push(sock);
  let data = '';
  const s: Stranger = { sock, said: () => data, closed: false };
  sock.on('data', (d) => {
    data += d.toString('latin1');
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    s.closed = true;
  });
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  return s;
}

async function strangers(port: number, n: number, addresses: number, net = 3): Promise<Stranger[]> {
  const out: Stranger[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) =>
      stranger(port, `127.0.${net}.${1 + ((i + j) % addresses)}`),
    );
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function withToken(port: number): Promise<string> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    password: TOKEN,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return await r.ping();
  } finally {
    r.disconnect();
  }
}

/** Waits here give up after 10 s (the test then fails naming the wait). */
const WAIT = { timeoutMs: 10_000 };

describe('RESP admission with auth on', () => {
  it('lets a client with a token in past maxClients idle strangers: the oldest are closed to make room', async () => {
    const { port, server: s } = await server({ limits: { maxClients: 200 } });
    const idle = await strangers(port, 300, 30);
    // Before the fix the first 200 held every slot: `-ERR max number of clients reached`.
    expect(await withToken(port)).toBe('PONG');
    // A tenth of maxClients may wait to authenticate at once (resp.maxUnauthenticated defaults to it).
    await until(() => idle.filter((x) => !x.closed).length <= 20, WAIT);
    expect(idle[0]!.said()).toBe(
      '-ERR closed before AUTH to make room: 20 connections are waiting to authenticate (resp.maxUnauthenticated)\r\n',
    );
    expect(s.connections()).toBeLessThanOrEqual(21);
  });

  it('closes the oldest stranger of the same address first', async () => {
    const { port } = await server({ limits: { maxUnauthenticatedPerAddress: 4 } });
    const other = await stranger(port, '127.0.4.2');
    const same = await strangers(port, 5, 1, 4);
    await until(() => same[0]!.closed, WAIT);
    expect(same[0]!.said()).toBe(
      '-ERR closed before AUTH to make room: 4 connections from 127.0.4.1 are waiting to authenticate (resp.maxUnauthenticatedPerAddress)\r\n',
    );
    expect(same.slice(1).some((x) => x.closed)).toBe(false);
    expect(other.closed).toBe(false);
  });

  it('refuses, with Redis wording, only when authenticated clients hold every slot', async () => {
    const { port } = await server({ limits: { maxClients: 2, maxUnauthenticated: 2 } });
    const a = await open(port);
    a.sock.write(`AUTH ${TOKEN}\r\n`);
    expect(await a.read(5)).toBe('+OK\r\n');
    const waiting = await stranger(port, '127.0.5.1');
    // One slot is a stranger's: a new connection takes it.
    const b = await open(port);
    b.sock.write(`AUTH ${TOKEN}\r\n`);
    expect(await b.read(5)).toBe('+OK\r\n');
    await until(() => waiting.closed, WAIT);
    expect(waiting.said()).toMatch(/all 2 connections are in use \(resp\.maxClients\)/);
    // Both slots are authenticated clients' now.
    const r = await exchange(port, ['PING\r\n']);
    expect(r.data.toString()).toBe('-ERR max number of clients reached\r\n');
    a.sock.destroy();
    b.sock.destroy();
  });

  it('closes a connection that does not authenticate within resp.preAuthTimeout, saying why', async () => {
    const { port } = await server({ limits: { preAuthTimeoutMs: 300 } });
    const s = await stranger(port, '127.0.6.1');
    const authed = await open(port);
    authed.sock.write(`AUTH ${TOKEN}\r\n`);
    expect(await authed.read(5)).toBe('+OK\r\n');
    await until(() => s.closed, WAIT);
    expect(s.said()).toBe('-ERR authentication timeout: no AUTH within 300 ms (resp.preAuthTimeout)\r\n');
    // An authenticated connection is not on that clock.
    await new Promise((r) => setTimeout(r, 400));
    authed.sock.write('PING\r\n');
    expect(await authed.read(7)).toBe('+PONG\r\n');
    authed.sock.destroy();
  });

  it("holds at most 16 KiB of a stranger's command, and pauses a stranger's pipeline instead of buffering it", async () => {
    const { port } = await server({});
    // Each bulk within Redis's 16 KiB pre-auth bulk limit, together past what we hold for one command.
    const big = 'x'.repeat(15_000);
    const r = await exchange(port, [`*3\r\n$4\r\nAUTH\r\n$15000\r\n${big}\r\n$15000\r\n${big}\r\n`]);
    expect(r.data.toString()).toBe(
      '-ERR Protocol error: unauthenticated query buffer limit reached (16384 bytes for one command before AUTH)\r\n',
    );
    expect(r.closed).toBe(true);
    // AUTH, then 200 KiB of commands in one write: they wait for AUTH in the socket, then all run.
    const pings = 'PING\r\n'.repeat(35_000);
    const ok = await exchange(port, [`AUTH ${TOKEN}\r\n${pings}QUIT\r\n`], 20_000);
    expect(ok.data.toString()).toBe(`+OK\r\n${'+PONG\r\n'.repeat(35_000)}+OK\r\n`);
  });
});

describe('RESP admission over TLS', () => {
  it('takes the slot at the TCP connection: strangers stalling the TLS handshake are closed to make room', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wc-resp-tls-'));
    try {
      selfSignedCert(dir);
      const cert = readFileSync(join(dir, 'cert.pem'));
      const key = readFileSync(join(dir, 'key.pem'));
      const { port } = await server({
        tls: { cert, key },
        limits: { maxClients: 10, maxUnauthenticated: 10 },
      });
      // TCP connections that never start the TLS handshake.
      const idle = await strangers(port, 30, 30, 9);
      await until(() => idle.filter((x) => !x.closed).length <= 10, WAIT);
      const r = new Redis({
        port,
        host: '127.0.0.1',
        password: TOKEN,
        tls: { ca: cert },
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        expect((await r.getBuffer('c/k'))?.equals(h!.objects.get('c/k')!)).toBe(true);
      } finally {
        r.disconnect();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RESP admission with auth off', () => {
  it('treats every connection as authenticated: no pre-auth clock, maxClients as before', async () => {
    h = await startHarness({ limits: { preAuthTimeoutMs: 200, maxClients: 2 } });
    const a = await open(h.port);
    await new Promise((r) => setTimeout(r, 400));
    a.sock.write('PING\r\n');
    expect(await a.read(7)).toBe('+PONG\r\n');
    const b = await open(h.port);
    const r = await exchange(h.port, ['PING\r\n']);
    expect(r.data.toString()).toBe('-ERR max number of clients reached\r\n');
    a.sock.destroy();
    b.sock.destroy();
  });
});

describe('addressKey', () => {
  it('counts IPv4 (also IPv4-mapped) by address and IPv6 by its /64', () => {
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });
});
