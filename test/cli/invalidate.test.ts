/**
 * `weightcache invalidate` end to end: a real node process over an fs origin
 * and the CLI as a real process. Each case binds its names by reading them,
 * replaces them at the origin, sees the old bytes still served, invalidates,
 * and sees the new bytes — all well within one lease term of the first read,
 * so only the invalidation can explain the change (each case checks it took
 * less than a term). Also: --prefix, an object deleted at the origin, --json,
 * auth, the failures an operator meets (bad arguments, no node, 503), and an
 * Event Grid delivery to the same real node.
 *
 * The term is not longer because a home that just started answers an
 * invalidation only once it is settled, (1 + ρ)·term after its start (it may
 * have a predecessor whose leases it cannot see; docs/coherence.md): the
 * nodes are started first and waited for until settled.
 */
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { runCli } from './cli-process.js';

const TERM_MS = 20_000;
const READ = 'read-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';

let node: NodeProcess;
let authed: NodeProcess;
let adminTokenFile: string;

/** Replaces a file at the origin the way an uploader should: write aside, rename over. */
function replaceAtOrigin(n: NodeProcess, rel: string, bytes: Buffer): void {
  const p = join(n.dir, 'origin', rel);
  mkdirSync(join(p, '..'), { recursive: true });
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, p);
}

async function read(n: NodeProcess, rel: string, headers: Record<string, string> = {}) {
  const r = await get(n.url, `/v1/objects/${rel}`, headers);
  return { status: r.status, body: r.body.toString(), etag: r.headers.etag };
}

const bytes = (s: string) => Buffer.from(s);

/** Waits until the node's home vouches for every lease (see the top of this file). */
async function settled(n: NodeProcess, headers: Record<string, string> = {}): Promise<void> {
  for (;;) {
    const status = JSON.parse((await get(n.url, '/v1/status', headers)).body.toString());
    const left = status.coherence?.settledInMs;
    if (left === 0) return;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(50, left ?? 1000))));
  }
}

/** Fails a case that took a lease term or more: its fresh read would then prove nothing. */
function withinOneTerm(startedAt: number): void {
  expect(Date.now() - startedAt, 'the case must finish within one lease term').toBeLessThan(TERM_MS);
}

beforeAll(async () => {
  const adminDir = mkdtempSync(join(tmpdir(), 'wc-inv-auth-'));
  writeFileSync(join(adminDir, 'tokens'), `${READ}\n`);
  writeFileSync(join(adminDir, 'admin'), `${ADMIN}\n`);
  adminTokenFile = join(adminDir, 'admin');
  const leases = { term: `${TERM_MS}ms` };
  [node, authed] = await Promise.all([
    startNodeProcess({ config: { leases } }),
    startNodeProcess({
      dir: adminDir,
      config: { leases, auth: { tokensFile: join(adminDir, 'tokens'), adminTokensFile: adminTokenFile } },
    }),
  ]);
  await Promise.all([settled(node), settled(authed, { Authorization: `Bearer ${READ}` })]);
}, 4 * TERM_MS);
afterAll(async () => {
  await node?.kill();
  await authed?.kill();
  if (node) rmSync(node.dir, { recursive: true, force: true });
  if (authed) rmSync(authed.dir, { recursive: true, force: true });
});

