/**
 * POST /v1/prefetch on a real node process: a job warms every chunk of a
 * model through the read path (reads afterwards come from DRAM, the origin is
 * not read again), its status progresses to done, bad input is refused at the
 * door with a code, and the `weightcache prefetch` CLI follows a job to the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/cli-process.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { until } from '../harness/until.js';

const CHUNK = 256 * 1024;
const model: Record<string, Buffer> = {
  'config.json': Buffer.from('{"a":1}'),
  'empty.bin': Buffer.alloc(0),
  'sub/shard.safetensors': randomBytes(5 * CHUNK + 777),
};
const BIG = 64 * CHUNK;
const BYTES = Object.values(model).reduce((n, b) => n + b.length, 0);

let node: NodeProcess;

beforeAll(async () => {
  node = await startNodeProcess({ config: { cache: { chunkSize: '256KiB' } } });
  const big = join(node.dir, 'origin', 'join', 'm', 'big.bin');
  mkdirSync(join(big, '..'), { recursive: true });
  writeFileSync(big, randomBytes(BIG));
  for (const container of ['warm', 'cli']) {
    for (const [rel, bytes] of Object.entries(model)) {
      const p = join(node.dir, 'origin', container, 'm', rel);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, bytes);
    }
  }
});
afterAll(async () => {
  await node?.kill();
  rmSync(node.dir, { recursive: true, force: true });
});

interface Job {
  state: string;
  files: number;
  filesDone: number;
  bytesDone: number;
  bytesTotal: number;
  error?: { code: string };
}

async function post(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${node.url}/v1/prefetch`, { method: 'POST', body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('POST /v1/prefetch', () => {
  it('warms every chunk: the job reaches done, later reads come from DRAM without origin reads', async () => {
    const originBefore = await node.metric('weightcache_origin_bytes_total');
    const started = await post(JSON.stringify({ container: 'warm', prefix: 'm/' }));
    expect(started.status).toBe(202);
    expect(started.json).toMatchObject({ files: 3, bytes: BYTES, joined: false });
    const id = started.json.id as string;

    let job: Job | undefined;
    const seen: number[] = [];
    await until(async () => {
      job = (await (await fetch(`${node.url}/v1/prefetch/${id}`)).json()) as Job;
      seen.push(job.bytesDone);
      return job.state !== 'running';
    });
    expect(job).toMatchObject({ state: 'done', files: 3, filesDone: 3, bytesDone: BYTES, bytesTotal: BYTES });
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // progress only grows
    expect((await node.metric('weightcache_origin_bytes_total')) - originBefore).toBe(BYTES);

    const originReads = await node.metric('weightcache_origin_requests_total', { op: 'read' });
    for (const [rel, bytes] of Object.entries(model)) {
      if (bytes.length === 0) continue;
      const res = await get(node.url, `/v1/objects/warm/m/${rel}`);
      expect(res.status).toBe(200);
      expect(res.headers['x-cache-source']).toBe('dram');
      expect(res.body.equals(bytes)).toBe(true);
    }
    expect(await node.metric('weightcache_origin_requests_total', { op: 'read' })).toBe(originReads);
  });

  it('a second POST for a running prefix joins its job: one job, the origin read once', async () => {
    const originBefore = await node.metric('weightcache_origin_bytes_total');
    const body = JSON.stringify({ container: 'join', prefix: 'm/' });
    const [a, b] = await Promise.all([post(body), post(body)]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.json.id).toBe(b.json.id);
    expect([a.json.joined, b.json.joined].sort()).toEqual([false, true]);
    await until(async () => {
      const job = (await (await fetch(`${node.url}/v1/prefetch/${a.json.id}`)).json()) as Job;
      return job.state === 'done';
    });
    expect((await node.metric('weightcache_origin_bytes_total')) - originBefore).toBe(BIG);
  });

  it('refuses bad input with 400 and a code, unknown jobs with 404', async () => {
    const cases: Array<[string, number, string]> = [
      ['not json', 400, 'BAD_REQUEST'],
      ['[]', 400, 'BAD_REQUEST'],
      [JSON.stringify({ container: 'warm' }), 400, 'BAD_REQUEST'],
      [JSON.stringify({ prefix: 'm/' }), 400, 'BAD_REQUEST'],
      [JSON.stringify({ container: 'warm', prefix: 3 }), 400, 'BAD_REQUEST'],
      [JSON.stringify({ container: 'warm', prefix: 'm/../../etc/' }), 400, 'BAD_KEY'],
      [JSON.stringify({ container: '../x', prefix: 'm/' }), 400, 'BAD_KEY'],
      [JSON.stringify({ container: 'warm', prefix: '/abs' }), 400, 'BAD_KEY'],
      [JSON.stringify({ container: 'warm', prefix: 'nothing/' }), 404, 'NOT_FOUND'],
      [JSON.stringify({ container: 'warm', prefix: 'x'.repeat(20_000) }), 413, 'TOO_LARGE'],
    ];
    for (const [body, status, code] of cases) {
      const r = await post(body);
      expect({ body: body.slice(0, 60), status: r.status, code: r.json.code }).toEqual({
        body: body.slice(0, 60),
        status,
        code,
      });
      expect(typeof r.json.message).toBe('string');
    }
    const res = await fetch(`${node.url}/v1/prefetch/0123456789abcdef`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('NOT_FOUND');
  });

  it('weightcache prefetch follows the job to done; --no-wait prints the id and returns', async () => {
    const r = await runCli(['prefetch', 'cli/m', '--url', node.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^prefetch cli\/m\/: job [0-9a-f]{16}, 3 files/);
    expect(r.stdout).toContain('prefetched cli/m/: 3 files');

    const quick = await runCli(['prefetch', 'cli/m', '--url', node.url, '--no-wait']);
    expect(quick.code).toBe(0);
    expect(quick.stdout).toMatch(/job [0-9a-f]{16}/);

    const bad = await runCli(['prefetch', 'cli/nothing', '--url', node.url]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('NOT_FOUND');
  });
});
