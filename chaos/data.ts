/**
 * The origin's bytes, kept in memory beside the files, so every byte a node
 * serves is compared with what the origin holds. Random bytes (like weights:
 * incompressible, and a misplaced chunk cannot match by accident).
 */
import { randomFillSync } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const CONTAINER = 'models';

export class Dataset {
  private readonly files = new Map<string, Buffer>();

  constructor(readonly root: string) {}

  /** Writes `bytes` as `{root}/models/{key}` the way a publisher should: temp file, then rename. */
  put(key: string, bytes: Buffer): Buffer {
    const path = this.pathOf(key);
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
    this.files.set(key, bytes);
    return bytes;
  }

  /** A new object of `size` random bytes. */
  random(key: string, size: number): Buffer {
    return this.put(key, randomFillSync(Buffer.allocUnsafe(size)));
  }

  /** Records bytes written by other means (in-place rewrites, sparse files). */
  remember(key: string, bytes: Buffer): void {
    this.files.set(key, bytes);
  }

  get(key: string): Buffer {
    const b = this.files.get(key);
    if (!b) throw new Error(`dataset: no object ${key}`);
    return b;
  }

  keys(): string[] {
    return [...this.files.keys()];
  }

  pathOf(key: string): string {
    return join(this.root, CONTAINER, ...key.split('/'));
  }

  urlPath(key: string): string {
    return `/v1/objects/${CONTAINER}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
}

/** Bytes of `got` that differ from `want` (lengths compared too): 0 means byte-exact. */
export function wrongBytes(got: Buffer, want: Buffer): number {
  if (got.length === want.length && got.equals(want)) return 0;
  let n = Math.abs(got.length - want.length);
  const common = Math.min(got.length, want.length);
  for (let i = 0; i < common; i++) if (got[i] !== want[i]) n++;
  return n;
}
