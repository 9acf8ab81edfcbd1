import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { type Reservation, SendBudget } from '../../src/http/send-budget.js';
import { Metrics } from '../../src/metrics/metrics.js';

const MiB = 2 ** 20;
const budget = (
  o: Partial<{ maxBytes: number; maxSlowBytes: number; slowAfterMs: number; queueMs: number }> = {},
) =>
  new SendBudget({
    maxBytes: 12 * MiB,
    maxSlowBytes: 6 * MiB,
    slowAfterMs: 20,
    queueMs: 5_000,
    metrics: new Metrics(),
    ...o,
  });
const never = new AbortController().signal;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SendBudget (http.maxInFlightBytes, http.maxSlowClientBytes)', () => {
  it('grants within the budget, queues past it, and hands freed room to the address holding least', async () => {
    const b = budget();
    const a1 = await b.acquire(6 * MiB, 'attacker', never, () => {});
    const a2 = await b.acquire(6 * MiB, 'attacker', never, () => {});
    const order: string[] = [];
    const noted = (who: string) => (r: Reservation) => {
      order.push(who);
      return r;
    };
    const a3 = b.acquire(6 * MiB, 'attacker', never, () => {}).then(noted('attacker'));
    const g = b.acquire(6 * MiB, 'reader', never, () => {}).then(noted('reader'));
    await tick(5);
    expect(order).toEqual([]);
    a1.release();
    a1.release(); // idempotent
    await tick(5);
    expect(order).toEqual(['reader']); // the reader's address held nothing: it goes first
    a2.release();
    await tick(5);
    expect(order).toEqual(['reader', 'attacker']);
    (await a3).release();
    (await g).release();
  });

  it('a waiter gives up with OVERLOADED after queueMs, or with its signal', async () => {
    const b = budget({ queueMs: 30 });
    const held = await b.acquire(12 * MiB, 'x', never, () => {});
    const err = await b.acquire(MiB, 'y', never, () => {}).catch((e: unknown) => e);
    expect(CacheError.is(err, 'OVERLOADED')).toBe(true);
    expect((err as Error).message).toMatch(/maxInFlightBytes/);
    const ac = new AbortController();
    const gone = b.acquire(MiB, 'z', ac.signal, () => {}).catch((e: unknown) => e);
    ac.abort(new Error('client left'));
    expect(((await gone) as Error).message).toBe('client left');
    held.release();
    (await b.acquire(12 * MiB, 'x', never, () => {})).release();
  });

  it('responses whose client stopped reading past slowAfterMs are cut, longest-waiting first, beyond maxSlowBytes', async () => {
    const b = budget({ maxBytes: 100 * MiB, maxSlowBytes: 6 * MiB });
    const evicted: string[] = [];
    const r = await Promise.all(
      ['first', 'second', 'third'].map((name) => b.acquire(3 * MiB, name, never, () => evicted.push(name))),
    );
    for (const x of r) x.stalled();
    await tick(5);
    r[1]!.resumed(); // a reader that keeps up drains before slowAfterMs: never counts
    await tick(60);
    expect(evicted).toEqual([]); // first + third = 6 MiB: at the bound, not past it
    const fourth = await b.acquire(3 * MiB, 'fourth', never, () => evicted.push('fourth'));
    fourth.stalled();
    await tick(60);
    expect(evicted).toEqual(['first']);
    for (const x of [...r, fourth]) x.release();
  });
});
