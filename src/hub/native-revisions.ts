/**
 * The Hub door's half of the native fast path (addon/src/http/doors/hub.h,
 * docs/native-http-door.md "The fast path"): every revision the door
 * resolves is published to the addon, so the I/O threads map
 * `resolve/{sha}/{file}` onto the same container, key and pinned version as
 * the door does and answer it themselves when the file's chunks are in DRAM.
 *
 * A revision is a kept listing snapshot (src/read/listings.ts). It is
 * published valid for `listing.retain` from a use that just renewed it in
 * the snapshot cache, so the addon never holds one JavaScript has let go;
 * when the cache drops it sooner (its file bound), it is removed at once.
 * A revision is published again once half its validity has passed.
 */
import type { NativeDoorRoutes } from '../http/native-binding.js';
import { contentTypeOf } from '../http/send-read.js';
import type { Listings } from '../read/listings.js';
import { blobId, pathOf, type Revision } from './revision.js';

/** The addon's clock is read a moment after JavaScript's: a revision must never outlive its snapshot. */
const CLOCK_SLACK_MS = 50;

export class HubNativeRevisions {
  /** sha → when it was last published (Date.now()). */
  private readonly published = new Map<string, number>();

  constructor(
    private readonly routes: NativeDoorRoutes,
    private readonly listings: Listings,
  ) {
    listings.onForget((id) => {
      if (this.published.delete(id)) routes.removeHubRevision(id);
    });
  }

  /** `rev` was just resolved (its snapshot's age renewed): the fast path may answer its files. */
  publish(rev: Revision): void {
    const validForMs = this.listings.retainMs - CLOCK_SLACK_MS;
    const at = this.published.get(rev.sha);
    const now = Date.now();
    if (validForMs <= 0 || (at !== undefined && now - at < validForMs / 2)) return;
    const installed = this.routes.publishHubRevision({
      sha: rev.sha,
      prefix: rev.prefix,
      files: rev.listing.files.map((f) => {
        const path = pathOf(rev, f);
        return { path, etag: f.etag, size: f.size, blobId: blobId(f), contentType: contentTypeOf(path) };
      }),
      validForMs,
    });
    if (installed) this.published.set(rev.sha, now);
    else this.published.delete(rev.sha);
  }
}
