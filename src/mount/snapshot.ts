/**
 * A model directory's snapshot: the files under its prefix as one origin
 * listing saw them (key, version, size), with the listing's content id
 * (src/read/listings.ts). Every read below `.snapshots/<model>/<id>/` names
 * the version the snapshot holds, so a loader that resolved the model's
 * symlink once reads one version of every file.
 */

import type { ObjectInfo } from '../origin/origin.js';
import type { Listing } from '../read/listings.js';

export interface SnapshotEntry {
  readonly name: string;
  /** The file, or undefined for a subdirectory. */
  readonly file?: ObjectInfo;
}

export class Snapshot {
  /** Inodes the kernel holds below this snapshot; it is dropped at 0 unless current. */
  refs = 0;
  private readonly dirs = new Map<string, SnapshotEntry[]>();
  private readonly files = new Map<string, ObjectInfo>();

  constructor(
    readonly id: string,
    readonly container: string,
    /** The model directory's key prefix, ending in '/'. */
    readonly prefix: string,
    readonly listedAt: Date,
    list: readonly ObjectInfo[],
  ) {
    this.dirs.set('', []);
    for (const f of list) {
      if (!f.key.startsWith(prefix)) continue;
      const rel = f.key.slice(prefix.length);
      if (rel === '' || rel.endsWith('/')) continue; // a folder marker, not a file
      this.files.set(rel, f);
      // Register the file and each parent directory in its parent's entries.
      const parts = rel.split('/');
      let dir = '';
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i]!;
        const entries = this.dirs.get(dir)!;
        if (i === parts.length - 1) {
          entries.push({ name, file: f });
        } else {
          const sub = `${dir}${name}/`;
          if (!this.dirs.has(sub)) {
            entries.push({ name });
            this.dirs.set(sub, []);
          }
          dir = sub;
        }
      }
    }
  }

  static of(listing: Listing): Snapshot {
    return new Snapshot(listing.id, listing.container, listing.prefix, listing.listedAt, listing.files);
  }

  get fileCount(): number {
    return this.files.size;
  }

  /** Entries of a directory ('' is the snapshot's root, else 'a/b/'), undefined if there is none. */
  entries(dir: string): readonly SnapshotEntry[] | undefined {
    return this.dirs.get(dir);
  }

  /** Every file, in listing order. */
  allFiles(): ObjectInfo[] {
    return [...this.files.values()];
  }

  file(rel: string): ObjectInfo | undefined {
    return this.files.get(rel);
  }

  isDir(rel: string): boolean {
    return this.dirs.has(rel);
  }
}
