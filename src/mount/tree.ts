/**
 * The mount's namespace and its inodes (docs/mount.md, "Layout"):
 *
 *   /                                   the configured containers
 *   /{container}/{dirs…}/               what the origin lists, above the model depth
 *   /{container}/{dirs…}/{model}        symlink → .snapshots/{model}/{id}  (the current snapshot)
 *   /{container}/{dirs…}/.snapshots/{model}/{id}/…   one snapshot: fixed files and versions
 *
 * A *model directory* is a directory at depth `mount.modelDepth` below its
 * container (1: `container/llama/`). The symlink is read anew on every path
 * walk (READLINK is not cached by the kernel), so an invalidation flips it
 * for new loads at once, while a loader that resolved it keeps reading the
 * snapshot it resolved: snapshot directories and files never change, and
 * the kernel may cache their entries, attributes and pages for a day.
 *
 * Inode numbers are never reused in a mount (the kernel's nodeid:generation
 * must be unique); an inode lives while the kernel holds a lookup of it.
 */
import { CacheError } from '../errors/cache-error.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { Listing, Listings } from '../read/listings.js';
import type { FuseAttr } from './binding.js';
import { LeaseKeeper, type Resolve } from './lease-keeper.js';
import { Snapshot } from './snapshot.js';

export const SNAPSHOTS = '.snapshots';
const DAY_MS = 86_400_000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

export type Node =
  | { readonly kind: 'root' }
  /** A directory above the model depth; `prefix` is '' (the container) or ends in '/'. */
  | { readonly kind: 'dir'; readonly container: string; readonly prefix: string }
  /** A model directory's plain name: a symlink to its current snapshot. `prefix` ends in '/'. */
  | { readonly kind: 'model'; readonly container: string; readonly prefix: string; readonly name: string }
  /** `.snapshots` in the directory `parent`. */
  | { readonly kind: 'snapshots'; readonly container: string; readonly parent: string }
  /** `.snapshots/{model}`: the model's snapshots this mount knows. */
  | { readonly kind: 'versions'; readonly container: string; readonly prefix: string }
  /** A directory inside a snapshot ('' is its root). */
  | { readonly kind: 'snapdir'; readonly snap: Snapshot; readonly dir: string }
  /** A file of one version: in a snapshot, or above the model depth (`snap` null). */
  | { readonly kind: 'file'; readonly snap: Snapshot | null; readonly info: ObjectInfo };

export interface Inode {
  readonly id: number;
  readonly node: Node;
  readonly key: string;
  lookups: number;
}

export interface TreeOptions {
  readonly containers: readonly string[];
  readonly modelDepth: number;
  readonly listings: Listings;
  /** How long a directory listing or a current snapshot is reused before listing the origin again. */
  readonly listIntervalMs: number;
  /**
   * The read path's name → version resolution (leases). Given, path walks through a
   * model's name keep this process a holder of its files' leases (lease-keeper.ts).
   */
  readonly resolve?: Resolve;
  readonly uid: number;
  readonly gid: number;
}

interface Dated<T> {
  readonly value: T;
  readonly at: number;
}

export class Tree {
  private readonly byId = new Map<number, Inode>();
  private readonly byKey = new Map<string, Inode>();
  private nextId = 2;
  private readonly mountedAt = Date.now();
  /** Directory listings above the model depth, by container\0prefix. */
  private readonly lists = new Map<string, Dated<Listing>>();
  /** Each model's current snapshot, by container\0prefix. */
  private readonly current = new Map<string, Dated<Snapshot>>();
  private readonly keeper: LeaseKeeper | null;
  /** Snapshots in use (current, or held by the kernel), by id. */
  private readonly snaps = new Map<string, Snapshot>();

  constructor(private readonly o: TreeOptions) {
    this.keeper = o.resolve ? new LeaseKeeper(o.resolve) : null;
    const root: Inode = { id: 1, node: { kind: 'root' }, key: 'r', lookups: 1 };
    this.byId.set(1, root);
    this.byKey.set(root.key, root);
  }

  get(id: number): Inode | undefined {
    return this.byId.get(id);
  }

  /** Inodes the kernel holds (for tests: back to 1 after an unmount-free forget storm). */
  get size(): number {
    return this.byId.size;
  }

