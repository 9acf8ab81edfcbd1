/**
 * Atomic materialisation of a model directory. A pull never writes into DIR:
 *
 *   DIR.partial/
 *     lock          pid of the pull working here (a second pull refuses)
 *     state.json    what is pinned and which chunks are verified and durable
 *     tree/…        the files, written at their offsets as chunks arrive
 *
 * When every chunk is verified: fsync every file and directory of tree/, then
 * rename tree/ → DIR (one rename(2): DIR appears complete or not at all) and
 * fsync DIR's parent. An existing DIR is refused unless `force`: then it is
 * renamed aside to DIR.old-<pid>, tree/ renamed in, and the old one deleted.
 * Between those two renames DIR is briefly absent — never half-written.
 *
 * Resume: state.json lists, per file, the pinned version and a bitmap of
 * chunks. A chunk's bit is set only after its bytes were fdatasync'ed, and
 * state.json is replaced by write-temp + fsync + rename, so after a crash every
 * set bit names bytes on disk. A re-run keeps the bits of files whose version
 * is unchanged and restarts the others.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CacheError } from '../errors/cache-error.js';

export const STATE_FORMAT = 1;

export interface FileState {
  readonly version: string;
  readonly size: number;
  /** One bit per chunk, set when the chunk is verified and durable. */
  readonly done: Uint8Array;
}

export interface PullState {
  readonly container: string;
  readonly prefix: string;
  readonly chunkSize: number;
  readonly files: Map<string, FileState>;
}

interface StateJson {
  format: number;
  container: string;
  prefix: string;
  chunkSize: number;
  files: Record<string, { version: string; size: number; done: string }>;
}

export function bitmap(chunks: number): Uint8Array {
  return new Uint8Array(Math.ceil(chunks / 8));
}
export function isSet(b: Uint8Array, i: number): boolean {
  return ((b[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}
export function setBit(b: Uint8Array, i: number): void {
  b[i >> 3] = (b[i >> 3] ?? 0) | (1 << (i & 7));
}

/**
 * Maps a key under the prefix to a path under root, refusing anything that
 * could land outside it, whatever the server sent.
 */
export function localPath(root: string, prefix: string, key: string): string {
  if (!key.startsWith(prefix)) throw badKey(key, `is not under the prefix ${JSON.stringify(prefix)}`);
  const rel = key.slice(prefix.length);
  if (rel === '' || rel.endsWith('/')) throw badKey(key, 'names a directory, not a file');
  if (/[\u0000-\u001f\\]/.test(rel)) throw badKey(key, 'holds a control character or a backslash');
  for (const seg of rel.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw badKey(key, `has a '${seg}' path segment`);
  }
  const p = resolve(root, ...rel.split('/'));
  if (!p.startsWith(root + sep)) throw badKey(key, 'resolves outside the target directory');
  return p;
}

function badKey(key: string, why: string): CacheError {
  return new CacheError('BAD_KEY', `refusing file ${JSON.stringify(key)} from the server: it ${why}`);
}

export class Staging {
  readonly dir: string;
  readonly partial: string;
  readonly tree: string;
  private readonly stateFile: string;
  private readonly lockFile: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    if (dirname(this.dir) === this.dir)
      throw new CacheError('BAD_REQUEST', `--to ${dir} is a filesystem root`);
    this.partial = `${this.dir}.partial`;
    this.tree = join(this.partial, 'tree');
    this.stateFile = join(this.partial, 'state.json');
    this.lockFile = join(this.partial, 'lock');
  }

  /** Refuses early, before any download, when DIR exists and may not be replaced. */
  async checkTarget(force: boolean): Promise<void> {
    if (!force && (await exists(this.dir))) {
      throw new CacheError(
        'BAD_REQUEST',
        `${this.dir} already exists; pass --force to replace it (the new model is moved in only once complete)`,
      );
    }
  }

  /** Creates DIR.partial/ and takes its lock; a lock held by a live process is refused. */
  async acquire(): Promise<void> {
    await mkdir(this.tree, { recursive: true });
    for (let tries = 0; ; tries++) {
      try {
        const fh = await open(this.lockFile, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
        const pid = Number((await readFile(this.lockFile, 'utf8').catch(() => '')).trim());
        if (pid > 0 && pid !== process.pid && alive(pid)) {
          throw new CacheError('BAD_REQUEST', `another pull (pid ${pid}) is writing ${this.partial}`);
        }
        await rm(this.lockFile, { force: true }); // left by a pull that crashed or was killed
      }
    }
  }

  async release(): Promise<void> {
    await rm(this.lockFile, { force: true });
  }

  /** The previous run's state, or null when there is none or it does not match this pull. */
  async load(container: string, prefix: string, chunkSize: number): Promise<PullState | null> {
    let j: StateJson;
    try {
      j = JSON.parse(await readFile(this.stateFile, 'utf8')) as StateJson;
    } catch {
      return null; // none, or torn by a crash before the first rename: start over
    }
    if (j.format !== STATE_FORMAT || j.container !== container || j.prefix !== prefix) return null;
    if (j.chunkSize !== chunkSize) return null; // chunk boundaries moved: the bitmaps mean nothing
    const files = new Map<string, FileState>();
    for (const [key, f] of Object.entries(j.files ?? {})) {
      files.set(key, {
        version: f.version,
        size: f.size,
        done: new Uint8Array(Buffer.from(f.done, 'base64')),
      });
    }
    return { container, prefix, chunkSize, files };
  }

  /** Replaces state.json atomically (temp + fsync + rename + fsync dir). */
  async save(s: PullState): Promise<void> {
    const j: StateJson = {
      format: STATE_FORMAT,
      container: s.container,
      prefix: s.prefix,
      chunkSize: s.chunkSize,
      files: {},
    };
    for (const [key, f] of s.files) {
      j.files[key] = { version: f.version, size: f.size, done: Buffer.from(f.done).toString('base64') };
    }
    const tmp = `${this.stateFile}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(j));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.stateFile);
    await fsyncPath(this.partial);
  }

  /** Creates (or resizes) a staged file to its final size; `fresh` drops what it held. */
  async prepareFile(path: string, size: number, fresh: boolean): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    if (fresh) await rm(path, { force: true });
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT);
    try {
      await fh.truncate(size);
    } finally {
      await fh.close();
    }
  }

  /** Staged files of an earlier run that are not in this manifest. */
  async removeExtra(keep: ReadonlySet<string>): Promise<void> {
    for (const p of await listFiles(this.tree)) if (!keep.has(p)) await rm(p, { force: true });
  }

  /** Makes the staged tree durable and moves it into place; see the file comment. */
  async commit(force: boolean): Promise<void> {
    await syncTree(this.tree);
    let aside: string | null = null;
    if (await exists(this.dir)) {
      if (!force) throw new CacheError('BAD_REQUEST', `${this.dir} appeared during the pull; pass --force`);
      aside = `${this.dir}.old-${process.pid}`;
      await rename(this.dir, aside);
    }
    await rename(this.tree, this.dir);
    await fsyncPath(dirname(this.dir));
    await rm(this.partial, { recursive: true, force: true });
    if (aside) await rm(aside, { recursive: true, force: true });
  }

  /** Bytes free on the filesystem that will hold DIR. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.partial);
    return Number(s.bavail) * Number(s.bsize);
  }

  describe(): string {
    return basename(this.partial);
  }
}

export async function datasyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await syncTree(p);
    else await datasyncFile(p);
  }
  await fsyncPath(dir);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
