import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/fill/limiter.js';
import { SingleFlight } from '../../src/fill/single-flight.js';

describe('SingleFlight', () => {
  it('runs once for concurrent callers and forgets afterwards, failures included', async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls = Array.from({ length: 50 }, () =>
      sf.do('k', async () => {
        runs++;
        await gate;
        return 7;
      }),
    );
    expect(calls.filter((c) => c.shared)).toHaveLength(49);
    release();
    expect(await Promise.all(calls.map((c) => c.promise))).toEqual(Array(50).fill(7));
    expect(runs).toBe(1);
    expect(sf.size).toBe(0);
    await expect(sf.do('k', async () => Promise.reject(new Error('boom'))).promise).rejects.toThrow('boom');
    expect(await sf.do('k', async () => 8).promise).toBe(8);
  });
});

describe('Limiter', () => {
  it('bounds running work and refuses past the queue bound', async () => {
    const l = new Limiter(2, 1, 'test work');
    let peak = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const job = () =>
      l.run(async () => {
        peak = Math.max(peak, l.running);
        await gate;
      });
    const a = [job(), job(), job()];
    await expect(job()).rejects.toMatchObject({ code: 'OVERLOADED', message: /test work/ });
    release();
    await Promise.all(a);
    expect(peak).toBe(2);
    expect(l.running + l.queued).toBe(0);
  });
});
