/**
 * LeaseHome: grants on the binding in force, and invalidations (re-resolve,
 * LEASE_REVOKE to every holder, answer on acks / expiry / settling). Real
 * LeaseTable and HomeLeases on one injected clock; the origin answers by hand
 * when a test needs to order an origin answer against an invalidation; the
 * holders' connections are fakes that record each LEASE_REVOKE and answer or
 * hang as told.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaseHome } from '../../src/coherence/home.js';
import { HomeLeases } from '../../src/coherence/home-leases.js';
import { decodeLeaseRevoke, LEASE_RELEASE, type LeaseRevoke } from '../../src/coherence/lease-messages.js';
import { LeaseTable } from '../../src/coherence/lease-table.js';
import { CoherenceMetrics } from '../../src/coherence/metrics.js';
import { CoherenceFrame, type HolderConnection } from '../../src/coherence/wire.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { formatName } from '../../src/origin/names.js';
import type { ObjectInfo, ObjectName, Origin } from '../../src/origin/origin.js';
import type { FrameEvent } from '../../src/transport/native.js';
import { FLAG_RESPONSE } from '../../src/transport/protocol.js';
import type { CallOptions } from '../../src/transport/rpc.js';
import { until } from '../harness/until.js';

const TERM = 1000; // lease term, on the injected clock
const BINDING = 1200; // the home's binding term
const RHO = 0.01;
const name = { container: 'c', key: 'm/f' };
const id = formatName(name);

/** An origin that answers at once from `versions`, or, while `hold` is set, when the test releases it. */
class ControlledOrigin implements Origin {
  readonly kind = 'controlled';
  readonly id = 'controlled:test';
  readonly versions = new Map<string, ObjectInfo>();
  hold = false;
  calls = 0;
  /** Held calls; release() answers with `versions` as they are then, or with the given answer. */
  readonly held: { release(info?: ObjectInfo): void; fail(err: Error): void }[] = [];

  put(n: ObjectName, etag: string): ObjectInfo {
    const info = { ...n, etag, size: etag.length, lastModified: new Date(1_700_000_000_000 + this.calls) };
    this.versions.set(formatName(n), info);
    return info;
  }

  stat(n: ObjectName): Promise<ObjectInfo> {
    this.calls++;
    const answer = (info = this.versions.get(formatName(n))) =>
      info ? Promise.resolve(info) : Promise.reject(new CacheError('NOT_FOUND', `${formatName(n)} is gone`));
    if (!this.hold) return answer();
    return new Promise((resolve, reject) =>
      this.held.push({ release: (info) => void answer(info).then(resolve, reject), fail: reject }),
    );
  }

  async revalidate(known: ObjectInfo): Promise<ObjectInfo> {
    const now = await this.stat(known);
    return now.etag === known.etag && now.size === known.size ? known : now;
  }

  read(): Promise<Buffer> {
    throw new Error('unused');
  }

  // biome-ignore lint/correctness/useYield: never lists
  async *list(): AsyncIterable<ObjectInfo> {
    throw new Error('unused');
  }

  async close(): Promise<void> {}
}

/** A holder's connection: records every LEASE_REVOKE; answers it (the ack) or lets it time out. */
class FakeHolder implements HolderConnection {
  isOpen = true;
  answer = true;
  readonly revokes: LeaseRevoke[] = [];
  constructor(readonly id: string) {}

  request(type: number, meta: Buffer, opts?: CallOptions): Promise<FrameEvent> {
    expect(type).toBe(CoherenceFrame.LEASE_REVOKE);
    this.revokes.push(decodeLeaseRevoke(meta));
    if (this.answer) return Promise.resolve(response(type));
    return new Promise((_, reject) =>
      setTimeout(() => reject(new CacheError('ORIGIN_TIMEOUT', 'no answer')), opts?.timeoutMs),
    );
  }
}

function response(type: number): FrameEvent {
  const meta = Buffer.alloc(0);
  return {
    kind: 'frame',
    conn: 0,
    type,
    flags: FLAG_RESPONSE,
    version: 1,
    requestId: 1,
    meta,
    payloadCrc: 0,
    crcOk: true,
  };
}

