/**
 * A node's stderr is JSON lines, one per event, whatever clients do (issue
 * 12 item 7): clients that abort downloads mid-body, before the headers,
 * send garbage, or get cut by a limit. Before the fix, each mid-body abort
 * printed a 6-line `ERR_HTTP_HEADERS_SENT` stack from the HTTP adapter.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { RawConnection, rawExchange } from '../harness/raw-http.js';

const MiB = 2 ** 20;
let node: NodeProcess;
let port: number;

beforeAll(async () => {
  node = await startNodeProcess({
    config: {
      cache: { chunkSize: '1MiB', dram: { maxBytes: '16MiB' }, nvme: null },
      log: { level: 'debug' },
    },
    timeoutMs: 60_000,
  });
  port = Number(new URL(node.url).port);
  const dir = join(node.dir, 'origin', 'big');
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'sparse.bin'), 'w');
  ftruncateSync(fd, 64 * MiB);
  closeSync(fd);
});
afterAll(async () => {
  await node?.kill();
});

/** GETs a large object and hangs up after `after` body bytes (0: as soon as the headers came). */
function abortAfter(after: number, offset: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/objects/big/sparse.bin',
        headers: { Range: `bytes=${offset}-` },
        agent: false,
      },
      (res) => {
        let got = 0;
        res.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= after) req.destroy();
        });
        res.on('close', () => resolve());
        if (after === 0) req.destroy();
      },
    );
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.end();
  });
}

describe('log hygiene', () => {
  it('stderr holds only JSON lines under client aborts, garbage and cut connections', {
    timeout: 180_000,
  }, async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => abortAfter(64 * 1024, i * MiB)));
    await Promise.all(Array.from({ length: 10 }, (_, i) => abortAfter(0, i * 3 * MiB)));
    // Asked and gone before any answer.
    for (let i = 0; i < 10; i++) {
      const c = await RawConnection.open(port);
      c.send(`GET /v1/objects/big/sparse.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=${i * MiB}-\r\n\r\n`);
      c.close();
    }
    for (const garbage of [
      'GARBAGE\r\n\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n\r\n`,
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    ]) {
      expect((await rawExchange(port, garbage)).status).toBeGreaterThanOrEqual(400);
    }
    // Cut at the pipelining bound mid-response.
    const c = await RawConnection.open(port);
    c.send('GET /v1/objects/big/sparse.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(40));
    await c.waitClosed(20_000);
    c.close();
    expect(await node.stop()).toBe(0); // drains and flushes the log
    const lines = node.logs
      .join('\n')
      .split('\n')
      .filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(2);
    const notJson = lines.filter((l) => {
      try {
        const o = JSON.parse(l);
        return (
          typeof o !== 'object' || o === null || typeof o.level !== 'number' || typeof o.msg !== 'string'
        );
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    expect(lines.join('\n')).not.toMatch(/ERR_HTTP_HEADERS_SENT/);
    // A client leaving is an everyday event: debug, never a warning or an error.
    const loud = lines.map((l) => JSON.parse(l)).filter((o) => o.level >= 40);
    expect(loud).toEqual([]);
  });
});