  /** A child by name; counts one kernel lookup of it. NOT_FOUND when there is none. */
  async lookup(parent: number, name: string, signal?: AbortSignal): Promise<Inode> {
    const p = this.need(parent);
    const child = await this.child(p.node, name, signal);
    if (!child) throw new CacheError('NOT_FOUND', `no ${name} in ${describe(p.node)}`);
    return this.intern(child);
  }

  /** The kernel dropped `n` lookups of `id`. */
  forget(id: number, n: number): void {
    const ino = this.byId.get(id);
    if (!ino || id === 1) return;
    ino.lookups -= n;
    if (ino.lookups > 0) return;
    this.byId.delete(id);
    this.byKey.delete(ino.key);
    const snap = snapOf(ino.node);
    if (snap) {
      snap.refs--;
      this.release(snap);
    }
  }

  /** A lookup the kernel never received (the reply came too late): undo its count. */
  unref(ino: Inode): void {
    this.forget(ino.id, 1);
  }

  attr(ino: Inode): FuseAttr {
    const n = ino.node;
    const base = { ino: ino.id, uid: this.o.uid, gid: this.o.gid };
    switch (n.kind) {
      case 'file':
        return {
          ...base,
          size: n.info.size,
          mode: S_IFREG | 0o444,
          nlink: 1,
          mtimeMs: n.info.lastModified.getTime(),
        };
      case 'model':
        return {
          ...base,
          size: linkTarget(n.name, '0'.repeat(40)).length,
          mode: S_IFLNK | 0o777,
          nlink: 1,
          mtimeMs: this.mountedAt,
        };
      case 'snapdir':
        return { ...base, size: 0, mode: S_IFDIR | 0o555, nlink: 2, mtimeMs: n.snap.listedAt.getTime() };
      default:
        return { ...base, size: 0, mode: S_IFDIR | 0o555, nlink: 2, mtimeMs: this.mountedAt };
    }
  }

  /** How long the kernel may keep this entry and its attributes. */
  timeoutMs(ino: Inode): number {
    const k = ino.node.kind;
    // A snapshot's files and directories never change; a file above the model depth is one version too.
    return k === 'snapdir' || k === 'file' ? DAY_MS : this.o.listIntervalMs;
  }

  /** A directory's entries as [ino, DT_*, name] flattened, '.' and '..' first. */
  async readdir(id: number, signal?: AbortSignal): Promise<Array<number | string>> {
    const ino = this.need(id);
    const out: Array<number | string> = [id, DT_DIR, '.', 1, DT_DIR, '..'];
    for (const [name, node] of await this.children(ino.node, signal)) {
      out.push(this.inoOf(node), typeOf(node), name);
    }
    return out;
  }

  /** A model symlink's target: its current snapshot, relative to the model's parent directory. */
  async readlink(id: number, signal?: AbortSignal): Promise<string> {
    const n = this.need(id).node;
    if (n.kind !== 'model') throw new CacheError('BAD_REQUEST', `${describe(n)} is not a symlink`);
    const snap = await this.currentSnapshot(n.container, n.prefix, signal);
    if (!snap) throw new CacheError('NOT_FOUND', `${n.container}/${n.prefix} has no files now`);
    return linkTarget(n.name, snap.id);
  }

  /**
   * An invalidation of `container/prefix…` went through this process: the next path walk lists the
   * origin again (the new snapshot), while open snapshots stay as they are.
   */
  invalidated(container: string, prefix: string): void {
    const overlaps = (key: string) => {
      const [c, p] = key.split('\0') as [string, string];
      return c === container && (p.startsWith(prefix) || prefix.startsWith(p));
    };
    for (const k of [...this.lists.keys()]) if (overlaps(k)) this.lists.delete(k);
    for (const [k, d] of [...this.current]) {
      if (!overlaps(k)) continue;
      this.current.delete(k);
      this.release(d.value);
    }
  }

  private need(id: number): Inode {
    const ino = this.byId.get(id);
    if (!ino) throw new CacheError('NOT_FOUND', `inode ${id} is not known (forgotten)`);
    return ino;
  }

