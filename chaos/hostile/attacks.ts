/**
 * The attacks of issue 12 (items 1–5) and a few more, each a function that
 * opens its connections from the attacker's address, does its damage, holds
 * for `holdMs` and hands its sockets back for the scenario to reset. Every
 * attack talks to a public door only: HTTP, RESP or the transport.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { encodeHello } from '../../src/transport/messages.js';
import { FrameType } from '../../src/transport/protocol.js';
import { rawFrame } from '../../test/transport/raw-frame.js';
import { sleep } from '../latency.js';
import type { Attack } from '../scenario.js';
import { type Opened, openConnections } from './sockets.js';

export interface AttackEnv {
  readonly http: number;
  readonly resp: number;
  readonly transport: number;
  /** The attacker's source address. */
  readonly from: string;
  readonly holdMs: number;
  readonly tokens: { readonly read: string; readonly other: string; readonly admin: string };
  readonly key: string;
  readonly size: number;
  readonly bigKey: string;
  readonly bigSize: number;
  readonly urlPath: (key: string) => string;
}

export interface AttackOutcome {
  /** Hostile connections opened (the divisor of RSS growth per connection). */
  readonly connections: number;
  readonly refused: number;
  readonly sockets: Socket[];
  /** Sockets the node closed while the attack held them; null where the attack never reads (unseen). */
  readonly closedByNode: number | null;
  readonly figures: [metric: string, unit: string, value: number][];
  readonly notes: string[];
}

export function label(a: Attack): string {
  switch (a.attack) {
    case 'admin-bypass':
      return 'admin routes with target tricks (#, %23, //, ;, case, absolute form)';
    case 'pipelined-ranges':
      return `${a.connections} conns × ${a.pipelined} pipelined ${a.rangeBytes / 2 ** 20} MiB ranges, never read`;
    case 'pipelined-metrics':
      return `${a.connections} conns × ${a.pipelined} pipelined GET /metrics, no token`;
    case 'transport-hello-payload':
      return `${a.connections} transport HELLOs announcing ${a.payloadBytes / 2 ** 20} MiB, payload − 1 byte sent`;
    case 'idle-connections':
      return `${a.connections} idle ${a.door.toUpperCase()} connections`;
    case 'slowloris':
      return `slowloris: ${a.connections} conns, a header byte every ${a.byteEveryMs} ms`;
    case 'many-ranges':
      return `${a.ranges} ranges in one request, up to ${a.requests} requests`;
    case 'unread-range':
      return `${a.connections} conns × a ${a.rangeBytes / 2 ** 30} GiB range, never read`;
    case 'resp-framing':
      return `RESP framing abuse, ${a.connections} conns`;
    case 'transport-garbage':
      return `transport garbage, ${a.connections} conns`;
  }
}

export async function runAttack(a: Attack, env: AttackEnv): Promise<AttackOutcome> {
  switch (a.attack) {
    case 'admin-bypass':
      return await adminBypass(env);
    case 'pipelined-ranges': {
      // Ranges spread over the 1 GiB object, so the chunks they pin are not shared in the cache.
      const o = await openConnections(a.connections, env.http, env.from, (s) => {
        let reqs = '';
        for (let i = 0; i < a.pipelined; i++) {
          const start = randomInt(Math.max(1, env.bigSize - a.rangeBytes));
          reqs +=
            `GET ${env.urlPath(env.bigKey)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.tokens.read}\r\n` +
            `Range: bytes=${start}-${start + a.rangeBytes - 1}\r\n\r\n`;
        }
        s.write(reqs); // and never read: no 'data' listener, the socket stays paused
      });
      return await hold(o, env, false);
    }
    case 'pipelined-metrics': {
      const scrape = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(a.pipelined);
      const o = await openConnections(a.connections, env.http, env.from, (s) => {
        s.write(scrape);
        s.resume(); // read and discard: every scrape rendered is CPU the node spends
      });
      return await hold(o, env, true);
    }
    case 'transport-hello-payload': {
      const header = rawFrame({ type: FrameType.HELLO, meta: helloMeta(), payloadLength: a.payloadBytes });
      const zeros = Buffer.alloc(2 ** 20);
      const o = await openConnections(a.connections, env.transport, env.from, (s) => {
        s.write(header);
        for (let left = a.payloadBytes - 1; left > 0; left -= zeros.length) {
          s.write(left >= zeros.length ? zeros : zeros.subarray(0, left));
        }
        s.resume();
      });
      return await hold(o, env, true);
    }
    case 'idle-connections': {
      const port = { http: env.http, resp: env.resp, transport: env.transport }[a.door];
      return await hold(await openConnections(a.connections, port, env.from, (s) => s.resume()), env, true);
    }
    case 'slowloris': {
      const o = await openConnections(a.connections, env.http, env.from, (s) => {
        s.write(`GET ${env.urlPath(env.key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `);
        s.resume();
      });
      const drip = setInterval(() => {
        for (const s of o.sockets) if (!s.destroyed) s.write('a');
      }, a.byteEveryMs);
      try {
        return await hold(o, env, true);
      } finally {
        clearInterval(drip);
      }
    }
    case 'many-ranges':
      return await manyRanges(a.ranges, a.requests, env);
    case 'unread-range': {
      const o = await openConnections(a.connections, env.http, env.from, (s) => {
        // A different stretch per connection: nothing shared between them in the cache.
        const start = randomInt(Math.max(1, env.bigSize - a.rangeBytes + 1));
        s.write(
          `GET ${env.urlPath(env.bigKey)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.tokens.read}\r\n` +
            `Range: bytes=${start}-${Math.min(env.bigSize, start + a.rangeBytes) - 1}\r\n\r\n`,
        );
      });
      return await hold(o, env, false);
    }
    case 'resp-framing':
      return await hold(
        await openConnections(a.connections, env.resp, env.from, (s, i) => {
          s.write(RESP_ABUSE[i % RESP_ABUSE.length]!());
          if (i % RESP_ABUSE.length !== PIPELINED_PINGS) s.resume(); // the PINGs are never read
        }),
        env,
        true,
        [`patterns: ${RESP_ABUSE_NAMES.join('; ')}`],
      );
    case 'transport-garbage':
      return await hold(
        await openConnections(a.connections, env.transport, env.from, (s, i) => {
          s.write(TRANSPORT_GARBAGE[i % TRANSPORT_GARBAGE.length]!());
          s.resume();
        }),
        env,
        true,
        [`patterns: ${TRANSPORT_GARBAGE_NAMES.join('; ')}`],
      );
  }
}