function setup(o: { settled?: boolean; isHome?: (n: ObjectName) => boolean; settleMs?: number } = {}) {
  let now = 0;
  const clock = () => now;
  const origin = new ControlledOrigin();
  const table = new LeaseTable({ origin, termMs: BINDING, now: clock });
  const leases = new HomeLeases({
    termMs: TERM,
    driftRatio: RHO,
    settleMs: o.settleMs ?? (1 + RHO) * TERM,
    now: clock,
  });
  const metrics = new Metrics();
  const cm = new CoherenceMetrics(metrics, () => leases.size);
  const home = new LeaseHome({
    table,
    leases,
    termMs: TERM,
    driftRatio: RHO,
    isHome: o.isHome ?? (() => true),
    metrics: cm,
    log: pino({ level: 'silent' }),
    retransmitMs: 40,
    now: clock,
  });
  if (o.settled ?? true) now += o.settleMs ?? (1 + RHO) * TERM; // running long enough to vouch for every lease
  const signal = new AbortController().signal;
  const grant = (holder: FakeHolder, n: ObjectName = name, held?: ObjectInfo) =>
    home.lease(
      n,
      holder.id,
      held && { etag: held.etag, size: held.size, lastModifiedMs: held.lastModified.getTime() },
      signal,
      holder,
    );
  const total = (c: keyof CoherenceMetrics, labels?: Record<string, string>) =>
    // biome-ignore lint/suspicious/noExplicitAny: every counter of CoherenceMetrics
    metrics.total(cm[c] as any, labels);
  return { home, table, leases, origin, grant, total, advance: (ms: number) => (now += ms) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `p` has settled after the event loop ran `ms` of real time. */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(ms);
  return done;
}

/** These waits are for in-process timers: poll often. */
const POLL = { stepMs: 5, timeoutMs: 5000 };

describe('LeaseHome.lease', () => {
  it('grants on the binding in force, never past what the binding has left', async () => {
    const { home, origin, grant, total, advance } = setup();
    const v1 = origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    const a = await grant(h);
    expect(a).toEqual({
      status: 'ok',
      version: { etag: 'v1', size: 2, lastModifiedMs: v1.lastModified.getTime() },
      termMs: TERM,
      homeIncarnation: home.incarnation,
      contentMd5: null, // this origin keeps none
    });
    advance(500); // the binding has 700 left, more than TERM / 2: granted on it, capped at 700
    expect(await grant(h)).toMatchObject({ status: 'ok', termMs: BINDING - 500 });
    expect(origin.calls).toBe(1);
    advance(300); // 400 left, less than TERM / 2: revalidated first, then a full term
    expect(await grant(h)).toMatchObject({ status: 'ok', termMs: TERM });
    expect(origin.calls).toBe(2);
    expect(await total('grants', { result: 'ok' })).toBe(3);
    expect(home.outstanding).toBe(1); // one holder, one lease
  });

  it("a grant carries the origin's Content-MD5 of the version, where the origin keeps one", async () => {
    const { origin, grant } = setup();
    const v1 = origin.put(name, 'v1');
    origin.versions.set(id, { ...v1, contentMd5: 'XUFAKrxLKna5cZ2REBfFkg==' });
    expect(await grant(new FakeHolder('h1'))).toMatchObject({
      status: 'ok',
      version: { etag: 'v1' },
      contentMd5: 'XUFAKrxLKna5cZ2REBfFkg==',
    });
  });

  it('a renewal (held version) is counted apart and may name a new version', async () => {
    const { origin, grant, total, advance } = setup();
    const v1 = origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    await grant(h);
    origin.put(name, 'v2!');
    advance(BINDING); // the binding ran out: revalidated
    expect(await grant(h, name, v1)).toMatchObject({ status: 'ok', version: { etag: 'v2!' } });
    expect(await total('renewals', { result: 'ok' })).toBe(1);
    expect(await total('grants', { result: 'ok' })).toBe(1);
  });

  it('answers notHome, without asking the origin, when this member is not the home', async () => {
    const { home, origin, grant, total } = setup({ isHome: () => false });
    origin.put(name, 'v1');
    expect(await grant(new FakeHolder('h1'))).toEqual({
      status: 'notHome',
      homeIncarnation: home.incarnation,
    });
    expect(origin.calls).toBe(0);
    expect(await total('grants', { result: 'not_home' })).toBe(1);
    await expect(home.invalidate(name, new AbortController().signal)).rejects.toMatchObject({
      code: 'PEER_UNAVAILABLE',
    });
  });

  it('answers notFound when the origin has no such object, and records no lease', async () => {
    const { home, grant, total } = setup();
    expect(await grant(new FakeHolder('h1'))).toEqual({
      status: 'notFound',
      homeIncarnation: home.incarnation,
    });
    expect(await total('grants', { result: 'not_found' })).toBe(1);
    expect(home.outstanding).toBe(0);
  });

  it('a grant asked while an invalidation re-resolves waits, then gets the new version', async () => {
    const { home, origin, grant } = setup();
    origin.put(name, 'v1');
    await grant(new FakeHolder('h1'));
    origin.put(name, 'v2!');
    origin.hold = true;
    const inv = home.invalidateName(name);
    const waiting = grant(new FakeHolder('h2'));
    expect(await settledWithin(waiting, 50)).toBe(false); // no lease on the old version meanwhile
    origin.held[0]!.release();
    expect(await waiting).toMatchObject({ status: 'ok', version: { etag: 'v2!' } });
    expect((await inv).info?.etag).toBe('v2!');
  });

  it('an origin answer of the old version that arrives after the invalidation started is never granted', async () => {
    const { home, origin, grant } = setup();
    const v1 = origin.put(name, 'v1');
    origin.hold = true;
    const asking = grant(new FakeHolder('h1'));
    await until(() => origin.held.length === 1, POLL); // its stat (call 0) is in flight
    origin.put(name, 'v2!');
    const inv = home.invalidateName(name); // call 1
    origin.held[0]!.release(v1); // the old request answers late, with the old version
    expect(await settledWithin(asking, 50)).toBe(false);
    origin.held[1]!.release();
    expect(await asking).toMatchObject({ status: 'ok', version: { etag: 'v2!' } });
    expect((await inv).info?.etag).toBe('v2!');
  });
});

describe('LeaseHome.invalidateName', () => {
  it('sends LEASE_REVOKE to each holder and answers when every one acknowledged', async () => {
    const { home, origin, grant, total, table } = setup();
    origin.put(name, 'v1');
    const other = { container: 'c', key: 'other' };
    origin.put(other, 'o1');
    const [h1, h2, h3] = [new FakeHolder('h1'), new FakeHolder('h2'), new FakeHolder('h3')];
    await grant(h1);
    await grant(h2);
    await grant(h3, other); // a lease on another name: not revoked
    origin.put(name, 'v2!');
    const r = await home.invalidateName(name);
    expect(r).toEqual({ info: origin.versions.get(id), acked: 2, expired: 0 });
    for (const h of [h1, h2]) {
      expect(h.revokes).toHaveLength(1);
      expect(h.revokes[0]).toMatchObject({ ...name, homeIncarnation: home.incarnation });
      expect(h.revokes[0]!.revokeId).toBeGreaterThanOrEqual(1);
    }
    expect(h1.revokes[0]!.revokeId).toBe(h2.revokes[0]!.revokeId);
    expect(h3.revokes).toEqual([]);
    expect(await total('revocations', { result: 'acked' })).toBe(2);
    expect(await total('revocations', { result: 'expired' })).toBe(0);
    expect(table.binding(name)?.info.etag).toBe('v2!');
    const answer = await home.invalidate(name, new AbortController().signal);
    expect(answer).toMatchObject({ version: { etag: 'v2!', size: 3 }, names: 1, acked: 2, expired: 0 });
  });

  it('waits for a holder that does not answer, and answers once its lease ran out', async () => {
    const { home, origin, grant, total, advance } = setup();
    origin.put(name, 'v1');
    const [mute, gone, ok] = [new FakeHolder('mute'), new FakeHolder('gone'), new FakeHolder('ok')];
    mute.answer = false;
    for (const h of [mute, gone, ok]) await grant(h);
    gone.isOpen = false; // its connection closed: nothing to send on, its lease runs out
    const inv = home.invalidateName(name);
    await until(() => mute.revokes.length >= 1, POLL);
    expect(await settledWithin(inv, 20)).toBe(false);
    // On a live connection nothing is lost: the revoke is not resent while it is still pending
    // (it may be queued behind chunk payloads), only after a failure.
    expect(mute.revokes).toHaveLength(1);
    expect(gone.revokes).toEqual([]);
    advance(TERM - 1);
    expect(await settledWithin(inv, 80)).toBe(false); // not before the lease ends on the home's clock
    advance(1);
    expect(await inv).toMatchObject({ acked: 1, expired: 2 });
    expect(await total('revocations', { result: 'expired' })).toBe(2);
    expect(await total('revocations', { result: 'acked' })).toBe(1);
    expect(new Set(mute.revokes.map((r) => r.revokeId)).size).toBe(1); // resends carry the same revokeId
  });

  it('an invalidation arriving after a run sent its re-resolve gets a follow-up run, shared with others arriving meanwhile', async () => {
    const { home, origin, grant } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    await grant(h);
    const calls = origin.calls;
    origin.put(name, 'v2!');
    const a = home.invalidateName(name);
    // Written after a's re-resolve was sent: a may have read v2!, so b and c must not be
    // answered by a's result; they share one follow-up run that re-resolves after them.
    origin.put(name, 'v3!!');
    const b = home.invalidateName(name);
    const c = home.invalidate(name, new AbortController().signal);
    expect(home.invalidateName(name)).toBe(b);
    expect((await a).info?.etag).toBe('v2!');
    expect((await b).info?.etag).toBe('v3!!');
    expect((await c).version?.etag).toBe('v3!!');
    expect(origin.calls).toBe(calls + 2); // two re-resolves, not three
    expect(h.revokes).toHaveLength(2);
    // Once answered, a new invalidation runs anew. h1's lease stays in the home's table until it
    // runs out (HomeLeases.ack), so it is revoked once more: one message, never a safety issue.
    const again = await home.invalidateName(name);
    expect(again).toMatchObject({ acked: 1, expired: 0 });
    expect(h.revokes).toHaveLength(3);
    expect(h.revokes[2]!.revokeId).toBeGreaterThan(h.revokes[1]!.revokeId);
    expect(origin.calls).toBe(calls + 3);
  });

  it('an unsettled (fresh) home answers only (1 + ρ)·term after the re-resolve', async () => {
    const { home, origin, table, advance } = setup({ settled: false, settleMs: 10 * TERM });
    origin.put(name, 'v1');
    origin.hold = true;
    const inv = home.invalidateName(name);
    advance(300); // the origin is slow: the wait counts from its answer, not from the start
    origin.held[0]!.release();
    await until(() => table.binding(name) !== undefined, POLL);
    expect(await settledWithin(inv, 60)).toBe(false); // no holders, but a predecessor's may be alive
    advance((1 + RHO) * TERM - 1);
    expect(await settledWithin(inv, 80)).toBe(false);
    advance(1);
    expect(await inv).toMatchObject({ acked: 0, expired: 0, info: { etag: 'v1' } });
  });

  it('a deleted object: binding removed, answer null, later grants notFound', async () => {
    const { home, origin, grant, table } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    await grant(h);
    origin.versions.delete(id);
    const answer = await home.invalidate(name, new AbortController().signal);
    expect(answer).toEqual({ version: null, names: 1, acked: 1, expired: 0 });
    expect(table.binding(name)).toBeUndefined();
    expect(await grant(h)).toMatchObject({ status: 'notFound' });
  });

  it('an origin failure during the re-resolve fails the invalidation and revokes nothing', async () => {
    const { home, origin, grant, leases } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    await grant(h);
    origin.hold = true;
    const inv = home.invalidateName(name);
    const waiting = grant(new FakeHolder('h2'));
    origin.held[0]!.fail(new CacheError('ORIGIN_UNAVAILABLE', 'origin down'));
    await expect(inv).rejects.toMatchObject({ code: 'ORIGIN_UNAVAILABLE' });
    expect(leases.isPending(id)).toBe(false);
    expect(h.revokes).toEqual([]);
    // The grant that waited for the re-resolve asks the origin itself (the binding was dropped).
    await until(() => origin.held.length === 2, POLL);
    origin.held[1]!.release();
    expect(await waiting).toMatchObject({ status: 'ok', version: { etag: 'v1' } });
  });
});

describe('LeaseHome.ack', () => {
  it('ignores an acknowledgement with a wrong incarnation or revokeId', async () => {
    const { home, origin, grant } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    h.answer = false;
    await grant(h);
    const inv = home.invalidateName(name);
    await until(() => h.revokes.length > 0, POLL);
    const { revokeId } = h.revokes[0]!;
    home.ack({ ...name, homeIncarnation: home.incarnation + 1, revokeId }, 'h1'); // a previous life's
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId: revokeId + 1 }, 'h1'); // not this one
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId }, 'h2'); // another holder
    expect(await settledWithin(inv, 100)).toBe(false);
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId }, 'h1');
    const r = await inv;
    expect(r.acked + r.expired).toBe(1);
  });

  it('LEASE_RELEASE (revokeId 0) releases the lease: no revoke, nothing to wait for', async () => {
    const { home, origin, grant, leases } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    await grant(h);
    home.ack({ ...name, homeIncarnation: home.incarnation + 1, revokeId: LEASE_RELEASE }, 'h1'); // ignored
    expect(leases.holders(id)).toEqual(['h1']);
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId: LEASE_RELEASE }, 'h1');
    expect(leases.holders(id)).toEqual([]);
    expect(home.outstanding).toBe(0);
    expect(await home.invalidateName(name)).toMatchObject({ acked: 0, expired: 0 });
    expect(h.revokes).toEqual([]);
  });

  it('a holder that releases (shutting down) while an invalidation waits for it counts as acked at once', async () => {
    const { home, origin, grant, total } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    h.answer = false; // the revoke goes unanswered (the holder is shutting down)
    await grant(h);
    const inv = home.invalidateName(name);
    await until(() => h.revokes.length === 1, POLL);
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId: LEASE_RELEASE }, 'h1');
    expect(await inv).toMatchObject({ acked: 1, expired: 0 }); // without waiting the lease out
    expect(await total('revocations', { result: 'acked' })).toBe(1);
  });

  // Regression: a holder acknowledging by LEASE_ACK (the revoke's connection closed before
  // the response) is counted acked in the answer and once in the metric.
  it('a revocation acknowledged by LEASE_ACK is counted acked, not expired', async () => {
    const { home, origin, grant, total } = setup();
    origin.put(name, 'v1');
    const h = new FakeHolder('h1');
    h.answer = false; // the response is lost; the holder acknowledges on a new connection
    await grant(h);
    const inv = home.invalidateName(name);
    await until(() => h.revokes.length > 0, POLL);
    home.ack({ ...name, homeIncarnation: home.incarnation, revokeId: h.revokes[0]!.revokeId }, 'h1');
    expect(await inv).toMatchObject({ acked: 1, expired: 0 });
    expect(await total('revocations', { result: 'expired' })).toBe(0);
  });
});

