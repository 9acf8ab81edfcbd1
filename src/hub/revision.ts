/**
 * A Hub revision is a listing snapshot (src/read/listings.ts): repo `org/name`
 * is the key prefix `org/name/` in the Hub container, and its commit sha is
 * the snapshot's id, derived from the files' names, versions and sizes. So
 * every node computes the same sha for the same files, and every file read
 * at that sha is pinned to the version the snapshot lists: one
 * `snapshot_download` never mixes two uploads.
 *
 *   main         the files now (a fresh listing)
 *   40 hex       a snapshot: kept in memory, or the files now if they still
 *                hash to it; otherwise RevisionNotFound (the repo changed)
 */
import { createHash } from 'node:crypto';
import { validateKey } from '../origin/names.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { Listing, Listings } from '../read/listings.js';
import { repoNotFound, revisionNotFound } from './errors.js';

export const DEFAULT_REVISION = 'main';
const SHA_RE = /^[0-9a-f]{40}$/;

export interface Revision {
  readonly repo: string;
  /** The commit sha: the snapshot's id. */
  readonly sha: string;
  readonly listing: Listing;
  /** The key prefix of the repo's files ('org/name/'). */
  readonly prefix: string;
}

export async function resolveRevision(
  listings: Listings,
  container: string,
  repo: string,
  revision: string,
  signal?: AbortSignal,
): Promise<Revision> {
  const prefix = `${repo}/`;
  try {
    validateKey(prefix, { allowEmpty: true, what: 'repo id' });
  } catch {
    throw repoNotFound(repo);
  }
  if (revision !== DEFAULT_REVISION && !SHA_RE.test(revision)) {
    throw revisionNotFound(repo, revision, `only "${DEFAULT_REVISION}" and commit shas exist here`);
  }
  const kept = revision === DEFAULT_REVISION ? undefined : listings.get(revision);
  if (kept && kept.container === container && kept.prefix === prefix) {
    return { repo, sha: kept.id, listing: kept, prefix };
  }
  const now = await listings.current(container, prefix, signal);
  if (now.files.length === 0) throw repoNotFound(repo);
  if (revision !== DEFAULT_REVISION && now.id !== revision) {
    throw revisionNotFound(repo, revision, 'the repository has changed since; resolve main again');
  }
  return { repo, sha: now.id, listing: now, prefix };
}

/** A file's path in the repo. */
export function pathOf(rev: Revision, f: ObjectInfo): string {
  return f.key.slice(rev.prefix.length);
}

/** The file at `path`, if the snapshot has it. */
export function fileAt(rev: Revision, path: string): ObjectInfo | undefined {
  const key = rev.prefix + path;
  return rev.listing.files.find((f) => f.key === key);
}

/**
 * A file's blob id: 40 hex, the same on every node for the same version. It
 * is the tree's `oid` and the resolve answer's X-Linked-Etag, which
 * huggingface_hub uses as the blob's file name in its cache.
 */
export function blobId(f: ObjectInfo): string {
  return createHash('sha1')
    .update(JSON.stringify([f.etag, f.size]))
    .digest('hex');
}

export interface TreeEntry {
  readonly type: 'file' | 'directory';
  readonly path: string;
  readonly oid: string;
  readonly size: number;
}

/**
 * The entries under `dir` ('' for the root), sorted by path: its files and
 * folders, or with `recursive` every file and folder below it. Undefined when
 * `dir` names no folder.
 */
export function treeEntries(rev: Revision, dir: string, recursive: boolean): TreeEntry[] | undefined {
  const base = dir === '' ? '' : `${dir}/`;
  const entries = new Map<string, TreeEntry>();
  for (const f of rev.listing.files) {
    const path = pathOf(rev, f);
    if (!path.startsWith(base)) continue;
    const rest = path.slice(base.length).split('/');
    const depth = recursive ? rest.length : 1;
    for (let i = 1; i < Math.min(depth, rest.length) + 1; i++) {
      const sub = base + rest.slice(0, i).join('/');
      if (i === rest.length) {
        entries.set(sub, { type: 'file', path: sub, oid: blobId(f), size: f.size });
      } else if (!entries.has(sub)) {
        entries.set(sub, { type: 'directory', path: sub, oid: folderId(rev.sha, sub), size: 0 });
      }
    }
  }
  if (entries.size === 0 && dir !== '') return undefined;
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function folderId(sha: string, path: string): string {
  return createHash('sha1')
    .update(JSON.stringify([sha, path]))
    .digest('hex');
}
