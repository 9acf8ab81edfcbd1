/**
 * One read, one version: when the version a name was bound to is gone at the
 * origin, the read fails with a clean VERSION_CHANGED reply (the first chunk
 * is fetched before the value's header goes out), the connection stays usable,
 * and the next read sees the new version.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ leaseTermMs: 60_000, seed: { 'v/w.bin': 3 * CHUNK } });
});
afterAll(() => h?.close());

it('answers VERSION_CHANGED cleanly, then serves the new version', async () => {
  const r = new Redis({ port: h.port, host: '127.0.0.1' });
  try {
    expect(await r.strlen('v/w.bin')).toBe(3 * CHUNK); // binds the name to the first version for 60 s
    await h.put('v/w.bin', randomBytes(2 * CHUNK + 1)); // a new upload: new version, nothing cached yet
    await expect(r.getBuffer('v/w.bin')).rejects.toThrow(/^VERSION_CHANGED /);
    expect(await r.ping()).toBe('PONG');
    const now = await r.getBuffer('v/w.bin');
    expect(now?.equals(h.objects.get('v/w.bin')!)).toBe(true);
  } finally {
    r.disconnect();
  }
});
