/**
 * A mount on a sidecar in front of a 2-node cluster (real processes on
 * 127.0.0.x): an invalidation sent to a node, not to the sidecar, flips the
 * sidecar's mount at once (the homes revoke the leases the mount keeps), and
 * one sent to the other node flips a node's own mount (the INVALIDATE its
 * home serves, and the revokes);
 * and a node SIGKILLed under a `cp -r` out of the mount does not stop the
 * copy: it completes, byte-identical, through the other node — its own
 * chunks, and the dead node's as their stand-in owner, with no origin read
 * on the GPU host (docs/cluster.md, "Stand-in owner"). Skipped, saying
 * why, only without /dev/fuse or root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/cli-process.js';
import { addresses, replaceAtOrigin, startMember, startSidecar } from '../harness/cluster.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';
import { writeCheckpoint } from './checkpoint.js';

const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;
if (!canMount)
  console.warn('test/mount: skipped: mounting FUSE needs /dev/fuse and root (CAP_SYS_ADMIN) here');

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

/** Bytes of every file under `dir` (0 while it does not exist). */
function bytesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    try {
      n += statSync(join(f.parentPath, f.name)).size;
    } catch {
      // being created
    }
  }
  return n;
}

describe.skipIf(!canMount)('FUSE mount on a sidecar in a cluster', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-mount-cluster-'));
  const origin = join(dir, 'origin');
  const mnt = join(dir, 'mnt');
  const nodeMnt = join(dir, 'node-mnt');
  const running: NodeProcess[] = [];
  let nodes: NodeProcess[];
  let sidecar: NodeProcess;
  let files: string[];

  beforeAll(async () => {
    files = writeCheckpoint(join(origin, 'models', 'llama'), 8); // ~27 MB: ~100 chunks of 256 KiB
    writeCheckpoint(join(origin, 'models', 'qwen'), 1);
    writeCheckpoint(join(origin, 'models', 'gemma'), 1);
    const members = addresses(2, await freePort(), 41);
    nodes = await Promise.all(
      members.map((self, i) =>
        startMember({
          root: origin,
          self,
          members,
          running,
          timeoutMs: 120_000,
          config: {
            leases: { term: '4s' },
            // Node 0 hosts a mount too: an invalidation sent to node 1 must reach it.
            ...(i === 0 ? { mount: { path: nodeMnt, containers: ['models'], listInterval: '1h' } } : {}),
          },
        }),
      ),
    );
    sidecar = await startSidecar({
      root: origin,
      members,
      running,
      timeoutMs: 120_000,
      config: {
        // No local tier to speak of: the copy's chunks come from the nodes.
        cache: { dram: { maxBytes: '1MiB' }, nvme: null },
        leases: { term: '4s' },
        // listInterval 1 h: only an invalidation may flip a name in this test.
        mount: { path: mnt, containers: ['models'], listInterval: '1h', requestTimeout: '30s' },
      },
    });
  });

  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    for (const m of [mnt, nodeMnt]) if (mounted(m)) execFileSync('umount', ['-l', m]);
  });

  it('an invalidation sent to a node flips the sidecar mount at once', async () => {
    const model = join(mnt, 'models', 'qwen');
    const snapA = realpathSync(model);
    expect(readFileSync(join(model, 'config.json'), 'utf8')).toContain('"model_type":"llama"');
    // The path walks made the sidecar a lease holder of the model's files.
    await until(
      async () => {
        const s = (await (await fetch(`${sidecar.url}/v1/status`)).json()) as {
          coherence: { leasesHeld: number };
        };
        return s.coherence.leasesHeld >= 4;
      },
      { what: 'the sidecar holding leases on qwen/*' },
    );
    replaceAtOrigin(origin, 'qwen/config.json', Buffer.from('{"model_type":"qwen2"}'));
    expect(realpathSync(model), 'no flip before the invalidation').toBe(snapA);

    const inv = await runCli(['invalidate', 'models/qwen/', '--prefix', '--url', nodes[1]!.url]);
    expect(inv.code, inv.stderr).toBe(0);
    const snapB = realpathSync(model);
    expect(snapB).not.toBe(snapA);
    expect(readFileSync(join(model, 'config.json'), 'utf8')).toBe('{"model_type":"qwen2"}');
    expect(await sidecar.metric('weightcache_lease_revokes_received_total')).toBeGreaterThan(0);
  });

  it("an invalidation sent to the other node flips a node's own mount at once", async () => {
    const model = join(nodeMnt, 'models', 'gemma');
    const snapA = realpathSync(model);
    replaceAtOrigin(origin, 'gemma/config.json', Buffer.from('{"model_type":"gemma"}'));
    expect(realpathSync(model), 'no flip before the invalidation').toBe(snapA);
    // Node 1 forwards the prefix to node 0's home (INVALIDATE), and revokes node 0's leases on its own names.
    const inv = await runCli(['invalidate', 'models/gemma/', '--prefix', '--url', nodes[1]!.url]);
    expect(inv.code, inv.stderr).toBe(0);
    expect(realpathSync(model)).not.toBe(snapA);
    expect(readFileSync(join(model, 'config.json'), 'utf8')).toBe('{"model_type":"gemma"}');
  });

  it('a node SIGKILLed mid-cp -r: the copy completes through the other node, byte-identical', async () => {
    const out = join(dir, 'copy');
    const total = files.reduce((n, f) => n + statSync(join(origin, 'models', 'llama', f)).size, 0);
    const cp = spawn('cp', ['-r', `${join(mnt, 'models', 'llama')}/`, out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    cp.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => cp.once('exit', r));
    // Mid-copy: some bytes are out, most are not.
    await until(() => bytesUnder(out) >= 512 * 1024 || cp.exitCode !== null, { stepMs: 2 });
    expect(cp.exitCode, 'cp still running when the node is killed').toBe(null);
    const copiedAtKill = bytesUnder(out);
    // node 0 was serving this copy: it filled chunks it owns from the origin.
    expect(await nodes[0]!.metric('weightcache_origin_bytes_total')).toBeGreaterThan(0);
    const peerAtKill = await sidecar.metric('weightcache_served_bytes_total', { source: 'peer' });
    const standInAtKill = await nodes[1]!.metric('weightcache_origin_bytes_total');
    await nodes[0]!.kill();
    expect(copiedAtKill).toBeLessThan(total / 2);

    expect(await exited, stderr).toBe(0);
    for (const f of files) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(origin, 'models', 'llama', f))), f).toBe(
        true,
      );
    }
    // After the kill, node 1 went on serving the chunks it owns, and stood in for the dead node's:
    // the sidecar found the owner down, asked the next in rank to fill, and never read the origin.
    expect(await sidecar.metric('weightcache_served_bytes_total', { source: 'peer' })).toBeGreaterThan(
      peerAtKill,
    );
    expect(await sidecar.metric('weightcache_peer_requests_total', { result: 'error' })).toBeGreaterThan(0);
    expect(await sidecar.metric('weightcache_origin_bytes_total')).toBe(0);
    expect(await sidecar.metric('weightcache_served_bytes_total', { source: 'origin' })).toBe(0);
    expect(await nodes[1]!.metric('weightcache_stand_in_requests_total', { result: 'fill' })).toBeGreaterThan(
      0,
    );
    expect(await nodes[1]!.metric('weightcache_origin_bytes_total')).toBeGreaterThan(standInAtKill);
  });
});
