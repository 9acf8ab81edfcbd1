/**
 * Helpers for tests that start a cluster of real node processes on distinct
 * loopback addresses (127.0.0.11, .12, …).
 */
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port free on 127.0.0.1 right now; nodes bind it on their own 127.0.0.x address. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** `n` member addresses on one port: 127.0.0.{from}…, as a static member list names them. */
export function addresses(n: number, port: number, from = 11): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${from + i}:${port}`);
}

/** An fs origin root holding `files` under container `models`. */
export function seedOrigin(files: Record<string, Buffer>, container = 'models'): string {
  const root = mkdtempSync(join(tmpdir(), 'wc-origin-'));
  for (const [key, bytes] of Object.entries(files)) replaceAtOrigin(root, key, bytes, container);
  return root;
}

/** Writes a new version of an object the way a publisher should: a temp file, then an atomic rename. */
export function replaceAtOrigin(root: string, key: string, bytes: Buffer, container = 'models'): void {
  const p = join(root, container, key);
  mkdirSync(join(p, '..'), { recursive: true });
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, p);
}