  private async child(n: Node, name: string, signal?: AbortSignal): Promise<Node | undefined> {
    switch (n.kind) {
      case 'root':
        return this.o.containers.includes(name) ? { kind: 'dir', container: name, prefix: '' } : undefined;
      case 'versions': {
        const snap = this.snapshotById(n.container, n.prefix, name);
        return snap ? { kind: 'snapdir', snap, dir: '' } : undefined;
      }
      case 'snapdir': {
        const rel = `${n.dir}${name}`;
        const f = n.snap.file(rel);
        if (f) return { kind: 'file', snap: n.snap, info: f };
        return n.snap.isDir(`${rel}/`) ? { kind: 'snapdir', snap: n.snap, dir: `${rel}/` } : undefined;
      }
      case 'model':
      case 'file':
        throw new CacheError('NOT_FOUND', `${describe(n)} is not a directory`);
      default:
        return (await this.children(n, signal)).get(name);
    }
  }

  private async children(n: Node, signal?: AbortSignal): Promise<Map<string, Node>> {
    const out = new Map<string, Node>();
    switch (n.kind) {
      case 'root':
        for (const c of this.o.containers) out.set(c, { kind: 'dir', container: c, prefix: '' });
        return out;
      case 'dir':
      case 'snapshots': {
        const prefix = n.kind === 'dir' ? n.prefix : n.parent;
        const listing = await this.dirListing(n.container, prefix, signal);
        const depth = prefix === '' ? 0 : prefix.split('/').length - 1;
        let models = false;
        for (const f of listing.files) {
          const rest = f.key.slice(prefix.length);
          const cut = rest.indexOf('/');
          if (cut === 0) continue; // 'a//b': an empty segment cannot be a path component
          if (cut < 0) {
            if (n.kind === 'dir' && rest !== '') out.set(rest, { kind: 'file', snap: null, info: f });
            continue;
          }
          const name = rest.slice(0, cut);
          const sub = `${prefix}${name}/`;
          if (depth + 1 === this.o.modelDepth) {
            models = true;
            out.set(
              name,
              n.kind === 'dir'
                ? { kind: 'model', container: n.container, prefix: sub, name }
                : { kind: 'versions', container: n.container, prefix: sub },
            );
          } else if (n.kind === 'dir') {
            out.set(name, { kind: 'dir', container: n.container, prefix: sub });
          }
        }
        // A model named '.snapshots' would shadow the snapshots: the snapshots win (docs/mount.md).
        if (n.kind === 'dir' && models)
          out.set(SNAPSHOTS, { kind: 'snapshots', container: n.container, parent: prefix });
        return out;
      }
      case 'versions': {
        const cur = await this.currentSnapshot(n.container, n.prefix, signal).catch(() => undefined);
        for (const s of this.snaps.values()) {
          if (s.container === n.container && s.prefix === n.prefix)
            out.set(s.id, { kind: 'snapdir', snap: s, dir: '' });
        }
        if (cur) out.set(cur.id, { kind: 'snapdir', snap: cur, dir: '' });
        return out;
      }
      case 'snapdir':
        for (const e of n.snap.entries(n.dir) ?? []) {
          out.set(
            e.name,
            e.file
              ? { kind: 'file', snap: n.snap, info: e.file }
              : { kind: 'snapdir', snap: n.snap, dir: `${n.dir}${e.name}/` },
          );
        }
        return out;
      default:
        throw new CacheError('NOT_FOUND', `${describe(n)} is not a directory`);
    }
  }

  private async dirListing(container: string, prefix: string, signal?: AbortSignal): Promise<Listing> {
    const key = `${container}\0${prefix}`;
    const hit = this.lists.get(key);
    if (hit && Date.now() - hit.at < this.o.listIntervalMs) return hit.value;
    const listing = await this.o.listings.current(container, prefix, signal);
    this.lists.set(key, { value: listing, at: Date.now() });
    return listing;
  }