describe('LeaseHome and membership changes', () => {
  it('grants nothing for membershipLag after a change (holders read the origin meanwhile)', async () => {
    const { home, origin, grant, total, advance } = setup();
    origin.put(name, 'v1');
    home.refuseGrantsFor(500);
    await expect(grant(new FakeHolder('h1'))).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect(await total('grants', { result: 'refused' })).toBe(1);
    advance(500);
    expect(await grant(new FakeHolder('h1'))).toMatchObject({ status: 'ok' });
  });

  it('a home that stopped being home during an invalidation does not answer it', async () => {
    let homeOfIt = true;
    const { home, origin } = setup({ isHome: () => homeOfIt });
    origin.put(name, 'v1');
    origin.hold = true;
    const inv = home.invalidate(name, new AbortController().signal);
    await until(() => origin.held.length === 1, POLL);
    homeOfIt = false; // the member list changed under the running invalidation
    origin.held[0]!.release();
    await expect(inv).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
  });

  it('a grant that cannot be resolved within grantDeadlineMs is refused, not left to time out at the holder', async () => {
    const s = setup();
    const home = new LeaseHome({
      table: s.table,
      leases: s.leases,
      termMs: TERM,
      driftRatio: RHO,
      isHome: () => true,
      metrics: new CoherenceMetrics(new Metrics(), () => 0),
      log: pino({ level: 'silent' }),
      grantDeadlineMs: 30,
    });
    s.origin.put(name, 'v1');
    s.origin.hold = true; // the origin does not answer
    const h = new FakeHolder('h1');
    await expect(home.lease(name, h.id, undefined, new AbortController().signal, h)).rejects.toMatchObject({
      code: 'OVERLOADED',
    });
    home.close();
  });
});

