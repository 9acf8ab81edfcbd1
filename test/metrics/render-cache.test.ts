import { describe, expect, it } from 'vitest';
import { RenderCache } from '../../src/metrics/render-cache.js';

describe('RenderCache (the /metrics page)', () => {
  it('renders at most once per interval, and concurrent scrapes share one render', async () => {
    let now = 0;
    let renders = 0;
    let release: (() => void) | undefined;
    const cache = new RenderCache(
      async () => {
        renders++;
        await new Promise<void>((r) => (release = r));
        return `page ${renders}`;
      },
      1000,
      () => now,
    );
    const flood = Array.from({ length: 500 }, () => cache.get());
    release!();
    expect(new Set(await Promise.all(flood))).toEqual(new Set(['page 1']));
    expect(renders).toBe(1);
    now = 999;
    expect(await cache.get()).toBe('page 1');
    now = 1000;
    const next = cache.get();
    release!();
    expect(await next).toBe('page 2');
    expect(renders).toBe(2);
  });

  it('0 renders every scrape (a failed render is not kept)', async () => {
    let n = 0;
    const cache = new RenderCache(async () => {
      n++;
      if (n === 2) throw new Error('collect failed');
      return String(n);
    }, 0);
    expect(await cache.get()).toBe('1');
    await expect(cache.get()).rejects.toThrow('collect failed');
    expect(await cache.get()).toBe('3');
  });
});
