/**
 * LeaseHolder against a real home over the real transport: a TransportServer
 * whose handler.leases is a LeaseHome, and a TransportClient whose onRequest
 * is the holder's (as src/cluster/cluster.ts and src/coherence/coherence.ts
 * wire them). The holder's clock is injected (its lease timing is all on its
 * own clock); the home runs on the real one, with terms far longer than a test.
 */
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseHolder } from '../../src/coherence/holder.js';
import { LeaseHome } from '../../src/coherence/home.js';
import { HomeLeases } from '../../src/coherence/home-leases.js';
import type { LeaseGrantResponse } from '../../src/coherence/lease-messages.js';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { CoherenceMetrics } from '../../src/coherence/metrics.js';
import type { BindingSink } from '../../src/coherence/resolver.js';
import { CoherenceFrame, serveHolder, serveHome } from '../../src/coherence/wire.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import type { ObjectName } from '../../src/origin/origin.js';
import { TransportClient, TransportServer } from '../../src/transport/index.js';
import { Messages } from '../../src/transport/rpc.js';

const TERM = 10_000; // granted by the home (its binding term is longer)
const MARGIN = 1_000;
const RHO = 0.01;
const name = { container: 'c', key: 'm/f' };
const quiet = { info() {}, warn() {} };
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Options {
  isHome?: (n: ObjectName) => boolean;
  /** Homes of names (default: the server); null: this process. */
  homeOf?: (n: ObjectName, address: string) => string | null;
  available?: boolean;
  originFallback?: boolean;
}

