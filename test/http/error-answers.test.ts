/**
 * Every refusal answers the documented JSON `{code, message}` with an exact
 * Content-Length, whoever refuses (issue 12 item 8, HTTP parts): node's own
 * parser (400/413/431, before there is a request object), the request-target
 * parse, a route; HEAD gets the same headers without the body. And the two
 * Range/If-Range rules the issue found undocumented or wrong.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { rawExchange, rawRequest } from '../harness/raw-http.js';

let node: NodeProcess;
let port: number;
const BYTES = Buffer.from('0123456789abcdefghij');

beforeAll(async () => {
  node = await startNodeProcess({ timeoutMs: 60_000 });
  port = Number(new URL(node.url).port);
  mkdirSync(join(node.dir, 'origin', 'models'), { recursive: true });
  writeFileSync(join(node.dir, 'origin', 'models', 'f.bin'), BYTES);
});
afterAll(async () => {
  await node?.kill();
});

function json(body: Buffer): { code: string; message: string } {
  const o = JSON.parse(body.toString());
  expect(typeof o.message).toBe('string');
  return o;
}

describe('error answers', () => {
  it('the native door refuses a body over the largest any route reads before buffering it', async () => {
    const native = await startNodeProcess({
      timeoutMs: 60_000,
      config: { http: { door: 'native', threads: 1 } },
    });
    try {
      // The head alone: a 413 comes back without the 2 MiB body ever being sent.
      const r = await rawExchange(
        Number(new URL(native.url).port),
        'POST /v1/invalidate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n',
      );
      expect(r.status).toBe(413);
      expect(json(r.body).code).toBe('TOO_LARGE');
    } finally {
      await native.kill();
    }
  });

  it("node's parser refusals carry the JSON body with a stable code and close the connection", async () => {
    const cases: Array<[string, number, string]> = [
      ['GARBAGE\r\n\r\n', 400, 'BAD_REQUEST'],
      ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400, 'BAD_REQUEST'],
      [
        'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
        400,
        'BAD_REQUEST',
      ],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
      [
        `POST /v1/invalidate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(17_000)}\r\na\r\n0\r\n\r\n`,
        413,
        'TOO_LARGE',
      ],
    ];
    for (const [raw, status, code] of cases) {
      const r = await rawExchange(port, raw);
      expect({ status: r.status, code: json(r.body).code }).toEqual({ status, code });
      expect(r.headers['content-type']).toBe('application/json');
      expect(Number(r.headers['content-length'])).toBe(r.body.length);
      expect(r.headers.connection).toBe('close');
    }
  });

  it('a missing or doubled Host is refused with the JSON body (RFC 9112 §3.2)', async () => {
    const none = await rawExchange(port, 'GET /healthz HTTP/1.1\r\n\r\n');
    expect({ status: none.status, code: json(none.body).code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
    const two = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    expect({ status: two.status, code: json(two.body).code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
    expect((await rawExchange(port, 'GET /healthz HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('HEAD errors carry the Content-Length of the JSON body a GET gets', async () => {
    for (const target of [
      '/v1/objects/models/missing.bin',
      '/v1/objects/models/../x',
      '/nowhere',
      '/v1/prefetch#x',
    ]) {
      const get = await rawExchange(port, rawRequest('GET', target));
      const head = await rawExchange(port, rawRequest('HEAD', target), true);
      expect(get.status).toBeGreaterThanOrEqual(400);
      expect({ target, status: head.status, length: head.headers['content-length'] }).toEqual({
        target,
        status: get.status,
        length: String(get.body.length),
      });
      expect(head.headers['content-type']).toBe('application/json');
    }
  });

  it('If-Range with a list of entity tags is a false condition: 200 with the whole object', async () => {
    const first = await rawExchange(port, rawRequest('GET', '/v1/objects/models/f.bin'));
    const etag = first.headers.etag!;
    const ranged = (ifRange: string) =>
      rawExchange(
        port,
        rawRequest('GET', '/v1/objects/models/f.bin', { Range: 'bytes=0-3', 'If-Range': ifRange }),
      );
    expect((await ranged(etag)).status).toBe(206);
    for (const list of [`"x", ${etag}`, `${etag}, "x"`, `${etag},${etag}`]) {
      const r = await ranged(list);
      expect({ list, status: r.status, body: r.body.toString() }).toEqual({
        list,
        status: 200,
        body: BYTES.toString(),
      });
    }
  });

  it('bytes=0-0 answers 206; the same range repeated (a byte asked for more than twice) answers 200', async () => {
    const once = await rawExchange(
      port,
      rawRequest('GET', '/v1/objects/models/f.bin', { Range: 'bytes=0-0' }),
    );
    expect({ status: once.status, range: once.headers['content-range'] }).toEqual({
      status: 206,
      range: `bytes 0-0/${BYTES.length}`,
    });
    const many = await rawExchange(
      port,
      rawRequest('GET', '/v1/objects/models/f.bin', { Range: `bytes=${Array(165).fill('0-0').join(',')}` }),
    );
    expect({ status: many.status, body: many.body.toString() }).toEqual({
      status: 200,
      body: BYTES.toString(),
    });
  });
});
