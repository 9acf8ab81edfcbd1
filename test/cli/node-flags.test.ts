/**
 * The operator verbs find their node the same way: `--url`, or `--config` with
 * the node's own config file (its http.listen and its token files), or
 * $WEIGHTCACHE_CONFIG. A real node started from a config file on a port that
 * is not the default, with read and admin tokens, and the real CLI against it;
 * plus the mistakes an operator makes, each named in the error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { runCli } from './cli-process.js';

const READ = 'read-token-flags-0123456789';
const ADMIN = 'admin-token-flags-0123456789';
const FILE = randomBytes(3 * 2 ** 20 + 17);

let node: NodeProcess;
let port: number;
let scratch: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-flags-'));
  scratch = mkdtempSync(join(tmpdir(), 'wc-flags-out-'));
  writeFileSync(join(dir, 'tokens'), `${READ} models\n`);
  writeFileSync(join(dir, 'admin'), `${ADMIN}\n`);
  mkdirSync(join(dir, 'origin', 'models', 'm'), { recursive: true });
  writeFileSync(join(dir, 'origin', 'models', 'm', 'weights.bin'), FILE);
  writeFileSync(join(dir, 'origin', 'models', 'm', 'config.json'), '{"v":1}');
  port = await freePort();
  node = await startNodeProcess({
    dir,
    config: {
      http: { listen: `127.0.0.1:${port}` },
      leases: { term: '1s' },
      auth: { tokensFile: join(dir, 'tokens'), adminTokensFile: join(dir, 'admin') },
    },
  });
  expect(node.url).toBe(`http://127.0.0.1:${port}`);
  // An invalidation is answered once the node's home is settled, about one lease term after start.
  for (;;) {
    const s = JSON.parse(
      (await get(node.url, '/v1/status', { authorization: `Bearer ${READ}` })).body.toString(),
    );
    if (s.coherence?.settledInMs === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  await node?.stop();
});

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('--config FILE: the node address and tokens from its config', () => {
  it('status reads the port and a read token from the config', async () => {
    const r = await runCli(['status', '--config', node.configFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/— ready, up/);
  });

  it('status takes $WEIGHTCACHE_CONFIG the way the node does', async () => {
    const r = await runCli(['status', '--json'], { WEIGHTCACHE_CONFIG: node.configFile });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ready).toBe(true);
  });

  it('pull uses a read token whose scope covers the container', async () => {
    const to = join(scratch, 'pulled');
    const r = await runCli(['pull', 'models/m', '--to', to, '--config', node.configFile, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(join(to, 'weights.bin')))).toBe(sha(FILE));
  });

  it('prefetch and invalidate use an admin token from auth.adminTokensFile', async () => {
    const p = await runCli(['prefetch', 'models/m', '--config', node.configFile, '-q']);
    expect(p.code, p.stderr).toBe(0);
    const i = await runCli(['invalidate', 'models/m/config.json', '--config', node.configFile, '--json']);
    expect(i.code, i.stderr).toBe(0);
    expect(JSON.parse(i.stdout)).toMatchObject({ container: 'models', key: 'm/config.json' });
  });

  it('an explicit --url or --token wins over the config', async () => {
    const wrongPort = await freePort();
    const r = await runCli(['status', '--config', node.configFile, '--url', `http://127.0.0.1:${wrongPort}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${wrongPort}`);
    const t = await runCli(['status', '--config', node.configFile, '--token', 'not-a-token-0123456789']);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/401/);
  });
});

describe('--url and the old spellings', () => {
  it('every verb takes --url', async () => {
    const s = await runCli(['status', '--url', node.url, '--token', READ]);
    expect(s.code, s.stderr).toBe(0);
    const to = join(scratch, 'by-url');
    const p = await runCli(['pull', 'models/m', '--to', to, '--url', node.url, '--token', ADMIN, '-q']);
    expect(p.code, p.stderr).toBe(0);
    const w = await runCli(['prefetch', 'models/m', '--url', node.url, '--token', ADMIN, '-q']);
    expect(w.code, w.stderr).toBe(0);
    const i = await runCli(['invalidate', 'models/m/config.json', '--url', node.url, '--token', ADMIN]);
    expect(i.code, i.stderr).toBe(0);
  });

  it('pull --from and invalidate --node still work; disagreeing spellings are refused', async () => {
    const to = join(scratch, 'by-from');
    const p = await runCli(['pull', 'models/m', '--to', to, '--from', node.url, '--token', READ, '-q']);
    expect(p.code, p.stderr).toBe(0);
    const i = await runCli(['invalidate', 'models/m/config.json', '--node', node.url, '--token', ADMIN]);
    expect(i.code, i.stderr).toBe(0);
    const both = await runCli([
      'pull',
      'models/m',
      '--to',
      join(scratch, 'x'),
      '--from',
      node.url,
      '--url',
      'http://127.0.0.1:1',
    ]);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--url http://127.0.0.1:1 and --from');
  });
});

describe('mistakes are named', () => {
  it('a config file that is missing or invalid names the file (exit 78)', async () => {
    const missing = await runCli(['status', '--config', '/nonexistent/node.yaml']);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('--config /nonexistent/node.yaml');
    const bad = join(scratch, 'bad.yaml');
    writeFileSync(bad, 'http:\n  listen: nowhere\n');
    const invalid = await runCli(['status', '--config', bad]);
    expect(invalid.code).toBe(78);
    expect(invalid.stderr).toContain(`--config ${bad}`);
    expect(invalid.stderr).toContain('http.listen');
  });

  it('a config with port 0 says to pass --url', async () => {
    const f = join(scratch, 'port0.yaml');
    writeFileSync(f, stringify({ http: { listen: '127.0.0.1:0' } }));
    const r = await runCli(['status', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('http.listen has port 0');
    expect(r.stderr).toContain('--url');
  });

  it('an admin verb with a config that has no admin tokens names auth.adminTokensFile', async () => {
    const f = join(scratch, 'readonly.yaml');
    writeFileSync(
      f,
      stringify({ http: { listen: `127.0.0.1:${port}` }, auth: { tokensFile: join(node.dir, 'tokens') } }),
    );
    const r = await runCli(['invalidate', 'models/m/config.json', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('auth.adminTokensFile is not set');
    const other = await runCli(['pull', 'datasets/d', '--to', join(scratch, 'y'), '--config', f]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('may read container datasets');
  });

  it('a bad --url, --token-file or number names the flag', async () => {
    const u = await runCli(['status', '--url', 'not a url']);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain('--url: not a URL');
    const f = await runCli(['status', '--url', node.url, '--token-file', '/nonexistent/token']);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('--token-file /nonexistent/token');
    const n = await runCli(['status', '--url', node.url, '--timeout', 'soon']);
    expect(n.code).toBe(1);
    expect(n.stderr).toContain('--timeout must be a number');
  });
});
