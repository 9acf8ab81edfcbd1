/** The polling helper every test waits with: what it returns, and how it fails. */
import { describe, expect, it } from 'vitest';
import { until } from './until.js';

describe('until', () => {
  it('returns the first value that is not false, null or undefined', async () => {
    let n = 0;
    expect(await until(() => (++n >= 3 ? `after ${n}` : undefined), { stepMs: 1 })).toBe('after 3');
    expect(await until(() => 0, { stepMs: 1 })).toBe(0);
  });

  it('fails naming what it waited for, with the last error when errors are retried', async () => {
    await expect(
      until(
        () => {
          throw new Error('ECONNREFUSED');
        },
        { what: 'the server answers', timeoutMs: 30, stepMs: 5, retryErrors: true },
      ),
    ).rejects.toThrow(/the server answers did not hold within 30 ms \(last error: ECONNREFUSED\)/);
  });

  it('a probe that throws fails the wait at once unless errors are retried', async () => {
    let calls = 0;
    await expect(
      until(() => {
        calls++;
        throw new Error('broken');
      }),
    ).rejects.toThrow('broken');
    expect(calls).toBe(1);
  });
});
