/**
 * Authentication on the HTTP and RESP doors of a real node: the token matrix
 * (missing, wrong, wrong scope, not admin) and what stays open. Tokens come
 * from files, as a mounted Kubernetes Secret would provide them.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenSet } from '../../src/auth/tokens.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';

const READER = 'reader-token-0123456789abcdef'; // may read container "models" only
const ALL = 'all-containers-token-0123456789'; // may read everything
const ADMIN = 'admin-token-0123456789abcdefgh';
let node: NodeProcess;
let respPort: number;

beforeAll(async () => {
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'wc-auth-'));
  writeFileSync(join(dir, 'tokens'), `# readers\n${READER} models\n\n${ALL}\n`);
  writeFileSync(join(dir, 'admin'), `${ADMIN}\n`);
  for (const c of ['models', 'secret']) {
    mkdirSync(join(dir, 'origin', c), { recursive: true });
    writeFileSync(join(dir, 'origin', c, 'f.bin'), `bytes of ${c}`);
  }
  respPort = await freePort();
  node = await startNodeProcess({
    dir,
    config: {
      auth: { tokensFile: join(dir, 'tokens'), adminTokensFile: join(dir, 'admin') },
      resp: { listen: `127.0.0.1:${respPort}` },
    },
  });
});
afterAll(async () => {
  await node?.kill();
});

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

describe('HTTP bearer tokens', () => {
  it('no token → 401 with WWW-Authenticate; a wrong token → 401', async () => {
    const none = await get(node.url, '/v1/objects/models/f.bin');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(JSON.parse(none.body.toString()).code).toBe('UNAUTHORIZED');
    for (const t of ['nope', READER.slice(0, -1), `${READER}x`, READER.toUpperCase()]) {
      expect((await get(node.url, '/v1/objects/models/f.bin', bearer(t))).status, t).toBe(401);
    }
    expect((await get(node.url, '/v1/objects/models/f.bin', { Authorization: READER })).status).toBe(401);
  });

  it('a scoped token reads its containers only (403 elsewhere); an unscoped one reads all', async () => {
    const ok = await get(node.url, '/v1/objects/models/f.bin', bearer(READER));
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe('bytes of models');
    const denied = await get(node.url, '/v1/objects/secret/f.bin', bearer(READER));
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body.toString()).code).toBe('FORBIDDEN');
    expect((await get(node.url, '/v1/manifests/secret/', bearer(READER))).status).toBe(403);
    expect((await get(node.url, '/v1/objects/secret/f.bin', bearer(ALL))).status).toBe(200);
  });

  it('admin endpoints need an admin token', async () => {
    const body = JSON.stringify({ container: 'models', prefix: '' });
    const post = (t: string) =>
      fetch(`${node.url}/v1/prefetch`, {
        method: 'POST',
        body,
        headers: { ...bearer(t), 'content-type': 'application/json' },
      });
    expect((await post(ALL)).status).toBe(403);
    expect((await post(ADMIN)).status).toBe(202);
    expect((await get(node.url, '/v1/objects/secret/f.bin', bearer(ADMIN))).status).toBe(200);
  });

  it('probes stay open, /metrics too where auth.openMetrics opts in; status needs a token', async () => {
    // Every target spelling of these routes: test/auth/http-targets.test.ts.
    expect((await get(node.url, '/healthz')).status).toBe(200);
    expect((await get(node.url, '/readyz')).status).toBe(200);
    expect((await get(node.url, '/metrics')).status).toBe(200); // the harness sets auth.openMetrics: true
    expect((await get(node.url, '/v1/status')).status).toBe(401);
    expect((await get(node.url, '/v1/status', bearer(READER))).status).toBe(200);
  });
});

/** One RESP connection speaking raw commands: reply lines as they come. */
async function raw(port: number) {
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  let buf = '';
  sock.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  const send = async (...args: string[]) => {
    const start = buf.length;
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    for (let i = 0; i < 500 && buf.length === start; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20)); // the rest of a bulk reply
    return buf.slice(start);
  };
  return { send, close: () => sock.destroy() };
}

describe('RESP AUTH', () => {
  it('NOAUTH before AUTH, WRONGPASS for a bad token, then reads within the token scope', async () => {
    const c = await raw(respPort);
    try {
      expect(await c.send('GET', 'models/f.bin')).toMatch(/^-NOAUTH/);
      expect(await c.send('AUTH', 'wrong-token-0123456789')).toMatch(/^-WRONGPASS/);
      expect(await c.send('AUTH', READER)).toBe('+OK\r\n');
      expect(await c.send('GET', 'models/f.bin')).toBe('$15\r\nbytes of models\r\n');
      expect(await c.send('GET', 'secret/f.bin')).toMatch(/^-NOPERM/);
    } finally {
      c.close();
    }
  });

  it('real clients authenticate with HELLO 3 AUTH (ioredis)', async () => {
    const r = new Redis({
      host: '127.0.0.1',
      port: respPort,
      password: ALL,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await r.connect();
    try {
      expect(await r.get('secret/f.bin')).toBe('bytes of secret');
    } finally {
      r.disconnect();
    }
  });

  it('failed attempts are answered ever more slowly on a connection', async () => {
    const c = await raw(respPort);
    try {
      const t0 = performance.now();
      for (let i = 0; i < 4; i++)
        expect(await c.send('AUTH', `bad-guess-${i}-0123456789`)).toMatch(/^-WRONGPASS/);
      // 50 + 100 + 200 + 400 ms of enforced delay: a lower bound, not a timing measurement.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(750);
    } finally {
      c.close();
    }
  });
});

describe('CLI verbs with a token', () => {
  it('pull and status send --token / --token-file; without one they fail with the reason', async () => {
    const { spawnSync } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    const { BIN } = await import('../harness/node-process.js');
    const to = join(node.dir, 'pulled');
    const tokenFile = join(node.dir, 'reader-token');
    writeFileSync(tokenFile, `${READER}\n`);
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    const denied = run('pull', 'models/', '--to', to, '--from', node.url, '-q');
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/UNAUTHORIZED|401/);
    const ok = run('pull', 'models/', '--to', to, '--from', node.url, '-q', '--token-file', tokenFile);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(readFileSync(join(to, 'f.bin'), 'utf8')).toBe('bytes of models');
    const status = run('status', '--url', node.url, '--json', '--token', READER);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout).ready).toBe(true);
  });
});

describe('token sets', () => {
  it('token files allow comments at the end of a line, as docs/security.md shows', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const f = join(mkdtempSync(join(tmpdir(), 'wc-tok-')), 'tokens');
    writeFileSync(
      f,
      '# header\nabcdefghijklmnop  models,tokenizers   # scoped\nqrstuvwxyz012345 # every container\n',
    );
    const set = TokenSet.load({ tokensFile: f, adminTokensFile: null })!;
    expect([...(set.check('abcdefghijklmnop')?.containers ?? [])]).toEqual(['models', 'tokenizers']);
    expect(set.check('qrstuvwxyz012345')?.containers).toBeNull();
    expect(set.size).toBe(2);
  });

  it('match whole tokens only, whatever their length', () => {
    const set = TokenSet.of([{ token: 'abcdefghijklmnop' }, { token: 'x'.repeat(200), admin: true }]);
    expect(set.check('abcdefghijklmnop')?.admin).toBe(false);
    expect(set.check('x'.repeat(200))?.admin).toBe(true);
    for (const t of ['', 'abcdefghijklmno', 'abcdefghijklmnopq', 'x'.repeat(199), 'x'.repeat(201)]) {
      expect(set.check(t)).toBeUndefined();
    }
  });
});
