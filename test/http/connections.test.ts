/**
 * Connection limits of the HTTP door against a real node with auth on
 * (issue 12 item 5, HTTP part): idle strangers cannot fill the connection
 * cap, one address cannot take every slot, a connection must send a request
 * soon after it opens, and connections that proved a token are kept. Before
 * the fix, idle keep-alive connections at the cap made new connections fail
 * with ECONNRESET.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess, sumMetric } from '../harness/node-process.js';
import { RawConnection, rawRequest } from '../harness/raw-http.js';

const TOKEN = 'reader-token-0123456789abcdef';
const MAX = 40;
const PER_ADDRESS = 20;
const RESERVED = 10;
let node: NodeProcess;
let port: number;
const open: RawConnection[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-conns-'));
  writeFileSync(join(dir, 'tokens'), `${TOKEN}\n`);
  mkdirSync(join(dir, 'origin', 'models'), { recursive: true });
  writeFileSync(join(dir, 'origin', 'models', 'f.bin'), 'bytes of models');
  node = await startNodeProcess({
    dir,
    config: {
      auth: { tokensFile: join(dir, 'tokens') },
      http: {
        maxConnections: MAX,
        maxConnectionsPerAddress: PER_ADDRESS,
        reservedConnections: RESERVED,
        firstRequestTimeout: '1s',
      },
    },
    timeoutMs: 60_000,
  });
  port = Number(new URL(node.url).port);
});
afterAll(async () => {
  for (const c of open) c.close();
  await node?.kill();
});

async function connectFrom(address: string): Promise<RawConnection> {
  const c = await RawConnection.open(port, '127.0.0.1', address);
  open.push(c);
  return c;
}

/** A read with the token on a connection (which thereby counts as authenticated). */
async function authedRead(c: RawConnection): Promise<number> {
  c.send(rawRequest('GET', '/v1/objects/models/f.bin', { Authorization: `Bearer ${TOKEN}` }));
  const r = await c.read();
  expect(r.body.toString()).toBe('bytes of models');
  return r.status;
}

async function rejected(reason: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return sumMetric(text, 'weightcache_http_rejected_connections_total', { reason });
}

async function closeAll(): Promise<void> {
  for (const c of open.splice(0)) c.close();
  // Let the node see the closes before the next test counts connections.
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const text = await (await fetch(`${node.url}/metrics`, { headers: { connection: 'close' } })).text();
    if (sumMetric(text, 'weightcache_http_connections') <= 1) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('HTTP connection limits', () => {
  it('a connection that sends no request within http.firstRequestTimeout gets 408 and is closed', async () => {
    const silent = await connectFrom('127.0.0.2');
    const trickle = await connectFrom('127.0.0.2');
    trickle.send('GET /v1/objects/models/f.bin HTTP/1.1\r\nHost: x\r\n'); // never finishes its head
    for (const c of [silent, trickle]) {
      const r = await c.read({ timeoutMs: 15_000 });
      expect({ status: r.status, code: JSON.parse(r.body.toString()).code }).toEqual({
        status: 408,
        code: 'REQUEST_TIMEOUT',
      });
      expect(await c.waitClosed(5_000)).toBe(true);
    }
    await closeAll();
  });

  it('one address holds at most http.maxConnectionsPerAddress; other addresses are unaffected', async () => {
    const before = await rejected('per_address');
    for (let i = 0; i < PER_ADDRESS; i++) expect(await authedRead(await connectFrom('127.0.0.3'))).toBe(200);
    const extra = await connectFrom('127.0.0.3');
    const r = await extra.read();
    expect({ status: r.status, code: JSON.parse(r.body.toString()).code }).toEqual({
      status: 503,
      code: 'OVERLOADED',
    });
    expect(r.body.toString()).toMatch(/maxConnectionsPerAddress/);
    expect(await rejected('per_address')).toBe(before + 1);
    expect(await authedRead(await connectFrom('127.0.0.4'))).toBe(200);
    await closeAll();
  });

  it('idle strangers at the cap: a newcomer takes the place of the idle unauthenticated connection waiting longest; authenticated ones stay', async () => {
    // RESERVED authenticated keep-alive connections, then strangers from many addresses up to the cap.
    const trusted: RawConnection[] = [];
    for (let i = 0; i < RESERVED; i++) {
      const c = await connectFrom('127.0.0.5');
      expect(await authedRead(c)).toBe(200);
      trusted.push(c);
    }
    const strangers: RawConnection[] = [];
    for (let i = 0; i < 2 * MAX; i++) {
      const c = await connectFrom(`127.0.1.${1 + (i % 200)}`);
      // Each asks without a token (401) or not at all, then idles on keep-alive.
      if (i % 2 === 0) {
        c.send(rawRequest('GET', '/v1/objects/models/f.bin'));
        const rr = await c.read();
        expect(rr.status, rr.body.toString()).toBe(401);
      }
      strangers.push(c);
    }
    // Unauthenticated connections never held more than MAX - RESERVED slots, the oldest went first.
    await new Promise((r) => setTimeout(r, 200));
    const alive = strangers.filter((c) => !c.closed);
    expect(alive.length).toBeLessThanOrEqual(MAX - RESERVED);
    expect(strangers.slice(0, MAX).every((c) => c.closed)).toBe(true);
    // Every legitimate newcomer is served, and the authenticated connections were never touched.
    for (let i = 0; i < 20; i++) expect(await authedRead(await connectFrom(`127.0.2.${1 + i}`))).toBe(200);
    for (const c of trusted) {
      expect(c.closed).toBe(false);
      expect(await authedRead(c)).toBe(200);
    }
    // Cut to make room, or (on a slow machine) by their own 1 s idle limit first.
    expect(
      (await rejected('idle_evicted')) + (await rejected('first_request_timeout')),
    ).toBeGreaterThanOrEqual(MAX);
    await closeAll();
  });

  it('an unauthenticated keep-alive connection idles only http.firstRequestTimeout; an authenticated one stays', async () => {
    const stranger = await connectFrom('127.0.0.6');
    stranger.send(rawRequest('GET', '/v1/objects/models/f.bin'));
    expect((await stranger.read()).status).toBe(401);
    const friend = await connectFrom('127.0.0.6');
    expect(await authedRead(friend)).toBe(200);
    expect(await stranger.waitClosed(10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // past the 1 s first-request timeout
    expect(friend.closed).toBe(false);
    expect(await authedRead(friend)).toBe(200);
    await closeAll();
  });
});
