/**
 * The Hub door's revisions as the native fast path holds them
 * (src/hub/native-revisions.ts, addon/src/http/doors/hub.h), in process
 * with the real addon, a real fs origin and the real snapshot cache: a
 * resolved revision is published once (again only after half its validity),
 * a revision the snapshot cache drops is removed from the addon at once, and
 * what JavaScript hands over is checked with errors naming what was wrong.
 */
import { describe, expect, it } from 'vitest';
import { nativeDoorRoutes } from '../../src/http/door-routes.js';
import { resolveRevision } from '../../src/hub/revision.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { FsOrigin } from '../../src/origin/fs.js';
import { Listings } from '../../src/read/listings.js';
import { binding } from '../../src/transport/binding.js';
import { seedOrigin } from '../harness/cluster.js';

const HUB = { path: '/hf', container: 'models' };

describe('Hub revisions on the native fast path', () => {
  it('publishes resolved revisions and removes the ones the snapshot cache drops', async () => {
    const root = seedOrigin({
      'acme/a/config.json': Buffer.from('{}'),
      'acme/a/model.bin': Buffer.alloc(1000, 1),
      'acme/b/config.json': Buffer.from('{"b":1}'),
      'acme/b/model.bin': Buffer.alloc(1000, 2),
    });
    // Room for one repo's snapshot (2 files) at a time: listing another drops the first.
    const listings = new Listings({
      origin: new FsOrigin({ root }),
      maxFiles: 100,
      retainFiles: 3,
      retainMs: 60_000,
    });
    const { routes, hubRevisions } = nativeDoorRoutes({ hub: HUB, s3: null }, listings, new Metrics());
    const revs = hubRevisions!;
    const a = await resolveRevision(listings, 'models', 'acme/a', 'main');
    revs.publish(a);
    revs.publish(a); // within half its validity: not again
    expect(routes.stats().hubRevisions).toBe(1);
    const b = await resolveRevision(listings, 'models', 'acme/b', 'main');
    revs.publish(b);
    // acme/a's snapshot was evicted to make room: the addon no longer holds it either.
    expect(listings.get(a.sha)).toBeUndefined();
    expect(routes.stats().hubRevisions).toBe(1);
    expect(routes.removeHubRevision(a.sha)).toBe(false);
    expect(routes.removeHubRevision(b.sha)).toBe(true);
  });

  it('refuses what it cannot hold, naming what was wrong', () => {
    const { NativeDoorRoutes } = binding();
    expect(
      () => new NativeDoorRoutes({ hub: { path: 'hf', container: 'models', maxFiles: 10 }, s3: null }),
    ).toThrow(/hub.path must be like \/hf/);
    expect(
      () => new NativeDoorRoutes({ hub: null, s3: { path: '/s3/', baseDomain: null, buckets: null } }),
    ).toThrow(/s3.path must be like \/s3/);
    const routes = new NativeDoorRoutes({ hub: { ...HUB, maxFiles: 2 }, s3: null });
    const file = { path: 'a', etag: 'e', size: 1, blobId: 'b', contentType: 'application/json' };
    expect(() =>
      routes.publishHubRevision({ sha: 'main', prefix: 'acme/a/', files: [file], validForMs: 1000 }),
    ).toThrow(/40-hex sha/);
    expect(() =>
      routes.publishHubRevision({
        sha: 'a'.repeat(40),
        prefix: 'acme/a/',
        files: [{ ...file, size: -1 }],
        validForMs: 1000,
      }),
    ).toThrow(/size must be ≥ 0/);
    const sha = 'a'.repeat(40);
    expect(
      routes.publishHubRevision({
        sha,
        prefix: 'acme/a/',
        files: [file, { ...file, path: 'b' }],
        validForMs: 1000,
      }),
    ).toBe(true);
    // Past maxFiles (the snapshot cache's own bound): not installed, JavaScript answers those files.
    expect(
      routes.publishHubRevision({ sha: 'b'.repeat(40), prefix: 'acme/b/', files: [file], validForMs: 1000 }),
    ).toBe(false);
    expect(routes.stats()).toMatchObject({ hubRevisions: 1, hubHits: 0, s3Hits: 0 });
    // No Hub door: nothing to publish to.
    const none = new NativeDoorRoutes({ hub: null, s3: null });
    expect(none.publishHubRevision({ sha, prefix: 'acme/a/', files: [file], validForMs: 1000 })).toBe(false);
  });
});
