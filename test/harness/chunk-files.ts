/**
 * A node's NVMe chunk files, for tests that damage or remove them under the
 * tier's feet (docs/tiers.md: one v2 file per chunk under
 * <node dir>/chunks/<two hex digits>/…-<index>).
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { binding } from '../../src/transport/binding.js';

/** The chunk file of chunk `index` of the one object in the NVMe tier under `nodeDir`, or undefined. */
export function findChunkFile(nodeDir: string, index: number): string | undefined {
  const base = join(nodeDir, 'chunks');
  if (!existsSync(base)) return undefined;
  for (const sub of readdirSync(base)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const f of readdirSync(join(base, sub))) if (f.endsWith(`-${index}`)) return join(base, sub, f);
  }
  return undefined;
}

/** Flips one byte of a chunk file's data at `offset` (in the chunk). */
export function damageChunkFile(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const head = Buffer.alloc(8192);
    readSync(fd, head, 0, head.length, 0);
    const h = binding().nvmeDecodeHeader(head) as { ok: boolean; dataOffset: number };
    expect(h.ok).toBe(true);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, h.dataOffset + offset);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, h.dataOffset + offset);
  } finally {
    closeSync(fd);
  }
}
