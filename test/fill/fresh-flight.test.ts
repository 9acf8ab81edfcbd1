import { describe, expect, it } from 'vitest';
import { FreshFlight } from '../../src/fill/fresh-flight.js';

describe('FreshFlight', () => {
  it('a caller only gets the result of a run started after it asked; arrivals during a run share one follow-up', async () => {
    const f = new FreshFlight<number>();
    const releases: Array<(v: number) => void> = [];
    let runs = 0;
    const fn = () => {
      runs++;
      return new Promise<number>((r) => releases.push(r));
    };
    const a = f.do('k', fn); // run 1 starts
    const b = f.do('k', fn); // arrived during run 1: waits for run 2
    const c = f.do('k', fn); // shares run 2 with b
    expect(b).toBe(c);
    expect(runs).toBe(1);
    releases[0]!(1);
    expect(await a).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(runs).toBe(2); // run 2 started only after run 1 ended, i.e. after b and c asked
    const d = f.do('k', fn); // arrived during run 2: run 3
    releases[1]!(2);
    expect(await b).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    releases[2]!(3);
    expect(await d).toBe(3);
    expect(runs).toBe(3);
    // Other keys are independent, and a failure is not kept.
    const e = f.do('other', () => Promise.reject(new Error('boom')));
    await expect(e).rejects.toThrow('boom');
    expect(await f.do('other', async () => 7)).toBe(7);
  });
});
