/**
 * A server that lies: its manifest names files outside the prefix or with
 * dot segments, or answers a chunk with the wrong range. `pull` must refuse
 * before writing anywhere outside DIR.partial, and never move a bad model in.
 * (A real HTTP server speaking the node's API, not a mock of the client.)
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-process.js';

let server: Server;
let url: string;
let work: string;
let files: Array<{ key: string; version: string; size: number }> = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'wc-lie-'));
  server = createServer((req, res) => {
    if (req.url === '/v1/status') return void res.end(JSON.stringify({ chunkSize: 1024 }));
    if (req.url?.startsWith('/v1/manifests/')) {
      return void res.end(JSON.stringify({ container: 'c', prefix: 'm/', listedAt: '', files }));
    }
    // Every chunk: the wrong range.
    res.writeHead(206, { 'Content-Range': 'bytes 0-3/999', 'Content-Length': '4', ETag: '"v"' });
    res.end('abcd');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(work, { recursive: true, force: true });
});

describe('pull against a lying server', () => {
  for (const key of [
    'm/../../escaped',
    'm/a/../../../escaped',
    'other/escaped',
    'm//x',
    'm/a\\..\\x',
    'm/',
  ]) {
    it(`refuses the manifest key ${JSON.stringify(key)}`, async () => {
      files = [{ key, version: 'v', size: 4 }];
      const dir = join(work, 'd');
      const r = await runCli(['pull', 'c/m', '--to', dir, '--from', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('BAD_KEY: refusing file');
      expect(existsSync(dir)).toBe(false);
      expect(readdirSync(work).filter((f) => f.includes('escaped'))).toEqual([]);
    });
  }

  it('refuses a chunk answered with the wrong range and keeps DIR absent', async () => {
    files = [{ key: 'm/x.bin', version: 'v', size: 4 }];
    const dir = join(work, 'wrong-range');
    const r = await runCli(['pull', 'c/m', '--to', dir, '--from', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Content-Range bytes 0-3/999 is not bytes 0-3/4');
    expect(existsSync(dir)).toBe(false);
  });
});