describe('LeaseHome.invalidatePrefix', () => {
  it('fences every name under the prefix, and re-resolves and revokes the names with leases out that it is home of', async () => {
    const notHome = { container: 'c', key: 'm/elsewhere' };
    const { home, origin, grant, table } = setup({ isHome: (n) => n.key !== notHome.key });
    const names = ['m/a', 'm/b', 'm/c', 'x/a'].map((key) => ({ container: 'c', key }));
    for (const n of [...names, notHome]) origin.put(n, 'v1');
    const h = new FakeHolder('h1');
    await grant(h, names[0]);
    await grant(h, names[1]);
    await table.resolve(names[2]!); // bound here, no lease out
    await table.resolve(notHome);
    await table.resolve(names[3]!); // outside the prefix
    const calls = origin.calls;
    const answer = await home.invalidatePrefix('c', 'm/');
    expect(answer).toEqual({ names: 2, acked: 2, expired: 0 });
    expect(origin.calls).toBe(calls + 2); // the two leased names re-resolved now
    expect(h.revokes.map((r) => r.key).sort()).toEqual(['m/a', 'm/b']);
    // m/c had no lease out: its binding is simply dropped (the next resolution asks the origin);
    // a name outside the prefix keeps its binding.
    expect(table.binding(names[2]!)).toBeUndefined();
    expect(table.binding(names[3]!)).toBeDefined();
    expect(await home.invalidatePrefix('c', 'zz/')).toEqual({ names: 0, acked: 0, expired: 0 });
  });
});