/**
 * Holds the connections for `holdMs`. `reads`: the attack reads (and drops) what the node
 * sends, so a close by the node is seen; a socket that is never read never sees the close.
 */
async function hold(o: Opened, env: AttackEnv, reads: boolean, notes: string[] = []): Promise<AttackOutcome> {
  await sleep(env.holdMs);
  return {
    connections: o.sockets.length + o.failed,
    refused: o.failed,
    sockets: o.sockets,
    closedByNode: reads ? o.closedByServer() : null,
    figures: [],
    notes,
  };
}

function helloMeta(version = 1): Buffer {
  return encodeHello({
    minVersion: version,
    maxVersion: version,
    features: 0,
    maxFrameBytes: 16 << 20,
    maxInFlight: 256,
    nodeId: 'chaos-attacker',
    extensions: [],
  });
}

/** One raw HTTP exchange on a new connection: the status of the answer (0: none). */
function rawHttp(
  port: number,
  from: string,
  text: string,
  timeoutMs = 10_000,
): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    let got = '';
    let bytes = 0;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0), bytes });
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('connect', () => s.write(text));
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      if (got.length < 64) got += d.toString('latin1');
    });
    s.on('error', done);
    s.on('close', done);
  });
}

async function adminBypass(env: AttackEnv): Promise<AttackOutcome> {
  // A prefix naming one object already cached: a prefetch that gets through costs the node nothing.
  const prefetch = JSON.stringify({ container: 'models', prefix: env.key });
  const invalidate = JSON.stringify({ container: 'models', key: env.key });
  const forms: [string, string][] = [
    ['/v1/prefetch#x', prefetch],
    ['/v1/prefetch?#x', prefetch],
    ['/v1/prefetch?x=1#y', prefetch],
    ['/v1/prefetch%23x', prefetch],
    ['/v1/prefetch/', prefetch],
    ['/v1//prefetch', prefetch],
    ['//v1/prefetch', prefetch],
    ['/v1/./prefetch', prefetch],
    ['/v1/x/../prefetch', prefetch],
    ['/V1/PREFETCH', prefetch],
    ['/v1/prefetch;x', prefetch],
    ['/v1/pre%66etch', prefetch],
    [`http://127.0.0.1:${env.http}/v1/prefetch#x`, prefetch],
    ['/v1/invalidate#x', invalidate],
    ['/v1/invalidate?#', invalidate],
    ['/v1/invalidate/', invalidate],
  ];
  const tokens: [string, string | null][] = [
    ['read token', env.tokens.read],
    ['token of another container', env.tokens.other],
    ['no token', null],
  ];
  let tried = 0;
  let accepted = 0;
  const notes: string[] = [];
  for (const [target, body] of forms) {
    for (const [who, token] of tokens) {
      const r = await rawHttp(
        env.http,
        env.from,
        `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `${token ? `Authorization: Bearer ${token}\r\n` : ''}Content-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
      tried++;
      if (r.status >= 200 && r.status < 300) {
        accepted++;
        notes.push(`POST ${target} with a ${who}: ${r.status}`);
      }
    }
  }
  // The control: the admin token on the canonical path is accepted (the probe reaches the route at all).
  const control = await rawHttp(
    env.http,
    env.from,
    `POST /v1/prefetch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ${env.tokens.admin}\r\n` +
      `Content-Length: ${Buffer.byteLength(prefetch)}\r\nConnection: close\r\n\r\n${prefetch}`,
  );
  if (control.status !== 202)
    notes.push(`control: the admin token got ${control.status} on POST /v1/prefetch`);
  return {
    connections: tried + 1,
    refused: 0,
    sockets: [],
    closedByNode: null,
    figures: [
      ['admin requests tried without an admin token', 'count', tried],
      ['admin requests accepted without an admin token', 'count', accepted],
    ],
    notes,
  };
}

async function manyRanges(ranges: number, requests: number, env: AttackEnv): Promise<AttackOutcome> {
  const spec = Array.from({ length: ranges }, (_, i) => `${2 * i}-${2 * i}`).join(',');
  const statuses = new Map<number, number>();
  let answered = 0;
  let sent = 0;
  const t0 = performance.now();
  // 4 at a time, until `requests` are done or the hold time is up (a node that stops
  // answering must not stretch the attack past it).
  const lane = async () => {
    while (sent < requests && performance.now() - t0 < env.holdMs) {
      sent++;
      const r = await rawHttp(
        env.http,
        env.from,
        `GET ${env.urlPath(env.key)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${env.tokens.read}\r\n` +
          `Range: bytes=${spec}\r\nConnection: close\r\n\r\n`,
        Math.max(1000, env.holdMs - (performance.now() - t0)),
      );
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      answered += r.bytes;
    }
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  const ms = (performance.now() - t0) / Math.max(1, sent);
  await sleep(Math.max(0, env.holdMs - (performance.now() - t0)));
  return {
    connections: sent,
    refused: 0,
    sockets: [],
    closedByNode: null,
    figures: [
      ['requests sent', 'count', sent],
      ['time per request', 'ms', ms],
      ['bytes answered per request', 'bytes', answered / Math.max(1, sent)],
    ],
    notes: [`answers: ${[...statuses].map(([s, n]) => `${s || 'none'}: ${n}`).join(', ')}`],
  };
}

const RESP_ABUSE_NAMES = [
  'array of 1,048,576 announced, nothing sent',
  'bulk of 512 MiB announced, 64 KiB sent',
  'negative bulk length',
  'inline command of 256 KiB without a newline',
  'nested arrays',
  '20,000 pipelined PINGs before AUTH, never read',
  '64 KiB of random bytes',
  'bulk string at top level',
];
const PIPELINED_PINGS = 5;
const RESP_ABUSE: (() => Buffer | string)[] = [
  () => '*1048576\r\n',
  () => `*2\r\n$3\r\nGET\r\n$536870912\r\n${'a'.repeat(65536)}`,
  () => '*2\r\n$3\r\nGET\r\n$-5\r\n',
  () => `PING ${'a'.repeat(256 * 1024)}`,
  () => '*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n',
  () => 'PING\r\n'.repeat(20_000),
  () => randomBytes(65536),
  () => '$4\r\nPING\r\n',
];

const TRANSPORT_GARBAGE_NAMES = [
  '64 KiB of random bytes',
  'wrong magic',
  'HELLO with a broken header CRC',
  'HELLO of version 99 only',
  'meta length 2^31',
  'READ_CHUNK before HELLO',
  'HELLO, then 1 MiB of random bytes',
  'half a header, then silence',
];
const TRANSPORT_GARBAGE: (() => Buffer)[] = [
  () => randomBytes(65536),
  () => {
    const b = rawFrame({ type: FrameType.HELLO, meta: helloMeta() });
    b[0] = 0x58;
    return b;
  },
  () => rawFrame({ type: FrameType.HELLO, meta: helloMeta(), breakHeaderCrc: true }),
  () => rawFrame({ type: FrameType.HELLO, version: 99, meta: helloMeta(99) }),
  () => {
    const b = rawFrame({ type: FrameType.HELLO, meta: Buffer.alloc(0) });
    b.writeUInt32LE(2 ** 31, 12);
    return b;
  },
  () => rawFrame({ type: FrameType.READ_CHUNK, requestId: 1, meta: randomBytes(64) }),
  () => Buffer.concat([rawFrame({ type: FrameType.HELLO, meta: helloMeta() }), randomBytes(2 ** 20)]),
  () => rawFrame({ type: FrameType.HELLO, meta: helloMeta() }).subarray(0, 16),
];