async function setup(o: Options = {}) {
  const root = mkdtempSync(join(tmpdir(), 'wc-holder-'));
  mkdirSync(join(root, 'c', 'm'), { recursive: true });
  const put = (text: string) => {
    writeFileSync(join(root, 'c', 'tmp'), text);
    renameSync(join(root, 'c', 'tmp'), join(root, 'c', 'm', 'f')); // atomic replace: a new version
  };
  put('v1');
  const origin = new FsOrigin({ root });

  // The home: settled from the start (as if it had been running for a while).
  let skew = 0;
  const homeNow = () => performance.now() + skew;
  const leases = new HomeLeases({ termMs: TERM, driftRatio: RHO, settleMs: (1 + RHO) * TERM, now: homeNow });
  skew += (1 + RHO) * TERM;
  const homeMetrics = new Metrics();
  const hm = new CoherenceMetrics(homeMetrics, () => leases.size);
  const home = new LeaseHome({
    table: new LeaseTable({ origin, termMs: 60_000, now: homeNow }),
    leases,
    termMs: TERM,
    driftRatio: RHO,
    isHome: o.isHome ?? (() => true),
    metrics: hm,
    log: silent,
    retransmitMs: 200,
    now: homeNow,
  });
  /** What the holder published (its BindingSink) and when the home saw acknowledgements, in order. */
  const events: string[] = [];
  const sink: BindingSink = {
    bind: (info, validForMs) => events.push(`bind ${info.etag} for ${validForMs} ms`),
    unbind: (n) => events.push(`unbind ${n.container}/${n.key}`),
    unbindPrefix: (p) => events.push(`unbindPrefix '${p}'`),
  };
  /** While set, a grant the home issued is held here before it is sent (a slow network). */
  let gate: Promise<void> | null = null;
  /** While set, a lease request is held here before the home sees it (a slow network). */
  let requestGate: Promise<void> | null = null;
  const issued: LeaseGrantResponse[] = [];
  const served = new Messages();
  serveHome(served, {
    lease: async (...args) => {
      if (requestGate) await requestGate;
      const a = await home.lease(...args);
      issued.push(a);
      if (gate) await gate;
      return a;
    },
    ack: (a, h) => home.ack(a, h),
    invalidate: (t, s) => home.invalidate(t, s),
  });
  const server = await TransportServer.listen({
    host: '127.0.0.1',
    port: 0,
    logger: quiet,
    handler: {
      readChunk: async () => {
        throw new Error('unused');
      },
      stat: (n) => origin.stat(n),
    },
    messages: served,
  });
  const address = `127.0.0.1:${server.address.port}`;

  // The holder, on its own connection to the home (one, so the order on it is the order sent).
  let now = 0;
  const metrics = new Metrics();
  const cm = new CoherenceMetrics(metrics, () => 0);
  let holder: LeaseHolder | undefined;
  const client = new TransportClient({
    host: '127.0.0.1',
    port: server.address.port,
    timeoutMs: 5000,
    connections: 1,
    nodeId: 'holder-1',
    logger: quiet,
  });
  // serveHolder sends the LEASE_REVOKE response (the acknowledgement) once this returns.
  serveHolder(client.messages, (r) => {
    holder!.revoked(r);
    events.push('acknowledged');
  });
  const failed: string[] = [];
  let originStats = 0;
  const holderOrigin = new FsOrigin({ root });
  const realStat = holderOrigin.stat.bind(holderOrigin);
  holderOrigin.stat = (n, opts) => {
    originStats++;
    return realStat(n, opts);
  };
  holder = new LeaseHolder({
    table: new LeaseTable({ origin: holderOrigin, termMs: 60_000 }),
    homeOf: (n) => (o.homeOf ? o.homeOf(n, address) : address),
    client: (a) => {
      expect(a).toBe(address);
      return client;
    },
    available: () => o.available ?? true,
    failed: (a) => failed.push(a),
    origin: holderOrigin,
    originFallback: o.originFallback ?? true,
    invalidateTimeoutMs: 10_000,
    marginMs: MARGIN,
    metrics: cm,
    log: silent,
    now: () => now,
    sink,
  });
  const sent = vi.spyOn(client, 'request');
  const asks = (type: number) => sent.mock.calls.filter((c) => c[0] === type);
  let closed = false;
  const closeServer = async () => {
    if (closed) return;
    closed = true;
    home.close();
    await server.close();
  };
  cleanups.push(async () => {
    await client.close();
    await closeServer();
  });
  return {
    holder,
    home,
    events,
    put,
    issued,
    failed,
    closeServer,
    setGate: (g: Promise<void> | null) => (gate = g),
    setRequestGate: (g: Promise<void> | null) => (requestGate = g),
    at: (t: number) => (now = t),
    originStats: () => originStats,
    root,
    /** The origin's current version, asked without counting (the home's own origin). */
    current: () => origin.stat(name),
    /** LEASE_GRANT / LEASE_RENEW requests the holder sent. */
    grantsSent: () => asks(CoherenceFrame.LEASE_GRANT).length,
    renewalsSent: () => asks(CoherenceFrame.LEASE_RENEW).length,
    /** Every request sent so far has been answered (or failed). */
    settled: () => Promise.allSettled(sent.mock.results.map((r) => r.value)),
    home_: (c: 'grants' | 'renewals', result = 'ok') => homeMetrics.total(hm[c], { result }),
    staleReads: () => homeMetrics.total(hm.staleReads),
    holder_: (c: 'revokesReceived' | 'holderFallbacks' | 'staleReads', labels?: Record<string, string>) =>
      metrics.total(cm[c], labels),
  };
}

