/**
 * The native HTTP door's I/O threads (addon/src/http/door.h) over real
 * sockets, with JavaScript answering by request id: keep-alive, pipelined
 * answers written in request order, refusals, every bound (requests in
 * flight, answer bytes for a reader that does not read, connections, body
 * size) and both timeouts, several threads, and counters back to zero.
 * Timing assertions only ever say "eventually, within a generous bound".
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { NativeHttpDoorOptions } from '../../src/http/native-binding.js';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { get, RawConn } from './raw-http.js';

const doors: NativeHttpDoor[] = [];
const conns: RawConn[] = [];

afterEach(() => {
  for (const c of conns.splice(0)) c.destroy();
  for (const d of doors.splice(0)) d.stop();
});

interface Started {
  door: NativeHttpDoor;
  requests: NativeHttpRequest[];
  aborted: { id: number; reason: string }[];
  /** Connections that posted requests and closed: the I/O thread is done with them (closed event). */
  closed: number[];
  /** Resolves once `n` requests arrived in all. */
  arrived(n: number, timeoutMs?: number): Promise<NativeHttpRequest[]>;
}

function start(
  options: Partial<NativeHttpDoorOptions> = {},
  answer?: (door: NativeHttpDoor, req: NativeHttpRequest) => void,
): Started {
  const requests: NativeHttpRequest[] = [];
  const aborted: { id: number; reason: string }[] = [];
  const closed: number[] = [];
  let wake: (() => void) | null = null;
  const door = NativeHttpDoor.start(
    { host: '127.0.0.1', port: 0, ...options },
    {
      onRequest(req) {
        requests.push(req);
        answer?.(door, req);
        wake?.();
      },
      onAborted(id, reason) {
        aborted.push({ id, reason });
      },
      onClosed(conn) {
        closed.push(conn);
      },
    },
  );
  doors.push(door);
  const arrived = async (n: number, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (requests.length < n) {
      if (Date.now() > deadline) throw new Error(`${requests.length} of ${n} requests arrived`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return requests.slice(0, n);
  };
  return { door, requests, aborted, closed, arrived };
}

async function open(port: number, localAddress?: string): Promise<RawConn> {
  const c = await RawConn.open(port, localAddress);
  conns.push(c);
  return c;
}

/** Polls `f` until it holds (the I/O threads update counters asynchronously). */
async function eventually(f: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const echo = (door: NativeHttpDoor, req: NativeHttpRequest) =>
  door.respond(req.id, 200, { 'Content-Type': 'text/plain' }, Buffer.from(`${req.method} ${req.path}`));

describe('the native HTTP door', () => {
  it('answers a real client and keeps the connection alive between requests', async () => {
    const { door } = start({}, echo);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const fetchOnce = (path: string) =>
      new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: door.port, path, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              body: Buffer.concat(chunks).toString(),
              headers: res.headers,
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const a = await fetchOnce('/v1/objects/c/a');
    const b = await fetchOnce('/v1/objects/c/b?x=1');
    agent.destroy();
    expect(a).toMatchObject({ status: 200, body: 'GET /v1/objects/c/a' });
    expect(a.headers['content-length']).toBe('19');
    expect(b).toMatchObject({ status: 200, body: 'GET /v1/objects/c/b' });
    expect(door.stats().connectionsAccepted).toBe(1);
  });

  it('writes pipelined answers in request order, whatever order JavaScript answers in', async () => {
    const s = start();
    const c = await open(s.door.port);
    c.send([1, 2, 3, 4, 5].map((i) => get(`/${i}`)).join(''));
    const reqs = await s.arrived(5);
    for (const r of [...reqs].reverse()) s.door.respond(r.id, 200, {}, Buffer.from(r.path));
    const res = await c.responses(5);
    expect(res.map((r) => r.body.toString())).toEqual(['/1', '/2', '/3', '/4', '/5']);
    expect(c.isClosed).toBe(false);
  });

  it('refuses a malformed request with a JSON error after answering the ones before it, then closes', async () => {
    const s = start({}, echo);
    const c = await open(s.door.port);
    c.send(
      get('/ok') + 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const [ok, bad] = await c.responses(2);
    expect(ok?.status).toBe(200);
    expect(bad?.status).toBe(400);
    expect(bad?.headers.connection).toBe('close');
    expect(JSON.parse(bad!.body.toString())).toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining('content_length_with_transfer_encoding'),
    });
    expect(await c.closedWithin(10_000)).toBe(true);
    expect(s.door.stats().parseErrors).toBe(1);
  });

  it('accepts absolute-form targets, whose authority replaces Host', async () => {
    const s = start({}, echo);
    const c = await open(s.door.port);
    c.send('GET http://cache.example:8420/v1/objects/c/k?version=1 HTTP/1.1\r\nHost: other\r\n\r\n');
    c.send('GET http://cache.example HTTP/1.1\r\nHost: other\r\n\r\n');
    const [a, b] = await s.arrived(2);
    expect(a).toMatchObject({ authority: 'cache.example:8420', path: '/v1/objects/c/k', query: 'version=1' });
    expect(b).toMatchObject({ authority: 'cache.example', path: '/' });
    expect((await c.responses(2)).map((r) => r.status)).toEqual([200, 200]);
  });

  it('reads no more than maxInFlight unanswered requests from one connection', async () => {
    const s = start({ maxInFlight: 2 });
    const c = await open(s.door.port);
    // Two requests and the start of a third: the bound, and a head still arriving, are held, not cut.
    const third = get('/3');
    c.send(get('/1') + get('/2') + third.slice(0, 10));
    await s.arrived(2);
    c.send(third.slice(10));
    await new Promise((r) => setTimeout(r, 300));
    expect(s.requests).toHaveLength(2); // the rest waits in the socket, not in memory
    expect(c.isClosed).toBe(false);
    for (let answered = 0; answered < 6; answered++) {
      const r = (await s.arrived(answered + 1))[answered]!;
      expect(s.requests.length - answered).toBeLessThanOrEqual(2);
      s.door.respond(r.id, 200, {}, Buffer.from(r.path));
      // The next request only once the one before it was read: one at a time is never "more in one go".
      if (answered + 4 <= 6) {
        await s.arrived(answered + 3);
        c.send(get(`/${answered + 4}`));
      }
    }
    expect((await c.responses(6)).map((r) => r.body.toString())).toEqual([
      '/1',
      '/2',
      '/3',
      '/4',
      '/5',
      '/6',
    ]);
    expect(s.door.stats().pausedReads).toBeGreaterThan(0);
    expect(s.door.stats().pipelineCuts).toBe(0);
  });

  it('stops reading from a client that does not read its answers, and frees everything when it leaves', async () => {
    const big = Buffer.alloc(4 << 20, 7);
    const s = start({ maxInFlight: 64, maxBufferedBytes: 1 << 20 }, (door, req) =>
      door.respond(req.id, 200, {}, big),
    );
    const c = await open(s.door.port);
    c.sock.pause(); // never reads
    for (let i = 0; i < 40; i++) {
      c.send(get(`/${i}`));
      await new Promise((r) => setTimeout(r, 10));
    }
    // The door stops reading once the answers it holds pass the bound (polled: under ASan the
    // I/O thread may get there later than any fixed pause); then, given time, it reads no more.
    await eventually(() => s.door.stats().pausedReads > 0, 'reading paused for the slow reader');
    await new Promise((r) => setTimeout(r, 300));
    // Past 1 MiB of unwritten answers the door reads no more requests: what the kernel's socket
    // buffers took aside, a few answers are held, not forty (160 MiB).
    const held = s.requests.length;
    console.log(
      `slow reader: ${held} of 40 requests read, ${s.door.stats().bufferedBytes} answer bytes held`,
    );
    expect(held).toBeLessThan(10);
    expect(s.door.stats().pinnedBuffers).toBeLessThanOrEqual(held);
    c.destroy();
    await eventually(() => s.door.stats().connectionsOpen === 0, 'the connection is closed');
    await eventually(() => s.door.stats().pinnedBuffers === 0, 'every pinned answer is released');
    expect(s.door.stats()).toMatchObject({ inFlight: 0, bufferedBytes: 0 });
  });

  it('answers 408 and closes when a head does not arrive within firstRequestTimeoutMs / headerTimeoutMs (slowloris), serving others meanwhile', async () => {
    const s = start({ firstRequestTimeoutMs: 300, headerTimeoutMs: 300 }, echo);
    const slow = await open(s.door.port);
    slow.send('GET /slow HT');
    const silent = await open(s.door.port);
    const good = await open(s.door.port);
    good.send(get('/good'));
    expect((await good.responses(1))[0]?.status).toBe(200);
    expect(await slow.closedWithin(15_000)).toBe(true);
    expect(await silent.closedWithin(15_000)).toBe(true);
    const [timeout] = await slow.responses(1).catch(() => [undefined]);
    expect(timeout?.status).toBe(408);
    expect(JSON.parse(timeout!.body.toString()).code).toBe('REQUEST_TIMEOUT');
    expect(s.door.stats().headerTimeouts).toBeGreaterThanOrEqual(2);
    expect(s.requests.map((r) => r.path)).toEqual(['/good']);
    // A later head on a kept-alive connection has headerTimeoutMs from its first byte.
    good.send('GET /late HT');
    expect(await good.closedWithin(15_000)).toBe(true);
    const answers = await good.responses(2).catch(() => []);
    expect(answers[1]?.status).toBe(408);
  });

  it('closes a keep-alive connection idle for idleTimeoutMs', async () => {
    const s = start({ idleTimeoutMs: 300 }, echo);
    const c = await open(s.door.port);
    c.send(get('/a'));
    await c.responses(1);
    expect(await c.closedWithin(15_000)).toBe(true);
    expect(s.door.stats().idleTimeouts).toBe(1);
  });

  it('at maxConnections takes the place of the idle-longest connection, and answers 503 when every one is busy', async () => {
    // Nothing answered: a connection that sent a request is busy until its answer is written.
    const s = start({ maxConnections: 3 });
    const held = [await open(s.door.port), await open(s.door.port), await open(s.door.port)];
    await eventually(() => s.door.stats().connectionsAccepted === 3, 'three accepted');
    // All idle: a newcomer takes the place of the one idle longest (the first), which is closed.
    const fourth = await open(s.door.port);
    expect(await held[0]!.closedWithin(10_000)).toBe(true);
    await eventually(() => s.door.stats().idleEvicted === 1, 'one idle connection evicted');
    expect(fourth.isClosed).toBe(false);
    // Now make all three busy: a newcomer is refused with 503 OVERLOADED naming the key, and closed.
    for (const c of [held[1]!, held[2]!, fourth]) c.send(get('/busy'));
    await s.arrived(3);
    const extra = await open(s.door.port);
    expect(await extra.closedWithin(10_000)).toBe(true);
    const refusal = (await extra.responses(1))[0]!;
    expect(refusal.status).toBe(503);
    expect(JSON.parse(refusal.body.toString())).toMatchObject({ code: 'OVERLOADED' });
    expect(refusal.body.toString()).toContain('http.maxConnections (3)');
    expect(s.door.stats().connectionsRejected).toBe(1);
    // A slot that frees is taken by the next newcomer.
    held[1]!.destroy();
    await eventually(() => s.door.stats().connectionsOpen === 2, 'a slot is free');
    const next = await open(s.door.port);
    next.send(get('/after'));
    await s.arrived(4);
    s.door.respond(s.requests[3]!.id, 200, {}, Buffer.from('after'));
    expect((await next.responses(1))[0]?.body.toString()).toBe('after');
  });

  it('at maxConnections evicts the connection idle longest on whichever thread holds it', async () => {
    const s = start({ maxConnections: 6, threads: 2 }, echo);
    const pause = () => new Promise((r) => setTimeout(r, 150)); // past a tick: distinct idle times, published
    const held: RawConn[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await open(s.door.port);
      c.send(get(`/held${i}`));
      await c.responses(1);
      held.push(c);
      await pause();
    }
    // Each newcomer takes the place of the oldest idle connection, whichever of the two threads
    // accepted it and whichever holds the oldest (with 6 connections over 2 threads, a thread
    // evicting only its own would close a younger one almost surely at some step).
    for (let k = 0; k < 6; k++) {
      const c = await open(s.door.port);
      expect(await held[k]!.closedWithin(10_000)).toBe(true);
      c.send(get(`/new${k}`));
      expect((await c.responses(1))[0]?.status).toBe(200);
      expect(held.slice(k + 1).map((h) => h.isClosed)).toEqual(held.slice(k + 1).map(() => false));
      await pause();
    }
    expect(s.door.stats().idleEvicted).toBe(6);
    expect(s.door.stats().connectionsOpen).toBe(6);
  });

  it('answers 408 and closes when a request body has not all arrived within requestTimeoutMs', async () => {
    const s = start({ requestTimeoutMs: 800, idleTimeoutMs: 20_000 }, echo);
    const c = await open(s.door.port);
    c.send('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
    // A byte every 100 ms: never idle, but 100 bytes would take 10 s.
    const trickle = setInterval(() => {
      if (!c.isClosed) c.send('a');
    }, 100);
    try {
      expect(await c.closedWithin(15_000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
    const [r] = await c.responses(1).catch(() => [undefined]);
    expect(r?.status).toBe(408);
    expect(JSON.parse(r!.body.toString())).toEqual({
      code: 'REQUEST_TIMEOUT',
      message: 'the request did not arrive in time',
    });
    expect(s.requests).toEqual([]);
    expect(s.door.stats().requestTimeouts).toBe(1);
    // A whole request in time is answered.
    const ok = await open(s.door.port);
    ok.send('POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc');
    expect((await ok.responses(1))[0]?.status).toBe(200);
  });

  it('bounds connections per client address (maxPerAddress) across threads; other addresses are served', async () => {
    const s = start({ maxPerAddress: 2, threads: 2 }, echo);
    const a = [await open(s.door.port), await open(s.door.port)];
    await eventually(() => s.door.stats().connectionsAccepted === 2, 'two accepted');
    const third = await open(s.door.port);
    expect(await third.closedWithin(10_000)).toBe(true);
    const refusal = (await third.responses(1))[0]!;
    expect(refusal.status).toBe(503);
    expect(JSON.parse(refusal.body.toString())).toEqual({
      code: 'OVERLOADED',
      message: 'too many connections from 127.0.0.1 (http.maxConnectionsPerAddress: 2)',
    });
    expect(s.door.stats().rejectedPerAddress).toBe(1);
    const other = await open(s.door.port, '127.0.0.2');
    other.send(get('/other'));
    expect((await other.responses(1))[0]?.body.toString()).toBe('GET /other');
    // A connection that closes gives its address's slot back. The door's open count drops before the
    // address's slot is given back (connectionsOpen is no sign of it): wait for the close event, which
    // the I/O thread posts once it is done with the connection. Only a connection that posted a
    // request gets one, hence the request first.
    a[0]!.send(get('/first'));
    expect((await a[0]!.responses(1))[0]?.body.toString()).toBe('GET /first');
    const first = s.requests.find((r) => r.path === '/first')!.conn;
    a[0]!.destroy();
    await eventually(() => s.closed.includes(first), 'one of 127.0.0.1 gone');
    const again = await open(s.door.port);
    again.send(get('/again'));
    expect((await again.responses(1))[0]?.body.toString()).toBe('GET /again');
  });

  it('with auth on, keeps the reserve for connections that presented a valid token', async () => {
    // 4 slots, 2 reserved: unauthenticated connections hold at most 2.
    const s = start({ maxConnections: 4, reserved: 2, authRequired: true, firstRequestTimeoutMs: 60_000 });
    const u1 = await open(s.door.port);
    const u2 = await open(s.door.port);
    u1.send(get('/u1'));
    u2.send(get('/u2'));
    await s.arrived(2); // busy: neither can be evicted
    await eventually(() => s.door.stats().unauthenticated === 2, 'two unauthenticated');
    const u3 = await open(s.door.port);
    expect(await u3.closedWithin(10_000)).toBe(true);
    expect((await u3.responses(1))[0]!.body.toString()).toContain('http.reservedConnections (2)');
    expect(s.door.stats().rejectedReserve).toBe(1);
    // JavaScript found a valid token on u1 (auth.ts): it leaves the unauthenticated pool.
    s.door.authenticate(s.requests[0]!.conn);
    await eventually(() => s.door.stats().unauthenticated === 1, 'u1 authenticated');
    const u4 = await open(s.door.port);
    u4.send(get('/u4'));
    await s.arrived(3);
    expect(u4.isClosed).toBe(false);
    for (const r of s.requests) s.door.respond(r.id, 204, {});
    await eventually(() => s.door.stats().inFlight === 0, 'answered');
  });

  it('with auth on, closes an unauthenticated connection idle for firstRequestTimeout; an authenticated one stays', async () => {
    const s = start(
      { authRequired: true, reserved: 1, firstRequestTimeoutMs: 400, idleTimeoutMs: 60_000 },
      echo,
    );
    const anon = await open(s.door.port);
    const known = await open(s.door.port);
    anon.send(get('/a'));
    known.send(get('/k'));
    await s.arrived(2);
    s.door.authenticate(s.requests.find((r) => r.path === '/k')!.conn);
    await anon.responses(1);
    await known.responses(1);
    expect(await anon.closedWithin(10_000)).toBe(true);
    await eventually(() => s.door.stats().firstRequestTimeouts === 1, 'counted');
    expect(known.isClosed).toBe(false);
  });

  const post = (path: string, bytes: number) =>
    `POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Length: ${bytes}\r\n\r\n${'x'.repeat(bytes)}`;
  /** Gives the I/O threads time to read (and post) whatever they would: nothing more arrives after. */
  const settle = () => new Promise((r) => setTimeout(r, 500));

  it('with auth on, hands on one request at a time from a connection without a valid token', async () => {
    const s = start({ authRequired: true, reserved: 1, firstRequestTimeoutMs: 60_000 });
    const c = await open(s.door.port);
    c.send(Array.from({ length: 4 }, (_, i) => post(`/s${i}`, 100_000)).join(''));
    await s.arrived(1);
    await settle();
    // The other three wait in the socket, not in the door: a stranger holds one body at most.
    expect(s.requests.map((r) => r.path)).toEqual(['/s0']);
    expect(s.door.stats().postedBodyBytes).toBe(100_000);
    s.door.respond(s.requests[0]!.id, 401, {});
    await s.arrived(2);
    await settle();
    expect(s.requests.length).toBe(2);
    // JavaScript found a valid token on it (auth.ts): the rest are read at once.
    s.door.authenticate(s.requests[1]!.conn);
    await s.arrived(4);
    expect(s.requests.map((r) => r.path)).toEqual(['/s0', '/s1', '/s2', '/s3']);
    for (const r of s.requests.slice(1)) s.door.respond(r.id, 204, {});
    expect((await c.responses(4)).map((r) => r.status)).toEqual([401, 204, 204, 204]);
    await eventually(() => s.door.stats().postedBodyBytes === 0, 'bodies released');
  });

  it('holds at most maxPostedBodyBytes of unanswered bodies per connection (one body past it)', async () => {
    const s = start({ maxPostedBodyBytes: 1_000_000 });
    const cs = await Promise.all([1, 2, 3, 4].map(() => open(s.door.port)));
    for (const [i, c] of cs.entries()) {
      c.send(Array.from({ length: 8 }, (_, j) => post(`/c${i}/${j}`, 600_000)).join(''));
    }
    await s.arrived(8);
    await settle();
    // 600 kB posted is under the window, 1.2 MB is past it: two per connection, not maxInFlight (16).
    expect(s.requests.length).toBe(8);
    for (let i = 0; i < 4; i++) expect(s.requests.filter((r) => r.path.startsWith(`/c${i}/`)).length).toBe(2);
    expect(s.door.stats().postedBodyBytes).toBe(8 * 600_000);
    // Each answer written lets the next body in; all 32 arrive, in order per connection.
    let answered = 0;
    while (answered < 32) {
      await s.arrived(Math.min(32, answered + 1));
      for (const r of s.requests.slice(answered)) s.door.respond(r.id, 204, {});
      answered = s.requests.length;
      expect(s.door.stats().postedBodyBytes).toBeLessThanOrEqual(4 * 1_200_000);
    }
    for (let i = 0; i < 4; i++) {
      expect(s.requests.filter((r) => r.path.startsWith(`/c${i}/`)).map((r) => r.body.length)).toEqual(
        Array(8).fill(600_000),
      );
    }
    await Promise.all(cs.map((c) => c.responses(8)));
    await eventually(() => s.door.stats().postedBodyBytes === 0, 'bodies released');
  });

  it('disconnects a client that sends more than maxInFlight requests in one go', async () => {
    const s = start({ maxInFlight: 4 });
    const c = await open(s.door.port);
    c.send(Array.from({ length: 10 }, (_, i) => get(`/p${i}`)).join(''));
    expect(await c.closedWithin(10_000)).toBe(true);
    expect(s.door.stats().pipelineCuts).toBe(1);
    // One that sends exactly the bound is held, not cut.
    const ok = await open(s.door.port);
    ok.send(Array.from({ length: 4 }, (_, i) => get(`/q${i}`)).join(''));
    await eventually(() => s.requests.filter((r) => r.path.startsWith('/q')).length === 4, 'four read');
    expect(ok.isClosed).toBe(false);
    for (const r of s.requests.filter((r) => r.path.startsWith('/q'))) s.door.respond(r.id, 204, {});
    expect((await ok.responses(4)).map((r) => r.status)).toEqual([204, 204, 204, 204]);
  });

  it("tells JavaScript when an unanswered request's connection goes away; a late answer is dropped", async () => {
    const s = start();
    const c = await open(s.door.port);
    c.send(get('/gone'));
    const [req] = await s.arrived(1);
    c.destroy();
    await eventually(() => s.aborted.length === 1, 'the abort is reported');
    expect(s.aborted[0]?.id).toBe(req!.id);
    s.door.respond(req!.id, 200, {}, Buffer.from('too late'));
    await eventually(() => s.door.stats().pinnedBuffers === 0, 'the late answer is released');
    expect(s.door.stats()).toMatchObject({ inFlight: 0, connectionsOpen: 0 });
  });

  it('takes request bodies (Content-Length, chunked, after 100-continue) and refuses one over maxBodyBytes with 413', async () => {
    const s = start({ maxBodyBytes: 64 }, (door, req) => door.respond(req.id, 200, {}, req.body));
    const c = await open(s.door.port);
    c.send('POST /v1/invalidate HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{"a":"b c"}');
    c.send(
      'POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: x\r\n\r\n',
    );
    const [a, b] = await c.responses(2);
    expect(a?.body.toString()).toBe('{"a":"b c"}');
    expect(b?.body.toString()).toBe('abcde');
    c.send('POST /y HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    const [, , cont] = await c.responses(3);
    expect(cont?.status).toBe(100);
    c.send('body');
    expect((await c.responses(4))[3]?.body.toString()).toBe('body');
    c.send('POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n');
    const big = (await c.responses(5))[4];
    expect(big?.status).toBe(413);
    expect(JSON.parse(big!.body.toString()).code).toBe('TOO_LARGE');
    expect(await c.closedWithin(10_000)).toBe(true);
  });

  it('answers HEAD with Content-Length and no body, and closes HTTP/1.0 connections after the answer', async () => {
    const s = start({}, (door, req) =>
      req.method === 'HEAD'
        ? door.respond(req.id, 200, {}, [], { headOnly: true, contentLength: 1234 })
        : echo(door, req),
    );
    const c = await open(s.door.port);
    c.send('HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n' + get('/after-head'));
    const res = await new Promise<Buffer>((resolve) => {
      let all = Buffer.alloc(0);
      c.sock.on('data', (d: Buffer) => {
        all = Buffer.concat([all, d]);
        if (all.includes('GET /after-head')) resolve(all);
      });
    });
    // The HEAD answer says 1234 bytes and sends none: the next answer follows its head directly.
    expect(res.toString('latin1')).toMatch(
      /^HTTP\/1\.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP\/1\.1 200 OK\r\n/,
    );
    const old = await open(s.door.port);
    old.send('GET /old HTTP/1.0\r\n\r\n');
    expect((await old.responses(1))[0]?.headers.connection).toBe('close');
    expect(await old.closedWithin(10_000)).toBe(true);
  });

  it('spreads connections over its threads (SO_REUSEPORT) and serves them all', async () => {
    const s = start({ threads: 2 }, echo);
    const clients = await Promise.all(Array.from({ length: 40 }, () => open(s.door.port)));
    clients.forEach((c, i) => {
      c.send(get(`/${i}`));
    });
    const answers = await Promise.all(clients.map((c) => c.responses(1)));
    expect(answers.map((a) => a[0]?.body.toString())).toEqual(clients.map((_, i) => `GET /${i}`));
    // A request id carries its thread's index in bits 48 and up.
    const threads = new Set(s.requests.map((r) => Math.floor(r.id / 2 ** 48)));
    expect([...threads].sort()).toEqual([0, 1]);
  });

  it('refuses answers that would corrupt the framing', () => {
    const s = start();
    expect(() => s.door.respond(1, 200, { 'X-A': 'a\r\nSet-Cookie: x' })).toThrow(/control character/);
    expect(() => s.door.respond(1, 200, { 'Content-Length': '5' })).toThrow(/written by the door/);
    expect(() => s.door.respond(1, 200, { 'Bad Name': 'x' })).toThrow(/invalid header name/);
    expect(() => s.door.respond(1, 100, {})).toThrow(/200\.\.599/);
    expect(() => s.door.respond(1, 204, {}, Buffer.from('x'))).toThrow(/no body/);
  });

  it('returns every counter to zero after a load ends', async () => {
    // Eight pipelined at once, the bound: held and answered, not cut.
    const s = start({ threads: 2, maxInFlight: 8 }, echo);
    const clients = await Promise.all(Array.from({ length: 20 }, () => open(s.door.port)));
    for (const c of clients) c.send([1, 2, 3, 4, 5, 6, 7, 8].map((i) => get(`/${i}`)).join(''));
    await Promise.all(clients.map((c) => c.responses(8)));
    for (const c of clients) c.destroy();
    await eventually(() => s.door.stats().connectionsOpen === 0, 'all connections closed');
    await eventually(() => s.door.stats().pinnedBuffers === 0, 'all answers released');
    expect(s.door.stats()).toMatchObject({ requests: 160, responses: 160, inFlight: 0, bufferedBytes: 0 });
  });
});