describe('weightcache invalidate (real node, real CLI)', () => {
  it('after a replace at the origin, a read gets the new bytes as soon as the CLI returns', async () => {
    replaceAtOrigin(node, 'models/m/config.json', bytes('{"version": 1}'));
    const t0 = Date.now();
    const before = await read(node, 'models/m/config.json');
    expect(before.body).toBe('{"version": 1}');
    replaceAtOrigin(node, 'models/m/config.json', bytes('{"version": 2, "new": true}'));
    // The lease still binds the old version: the cache keeps answering it.
    expect((await read(node, 'models/m/config.json')).body).toBe('{"version": 1}');
    const cliBefore = await node.metric('weightcache_invalidations_total', { source: 'cli' });

    const r = await runCli(['invalidate', 'models/m/config.json', '--url', node.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^invalidated models\/m\/config\.json: now ETag "[^"]+", 27 bytes; \d+ leases? acknowledged, \d+ waited out, in \d+(\.\d)? m?s\n$/,
    );

    const after = await read(node, 'models/m/config.json');
    expect(after.body).toBe('{"version": 2, "new": true}');
    expect(after.etag).not.toBe(before.etag);
    expect(r.stdout).toContain(`ETag ${after.etag}`);
    withinOneTerm(t0);
    expect(await node.metric('weightcache_invalidations_total', { source: 'cli' })).toBe(cliBefore + 1);
  });

  it('--prefix invalidates every name under it, and only those', async () => {
    replaceAtOrigin(node, 'models/p/a.bin', bytes('a version one'));
    replaceAtOrigin(node, 'models/p/b.bin', bytes('b version one'));
    replaceAtOrigin(node, 'models/q/other.bin', bytes('q version one'));
    const t0 = Date.now();
    for (const rel of ['p/a.bin', 'p/b.bin', 'q/other.bin']) await read(node, `models/${rel}`);
    replaceAtOrigin(node, 'models/p/a.bin', bytes('a version two!'));
    replaceAtOrigin(node, 'models/p/b.bin', bytes('b version two!!'));
    replaceAtOrigin(node, 'models/q/other.bin', bytes('q version two'));
    expect((await read(node, 'models/p/a.bin')).body).toBe('a version one');

    const r = await runCli(['invalidate', '--prefix', 'models/p/', '--node', node.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^invalidated models\/p\/\*: \d+ names? re-resolved; \d+ leases? acknowledged, \d+ waited out, in \d+(\.\d)? m?s\n$/,
    );
    expect((await read(node, 'models/p/a.bin')).body).toBe('a version two!');
    expect((await read(node, 'models/p/b.bin')).body).toBe('b version two!!');
    // Outside the prefix the lease still holds.
    expect((await read(node, 'models/q/other.bin')).body).toBe('q version one');
    withinOneTerm(t0);
  });

  it('an object deleted at the origin answers "deleted", then reads get 404', async () => {
    replaceAtOrigin(node, 'models/gone.bin', bytes('soon deleted'));
    const t0 = Date.now();
    expect((await read(node, 'models/gone.bin')).status).toBe(200);
    unlinkSync(join(node.dir, 'origin', 'models', 'gone.bin'));
    expect((await read(node, 'models/gone.bin')).body).toBe('soon deleted');

    const r = await runCli(['invalidate', 'models/gone.bin', '--url', node.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^invalidated models\/gone\.bin: deleted \(the origin no longer has it; reads get 404\)/,
    );
    expect((await read(node, 'models/gone.bin')).status).toBe(404);
    withinOneTerm(t0);
  });

  it("--json prints the node's answer", async () => {
    replaceAtOrigin(node, 'models/j.json', bytes('{"v": 1}'));
    const t0 = Date.now();
    expect((await read(node, 'models/j.json')).body).toBe('{"v": 1}');
    replaceAtOrigin(node, 'models/j.json', bytes('{"version": 3}'));
    expect((await read(node, 'models/j.json')).body).toBe('{"v": 1}');
    const r = await runCli(['invalidate', 'models/j.json', '--url', node.url, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      container: 'models',
      key: 'j.json',
      version: { etag: expect.any(String), size: 14, lastModified: expect.any(String) },
      names: 1,
      acked: expect.any(Number),
      expired: expect.any(Number),
      durationMs: expect.any(Number),
    });
    expect((await read(node, 'models/j.json')).body).toBe('{"version": 3}');
    withinOneTerm(t0);
  });

  it('refuses bad arguments before contacting anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['invalidate', 'models'], /expected container\/key.*--prefix/],
      [['invalidate', 'models/'], /expected container\/key/],
      [['invalidate', 'models/a/../../etc/passwd'], /BAD_KEY: key has a '\.\.' path segment/],
      [['invalidate', '--prefix', '../x/'], /BAD_KEY: container name/],
      [['invalidate'], /missing required argument/],
      [['invalidate', 'models/k', '--url', 'not a url'], /not a URL/],
      [['invalidate', 'models/k', '--timeout', 'soon'], /--timeout must be/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect({ args, code: r.code === 0 ? 0 : 'non-zero' }).toEqual({ args, code: 'non-zero' });
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
  });

  it('says so when the node cannot be reached', async () => {
    const r = await runCli(['invalidate', 'models/k', '--url', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^weightcache: PEER_UNAVAILABLE: cannot reach http:\/\/127\.0\.0\.1:1: ECONNREFUSED\n$/,
    );
  });

  it('reports a 503 (the invalidation did not complete) and a server without the route', async () => {
    const answers: Array<[number, object]> = [
      [503, { code: 'OVERLOADED', message: 'the home of models/k is unreachable' }],
      [404, { code: 'NOT_FOUND', message: 'no route for POST /v1/invalidate' }],
    ];
    let seen: { source?: string; body?: string } = {};
    const fake: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen = { source: req.headers['x-weightcache-source'] as string, body };
        const [status, json] = answers[0]!;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    try {
      const unavailable = await runCli(['invalidate', 'models/k', '--url', url]);
      expect(unavailable.code).toBe(1);
      expect(unavailable.stderr).toMatch(
        /OVERLOADED: invalidate models\/k: the node answered 503: the home of models\/k is unreachable; the invalidation did not complete, retry it/,
      );
      expect(seen).toEqual({ source: 'cli', body: '{"container":"models","key":"k"}' });
      answers.shift();
      const noRoute = await runCli(['invalidate', '--prefix', 'models', '--url', url]);
      expect(noRoute.code).toBe(1);
      expect(noRoute.stderr).toMatch(/answered 404: .*this server has no \/v1\/invalidate/);
      expect(seen.body).toBe('{"container":"models","prefix":""}');
    } finally {
      fake.close();
    }
  });

  it('needs an admin token where the node has auth: none → 401, read → 403, admin (--token-file) → done', async () => {
    replaceAtOrigin(authed, 'models/k.bin', bytes('one'));
    const t0 = Date.now();
    const bearer = { Authorization: `Bearer ${READ}` };
    expect((await read(authed, 'models/k.bin', bearer)).body).toBe('one');
    replaceAtOrigin(authed, 'models/k.bin', bytes('two!'));

    const none = await runCli(['invalidate', 'models/k.bin', '--url', authed.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /UNAUTHORIZED: .*answered 401: .*pass an admin token with --token or --token-file/,
    );
    const reader = await runCli(['invalidate', 'models/k.bin', '--url', authed.url, '--token', READ]);
    expect(reader.code).toBe(1);
    expect(reader.stderr).toMatch(/FORBIDDEN: .*answered 403: .*needs an admin token/);
    expect((await read(authed, 'models/k.bin', bearer)).body).toBe('one');

    const admin = await runCli([
      'invalidate',
      'models/k.bin',
      '--url',
      authed.url,
      '--token-file',
      adminTokenFile,
    ]);
    expect(admin.stderr).toBe('');
    expect(admin.code).toBe(0);
    expect((await read(authed, 'models/k.bin', bearer)).body).toBe('two!');
    withinOneTerm(t0);
  });
});

describe('the same node through its Azure Event Grid webhook (POST /v1/events/azure)', () => {
  it('a BlobCreated delivery makes reads get the new bytes once it is answered, a bad subject skipped', async () => {
    replaceAtOrigin(node, 'models/eg/shard.bin', bytes('shard version one'));
    const t0 = Date.now();
    expect((await read(node, 'models/eg/shard.bin')).body).toBe('shard version one');
    replaceAtOrigin(node, 'models/eg/shard.bin', bytes('shard version two'));
    expect((await read(node, 'models/eg/shard.bin')).body).toBe('shard version one');
    const before = await node.metric('weightcache_invalidations_total', { source: 'eventgrid' });
    const event = (key: string) => ({
      specversion: '1.0',
      type: 'Microsoft.Storage.BlobCreated',
      source:
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct',
      id: `id-${key}`,
      time: '2025-05-01T10:00:00.0000000Z',
      subject: `/blobServices/default/containers/models/blobs/${key}`,
      data: { api: 'PutBlockList', eTag: '0x8DD0000000000000', contentLength: 17, blobType: 'BlockBlob' },
    });
    const res = await fetch(`${node.url}/v1/events/azure`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json; charset=utf-8' },
      body: JSON.stringify([event('eg/shard.bin'), event('eg/../escape'), event('eg/shard.bin')]),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: 1, ignored: 0, skipped: 1 });
    expect((await read(node, 'models/eg/shard.bin')).body).toBe('shard version two');
    withinOneTerm(t0);
    expect(await node.metric('weightcache_invalidations_total', { source: 'eventgrid' })).toBe(before + 1);
    expect(await node.metric('weightcache_eventgrid_events_skipped_total')).toBeGreaterThanOrEqual(1);
  });
});
