/**
 * One read, one version: when the version a name was bound to is gone at the
 * origin, the read fails with a clean VERSION_CHANGED reply (the first chunk
 * is fetched before the value's header goes out), the connection stays usable,
 * and the next read sees the new version. A pinned key naming a version newer
 * than the lease is revalidated, not refused (the pinned-read rule shared
 * with HTTP, src/read/pinned.ts).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FsOrigin } from '../../src/origin/fs.js';
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

it('a key pinned to a newer version than the lease knows is revalidated and served, as over HTTP', async () => {
  const r = new Redis({ port: h.port, host: '127.0.0.1' });
  try {
    await h.put('v/p.bin', Buffer.from('version one'));
    expect((await r.getBuffer('v/p.bin'))?.toString()).toBe('version one'); // bound for 60 s
    await h.put('v/p.bin', Buffer.from('version two!'));
    // A loader that read a manifest listing the new version pins it:
    const v2 = await new FsOrigin({ root: h.root }).stat({ container: 'v', key: 'p.bin' });
    expect((await r.getBuffer(`{${v2.etag}}v/p.bin`))?.toString()).toBe('version two!');
    // A pin naming a version that exists nowhere is still refused.
    await expect(r.getBuffer('{nope}v/p.bin')).rejects.toThrow(
      /^VERSION_CHANGED .* is not the current version/,
    );
  } finally {
    r.disconnect();
  }
});