  /** The model's current snapshot (listed again after listInterval or an invalidation); undefined if empty. */
  private async currentSnapshot(
    container: string,
    prefix: string,
    signal?: AbortSignal,
  ): Promise<Snapshot | undefined> {
    const key = `${container}\0${prefix}`;
    const hit = this.current.get(key);
    if (hit && Date.now() - hit.at < this.o.listIntervalMs) {
      this.keeper?.touch(hit.value);
      return hit.value;
    }
    const listing = await this.o.listings.current(container, prefix, signal);
    if (listing.files.length === 0) return undefined;
    const snap = this.snaps.get(listing.id) ?? Snapshot.of(listing);
    this.snaps.set(snap.id, snap);
    this.current.set(key, { value: snap, at: Date.now() });
    if (hit && hit.value !== snap) this.release(hit.value);
    this.keeper?.touch(snap);
    return snap;
  }

  private snapshotById(container: string, prefix: string, id: string): Snapshot | undefined {
    const held = this.snaps.get(id);
    if (held) return held.container === container && held.prefix === prefix ? held : undefined;
    // A snapshot this mount let go of, while the listings still keep it (listing.retain).
    const kept = this.o.listings.get(id);
    if (!kept || kept.container !== container || kept.prefix !== prefix || kept.files.length === 0)
      return undefined;
    const snap = Snapshot.of(kept);
    this.snaps.set(id, snap);
    return snap;
  }

  /** Drops a snapshot no inode and no model's current pointer holds. */
  private release(snap: Snapshot): void {
    if (snap.refs > 0) return;
    const key = `${snap.container}\0${snap.prefix}`;
    if (this.current.get(key)?.value === snap) return;
    this.snaps.delete(snap.id);
  }

  private intern(node: Node): Inode {
    const key = keyOf(node);
    let ino = this.byKey.get(key);
    if (!ino) {
      ino = { id: this.nextId++, node, key, lookups: 0 };
      this.byId.set(ino.id, ino);
      this.byKey.set(key, ino);
      const snap = snapOf(node);
      if (snap) {
        snap.refs++;
        this.snaps.set(snap.id, snap);
      }
    }
    ino.lookups++;
    return ino;
  }

  /** An entry's d_ino: its inode if the kernel holds one, else a stable number above any inode id. */
  private inoOf(node: Node): number {
    const key = keyOf(node);
    const ino = this.byKey.get(key);
    if (ino) return ino.id;
    let h = 0x811c9dc5;
    let l = 0;
    for (let i = 0; i < key.length; i++) {
      h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
      l = Math.imul(l ^ key.charCodeAt(i), 0x5bd1e995) >>> 0;
    }
    return 2 ** 52 + (h % 2 ** 20) * 2 ** 32 + l;
  }
}

export function linkTarget(model: string, id: string): string {
  return `${SNAPSHOTS}/${model}/${id}`;
}

function keyOf(n: Node): string {
  switch (n.kind) {
    case 'root':
      return 'r';
    case 'dir':
      return JSON.stringify(['d', n.container, n.prefix]);
    case 'model':
      return JSON.stringify(['m', n.container, n.prefix]);
    case 'snapshots':
      return JSON.stringify(['s', n.container, n.parent]);
    case 'versions':
      return JSON.stringify(['v', n.container, n.prefix]);
    case 'snapdir':
      return JSON.stringify(['S', n.snap.id, n.dir]);
    case 'file':
      return JSON.stringify(['f', n.snap?.id ?? '', n.info.container, n.info.key, n.info.etag, n.info.size]);
  }
}

function snapOf(n: Node): Snapshot | null {
  return n.kind === 'snapdir' ? n.snap : n.kind === 'file' ? n.snap : null;
}

function typeOf(n: Node): number {
  return n.kind === 'file' ? DT_REG : n.kind === 'model' ? DT_LNK : DT_DIR;
}

export function describe(n: Node): string {
  switch (n.kind) {
    case 'root':
      return 'the mount root';
    case 'dir':
      return `${n.container}/${n.prefix}`;
    case 'model':
      return `${n.container}/${n.prefix.slice(0, -1)}`;
    case 'snapshots':
      return `${n.container}/${n.parent}${SNAPSHOTS}`;
    case 'versions':
      return `${n.container}/${n.prefix}${SNAPSHOTS}`;
    case 'snapdir':
      return `${n.snap.container}/${n.snap.prefix}${n.dir} (snapshot ${n.snap.id})`;
    case 'file':
      return `${formatName(n.info)} (version ${n.info.etag})`;
  }
}