describe('LeaseHolder over the transport', () => {
  it('first resolve takes a lease; later ones use it; renews at ¾ term; asks anew after term − margin', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    expect(v1).toMatchObject({ ...name, size: 2 });
    expect(s.grantsSent()).toBe(1);
    expect(await s.home_('grants')).toBe(1);
    expect(s.holder.size).toBe(1);

    s.at(100);
    expect(await s.holder.resolve(name)).toBe(v1);
    s.at(0.75 * TERM - MARGIN - 1);
    expect(await s.holder.resolve(name)).toBe(v1);
    expect(s.grantsSent() + s.renewalsSent()).toBe(1); // no request: the lease was used

    // From ¾ of the term (minus the margin) the lease is still used, and renewed in the background.
    const renewAt = 0.75 * TERM - MARGIN;
    s.at(renewAt);
    expect(await s.holder.resolve(name)).toBe(v1);
    expect(s.renewalsSent()).toBe(1);
    await s.settled();
    expect(await s.home_('renewals')).toBe(1);
    expect(s.grantsSent()).toBe(1);

    // The renewal's term counts from its own send time: past the first lease's end, still in use.
    s.at(TERM - MARGIN + 500);
    expect(await s.holder.resolve(name)).toBe(v1);
    expect(s.grantsSent() + s.renewalsSent()).toBe(2);

    // term − margin after the renewal's send: no longer used; a fresh LEASE_GRANT.
    s.at(renewAt + TERM - MARGIN - 1);
    expect(await s.holder.resolve(name)).toBe(v1);
    await s.settled(); // (renewed once more: past ¾ of the renewed lease)
    expect(s.renewalsSent()).toBe(2);
    const renewedAt = renewAt + TERM - MARGIN - 1;
    s.at(renewedAt + TERM - MARGIN);
    expect(await s.holder.resolve(name)).toBe(v1); // same version: the same object
    expect(s.grantsSent()).toBe(2);
    expect(await s.home_('grants')).toBe(2);
    expect(await s.home_('renewals')).toBe(2);
  });

  it('an invalidation at the home revokes the lease over the holder’s connection; the next resolve gets the new version', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    s.put('v2!');
    s.at(10);
    expect(await s.holder.resolve(name)).toBe(v1); // the lease says v1 until revoked
    const r = await s.home.invalidateName(name);
    expect(r).toMatchObject({ acked: 1, expired: 0, info: { size: 3 } });
    expect(await s.holder_('revokesReceived')).toBe(1);
    expect(s.holder.size).toBe(0);
    const v2 = await s.holder.resolve(name); // same holder clock: the lease is gone, not over
    expect(v2.size).toBe(3);
    expect(v2.etag).not.toBe(v1.etag);
    expect(s.grantsSent()).toBe(2);
  });

  it('a native fast-path answer from a binding older than a revoke, used after it, is a stale read', async () => {
    const s = await setup();
    s.at(0);
    const v1 = await s.holder.resolve(name);
    s.put('v2!');
    s.at(10);
    expect(await s.home.invalidateName(name)).toMatchObject({ acked: 1 }); // revoked at holder time 10
    // What the I/O threads report (NativeFastPath.checkServed): bound at 5, used at 9 (before the revoke) or 20.
    s.holder.checkServed('c/m/f', v1.etag, 5, 9);
    s.holder.checkServed('c/m/f', v1.etag, 15, 20); // bound after the revoke (a new lease)
    expect(await s.holder_('staleReads')).toBe(0);
    s.holder.checkServed('c/m/f', v1.etag, 5, 20); // the revoked binding still answering
    expect(await s.holder_('staleReads')).toBe(1);
  });

  it('publishes each lease for term − margin, and takes it back before acknowledging a revoke', async () => {
    const s = await setup();
    s.at(0);
    const v1 = await s.holder.resolve(name);
    expect(s.events).toEqual([`bind ${v1.etag} for ${TERM - MARGIN} ms`]);
    s.at(5_000);
    await s.holder.resolve(name); // within the lease: nothing new published
    expect(s.events).toHaveLength(1);
    s.put('v2!');
    expect(await s.home.invalidateName(name)).toMatchObject({ acked: 1 });
    // The native binding went before the acknowledgement reached the home.
    expect(s.events.slice(1)).toEqual(['unbind c/m/f', 'acknowledged']);
    s.holder.forget(v1);
    expect(s.events.at(-1)).toBe('unbind c/m/f');
    await s.holder.releaseAll(1000);
    expect(s.events.at(-1)).toBe("unbindPrefix ''");
  });

  it('a grant in flight when the revoke arrives is abandoned, not installed', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    s.at(TERM); // the lease is over on the holder's clock: the next resolve asks
    let release!: () => void;
    s.setGate(new Promise<void>((r) => (release = r)));
    const resolving = s.holder.resolve(name);
    // The home granted v1 (before any write); the grant is held on its way back.
    await vi.waitFor(() => expect(s.issued).toHaveLength(2), { timeout: 5000, interval: 5 });
    expect(s.issued[1]).toMatchObject({ status: 'ok', version: { etag: v1.etag } });
    s.put('v2!');
    // The revoke overtakes the grant; the holder acknowledges with its request still in flight.
    expect(await s.home.invalidateName(name)).toMatchObject({ acked: 1, expired: 0 });
    release();
    const got = await resolving;
    expect(got.size).toBe(3); // never v1: the old grant was dropped and the holder asked again
    expect(s.issued).toHaveLength(3);
    expect(s.grantsSent()).toBe(3);
    s.at(TERM + 1);
    expect(await s.holder.resolve(name)).toBe(got); // the lease installed is the new one
    expect(s.grantsSent()).toBe(3);
  });

  it('a home that cannot be reached: the origin answers that read, nothing is cached', async () => {
    const s = await setup();
    await s.closeServer();
    const stats = s.originStats();
    const info = await s.holder.resolve(name);
    expect(info).toMatchObject({ ...name, size: 2 });
    expect(s.originStats()).toBe(stats + 1);
    expect(s.holder.size).toBe(0);
    expect(s.failed).toHaveLength(1);
    expect(await s.holder_('holderFallbacks', { reason: 'unreachable' })).toBe(1);
    s.put('v2!');
    expect((await s.holder.resolve(name)).size).toBe(3); // asked again: nothing was cached
    expect(await s.holder_('holderFallbacks', { reason: 'unreachable' })).toBe(2);
  });

  it('a home in backoff is not asked: origin fallback without a request', async () => {
    const s = await setup({ available: false });
    expect((await s.holder.resolve(name)).size).toBe(2);
    expect(s.grantsSent()).toBe(0);
    expect(s.holder.size).toBe(0);
    expect(await s.holder_('holderFallbacks', { reason: 'unreachable' })).toBe(1);
  });

  it('a member that is not the home in its own view refuses: origin fallback, nothing cached', async () => {
    const s = await setup({ isHome: () => false });
    expect((await s.holder.resolve(name)).size).toBe(2);
    expect(s.grantsSent()).toBe(1);
    expect(s.holder.size).toBe(0);
    expect(await s.holder_('holderFallbacks', { reason: 'refused' })).toBe(1);
    expect(s.failed).toEqual([]); // refusing is not being unreachable
  });

  it('NOT_FOUND at the home is NOT_FOUND at the holder, and drops its lease', async () => {
    const s = await setup();
    await expect(s.holder.resolve({ container: 'c', key: 'missing' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(s.holder.size).toBe(0);
    expect(await s.holder_('holderFallbacks')).toBe(0);
  });

  it('names this process is home of resolve through its own table, without a lease', async () => {
    const s = await setup({ homeOf: () => null });
    expect((await s.holder.resolve(name)).size).toBe(2);
    expect(s.grantsSent()).toBe(0);
    expect(s.holder.size).toBe(0);
  });

  it('without origin fallback, no lease means the read fails, and the origin is never asked', async () => {
    const s = await setup({ originFallback: false });
    await s.closeServer();
    const stats = s.originStats();
    await expect(s.holder.resolve(name)).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
    expect(s.originStats()).toBe(stats);
    expect(s.holder.size).toBe(0);
  });

  it('a pinned read naming another version than the lease bypasses the lease: one origin stat, nothing cached', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    s.put('v2!');
    const v2 = await s.holder.resolve(name); // the lease still says v1
    expect(v2.etag).toBe(v1.etag);
    const fresh = await s.current();
    const stats = s.originStats();
    const pinned = await s.holder.resolve(name, undefined, fresh.etag);
    expect(pinned.etag).toBe(fresh.etag);
    expect(s.originStats()).toBe(stats + 1);
    expect(await s.holder_('holderFallbacks', { reason: 'pinned' })).toBe(1);
    expect((await s.holder.resolve(name)).etag).toBe(v1.etag); // the lease itself is unchanged
  });

  it('no lease (the home refuses): each resolution asks the origin itself, never sharing an older stat', async () => {
    const s = await setup({ isHome: () => false });
    const stats = s.originStats();
    const [a, b] = await Promise.all([s.holder.resolve(name), s.holder.resolve(name)]);
    expect(a.size).toBe(2);
    expect(b.size).toBe(2);
    expect(s.grantsSent()).toBe(1); // the lease request is shared…
    expect(s.originStats()).toBe(stats + 2); // …the origin stats are not
  });

  it('"does not exist" answered to a request sent before a caller joined it is asked again for that caller', async () => {
    const s = await setup();
    const missing = { container: 'c', key: 'm/new' };
    let release!: () => void;
    s.setGate(new Promise<void>((r) => (release = r))); // the home's answer is held in transit
    const first = s.holder.resolve(missing);
    await vi.waitFor(() => expect(s.issued).toHaveLength(1)); // the home answered notFound
    const joined = s.holder.resolve(missing); // asks after the request was sent: joins it
    s.setGate(null);
    writeFileSync(join(s.root, 'c', 'm', 'new'), 'fresh'); // created (and, say, invalidated) meanwhile
    release();
    await expect(first).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await joined).size).toBe(5); // re-asked on its own: the new object
    expect(s.grantsSent()).toBe(2);
  });

  it('releaseAll() at shutdown gives every lease back to its home', async () => {
    const s = await setup();
    await s.holder.resolve(name);
    expect(s.home.outstanding).toBe(1);
    await s.holder.releaseAll(1000);
    expect(s.holder.size).toBe(0);
    expect(s.home.outstanding).toBe(0);
  });

  it('forget() (the version vanished mid-read) asks the home to invalidate the name', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    s.put('v2!');
    s.holder.forget(v1);
    expect(s.holder.size).toBe(0);
    // The home re-resolves and revokes the lease it still counts for this holder.
    await vi.waitFor(async () => expect(await s.holder_('revokesReceived')).toBe(1), { timeout: 5000 });
    const v2 = await s.holder.resolve(name);
    expect(v2.etag).not.toBe(v1.etag);
    expect(v2.size).toBe(3);
  });

  it('forget() of a version it no longer holds keeps the current lease and asks nothing of the home', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    s.put('v2!');
    expect(await s.home.invalidateName(name)).toMatchObject({ acked: 1 });
    const v2 = await s.holder.resolve(name);
    expect(v2.etag).not.toBe(v1.etag);
    const outstanding = s.home.outstanding;
    // A peer asked for v1 and the read found it gone: v2's lease and its published binding stay.
    s.holder.forget(v1);
    expect(s.holder.size).toBe(1);
    expect(s.events.at(-1)).toBe(`bind ${v2.etag} for ${TERM - MARGIN} ms`);
    expect(await s.holder.resolve(name)).toBe(v2);
    await new Promise((r) => setTimeout(r, 50)); // an invalidation would have been asked by now
    expect(await s.holder_('revokesReceived')).toBe(1);
    expect(s.home.outstanding).toBe(outstanding);
  });

  // Regression: a LEASE_RENEW sent before the revoke but delivered after the acknowledgement is
  // not a stale read (the protocol assumes nothing about delay or order; stale reads are
  // counted by the holder, from a lease requested before the last revoke of its name).
  it('a renewal sent before the revoke but delivered after the ack is not a stale read', async () => {
    const s = await setup();
    const v1 = await s.holder.resolve(name);
    let deliver!: () => void;
    s.setRequestGate(new Promise<void>((r) => (deliver = r)));
    s.at(0.75 * TERM - MARGIN);
    expect(await s.holder.resolve(name)).toBe(v1); // legitimately v1; LEASE_RENEW(v1) leaves now
    expect(s.renewalsSent()).toBe(1);
    s.put('v2!');
    expect(await s.home.invalidateName(name)).toMatchObject({ acked: 1, expired: 0 });
    expect(s.holder.size).toBe(0); // dropped on the revoke: v1 is never used again
    s.setRequestGate(null);
    deliver(); // the delayed renewal reaches the home now
    await s.settled();
    expect((await s.holder.resolve(name)).size).toBe(3);
    expect(await s.staleReads()).toBe(0);
  });
});
