/**
 * AUTH guesses slowed per client address (issue 12, item 8): a guesser that
 * opens a new connection for every attempt used to get 2,153 guesses/s past
 * the per-connection delay. The throttle itself with a fake clock; the door
 * with real sockets from a guessing address and a well-behaved one.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthThrottle, FORGET_MS } from '../../src/resp/auth-throttle.js';
import { type Harness, startHarness } from './harness.js';

const TOKEN = 'legit-token-0123456789';

describe('the AUTH throttle', () => {
  let t = 1_000_000;
  const clock = () => t;
  const never = new AbortController().signal;

  it('checks a fresh address at once; after failures, spaces checks 50 ms, 100 ms, … up to 3.2 s', async () => {
    const th = new AuthThrottle(clock);
    expect(th.nextCheckIn('a')).toBe(0);
    expect(await th.turn('a', never)).toBe(true);
    const spacings: number[] = [];
    for (let i = 0; i < 9; i++) {
      th.failed('a');
      spacings.push(th.nextCheckIn('a'));
      t += 10_000; // past the spacing: the next attempt is checked at once
    }
    expect(spacings).toEqual([50, 100, 200, 400, 800, 1600, 3200, 3200, 3200]);
    expect(th.nextCheckIn('b')).toBe(0); // another address is not affected
  });

  it('lets one attempt wait for the lock, and answers the others at once, unchecked', async () => {
    const th = new AuthThrottle(clock);
    for (let i = 0; i < 8; i++) th.failed('a'); // locked for 3.2 s
    const waiting = th.turn('a', AbortSignal.timeout(10));
    expect(await th.turn('a', never)).toBe(false);
    await expect(waiting).rejects.toThrow(); // (aborted: it would have waited 3.2 s)
    expect(await th.turn('b', never)).toBe(true);
  });

  it('forgets an address a minute after its last failure, and remembers a bounded number', async () => {
    const th = new AuthThrottle(clock, 3);
    for (const a of ['a', 'b', 'c', 'd']) th.failed(a);
    expect(th.size).toBe(3); // 'a' failed least recently: dropped
    t += FORGET_MS + 1;
    for (let i = 0; i < 20; i++) th.failed('e');
    t += FORGET_MS + 1;
    expect(await th.turn('e', never)).toBe(true); // immediately: forgotten
  });
});

describe('AUTH guesses over new connections', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ tokens: new Set([TOKEN]) });
  });
  afterAll(() => h?.close());

  /** One AUTH on a new connection from `localAddress`; the reply's first line. */
  function attempt(localAddress: string, token: string): Promise<string> {
    return new Promise((resolve) => {
      const s = connect({ port: h.port, host: '127.0.0.1', localAddress });
      let got = '';
      s.on('error', () => resolve(got || 'error'));
      s.on('close', () => resolve(got || 'closed'));
      s.on('data', (d) => {
        got += d.toString();
        if (got.includes('\r\n')) {
          s.destroy();
          resolve(got.slice(0, got.indexOf('\r\n')));
        }
      });
      s.once('connect', () => s.write(`AUTH ${token}\r\n`));
    });
  }

  it('checks at most a handful of guesses from one address in 3 s, however many connections it uses', async () => {
    const replies: string[] = [];
    const end = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        while (Date.now() < end) replies.push(await attempt('127.0.8.1', `guess-${i}-${replies.length}`));
      }),
    );
    const checked = replies.filter((r) => r.startsWith('-WRONGPASS')).length;
    const refused = replies.filter((r) => r.startsWith('-ERR too many failed AUTH attempts from 127.0.8.1'));
    // Locks of 50, 100, 200, 400, 800, 1600 ms after each failure: at most 6 checks in 3 s.
    // Before the fix, 40 connections at a time made hundreds here.
    expect(checked).toBeGreaterThan(0);
    expect(checked).toBeLessThanOrEqual(8);
    expect(refused.length).toBeGreaterThan(0);
    // Another address is not slowed by it.
    expect(await attempt('127.0.8.2', TOKEN)).toBe('+OK');
  });
});
