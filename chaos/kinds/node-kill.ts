/**
 * Random range reads through a sidecar while the nodes behind it crash:
 * every `killEveryS` one node of the cluster is SIGKILLed and started again
 * on the same address and data directory (a crash and a warm restart), round
 * robin. The client (loadtest's C range client in its checking mode) never
 * retries: a read that fails is counted as a loader would feel it, and every
 * byte is compared with the origin's file. A C client, because at 10⁶ reads
 * on two shared cores a JavaScript client would take half the CPU the
 * sidecar needs.
 *
 * The sidecar's own tier is small, so most reads cross the transport to the
 * chunks' owners (the path a crash disturbs) instead of being answered from
 * the sidecar's memory.
 */
import { join } from 'node:path';
import { buildRangeClient, type CheckedResult, startCheckedClient } from '../../loadtest/client/clients.js';
import { startCluster } from '../cluster.js';
import type { Ctx } from '../ctx.js';
import { CONTAINER, Dataset } from '../data.js';
import { sleep } from '../latency.js';
import type { NodeKillScenario } from '../scenario.js';

export async function runNodeKill(s: NodeKillScenario, ctx: Ctx): Promise<void> {
  const bin = buildRangeClient(join(ctx.workDir, 'bin'));
  const data = new Dataset(join(ctx.workDir, 'origin'));
  const keys = Array.from({ length: s.files }, (_, i) => `kill/shard-${i}.bin`);
  for (const k of keys) data.random(k, s.fileBytes);
  const cluster = await startCluster({
    workDir: ctx.workDir,
    nodes: s.nodes,
    from: 61,
    common: {
      origin: { type: 'fs', fs: { root: data.root } },
      cache: { chunkSize: s.chunkBytes },
    },
    node: (dir) => ({
      cache: { dram: { maxBytes: s.nodeDramBytes }, nvme: { dir: join(dir, 'chunks'), maxBytes: '4GiB' } },
    }),
  });
  const sidecar = await cluster.startSidecar('sidecar', {
    cache: { dram: { maxBytes: s.sidecarDramBytes }, nvme: null },
  });
  ctx.log(`${s.nodes} nodes + sidecar up (${cluster.addresses.join(', ')})`);
  const reads = (requests: number, seed: number, markWindowS?: number) =>
    startCheckedClient(bin, {
      port: sidecar.port,
      targets: keys.map((k) => ({ path: data.urlPath(k), size: s.fileBytes })),
      rangeMinBytes: 1,
      rangeMaxBytes: s.rangeMaxBytes,
      conns: s.concurrency,
      requests,
      verify: { prefix: `/v1/objects/${CONTAINER}/`, dir: join(data.root, CONTAINER) },
      timeoutS: 30,
      seed,
      ...(markWindowS ? { markWindowS } : {}),
    });
  // Warm the owners (twice as many random reads as there are chunks: most chunks filled):
  // the figures are about crashes, not first fills.
  const warm = await reads(Math.ceil((s.files * s.fileBytes) / s.chunkBytes) * 2, 7).done;
  if (warm.wrongBytes > 0 || warm.failed > 0)
    ctx.notes.push(`warm-up: ${warm.failed} failed, ${warm.wrongBytes} wrong bytes`);

  const nBase = ctx.scaled(s.baselineRequests, 1000);
  ctx.log(`baseline: ${nBase} reads, no kills`);
  const baseline = await reads(nBase, 1).done;

  const nKill = ctx.scaled(s.requests, 1000);
  ctx.log(`${nKill} reads, one node SIGKILLed and restarted every ${s.killEveryS} s`);
  const client = reads(nKill, 2, 1);
  let stop = false;
  void client.done.finally(() => {
    stop = true;
  });
  const restarts: number[] = [];
  let kills = 0;
  let restartFailures = 0;
  const restarting: Promise<void>[] = [];
  for (let i = 0; !stop; ) {
    await Promise.race([sleep(s.killEveryS * 1000), client.done.catch(() => {})]);
    if (stop) break;
    const m = cluster.members[i++ % cluster.members.length]!;
    if (!m.proc) continue; // still restarting from its last kill
    await m.kill();
    client.mark();
    kills++;
    const t = performance.now();
    restarting.push(
      m.start().then(
        () => void restarts.push((performance.now() - t) / 1000),
        (err: Error) => {
          restartFailures++;
          ctx.notes.push(`restart of ${m.name} failed: ${err.message.slice(0, 300)}`);
        },
      ),
    );
  }
  const crash = await client.done;
  await Promise.all(restarting);

  const f = ctx.figures;
  const report = (c: string, r: CheckedResult) => {
    f.add(c, 'reads', 'count', r.requests);
    f.add(c, 'reads/s', 'req/s', r.requests / r.seconds);
    f.add(c, 'wrong bytes', 'bytes', r.wrongBytes);
    f.add(c, 'reads with wrong bytes', 'count', r.wrongReads);
    f.add(c, 'failed without client retry', 'count', r.failed);
    f.add(c, 'failed without client retry (%)', '%', (100 * r.failed) / Math.max(1, r.requests));
    f.add(c, 'p50', 'ms', r.p50Ms);
    f.add(c, 'p99', 'ms', r.p99Ms);
    f.add(c, 'max', 'ms', r.maxMs);
    f.add(c, 'client CPU', 'ms/1000 reads', (1e6 * r.cpuS) / Math.max(1, r.requests));
    const kinds = Object.entries(r.failures);
    if (kinds.length > 0)
      ctx.notes.push(`${c}: failures by kind: ${kinds.map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  };
  const killCase = `1 of ${s.nodes} nodes SIGKILLed + restarted every ${s.killEveryS} s`;
  report('baseline (no kills)', baseline);
  report(killCase, crash);
  f.add(killCase, 'kills', 'count', kills);
  f.add(killCase, 'restart failures', 'count', restartFailures);
  f.add(killCase, 'restart to ready (median)', 's', median(restarts));
  f.add(killCase, 'p99 within 1 s after a kill', 'ms', crash.p99MarkMs ?? Number.NaN);
  f.add(killCase, 'p99 during kills / without', 'ratio', crash.p99Ms / baseline.p99Ms);
  for (const m of cluster.members) await m.stop();
  await sidecar.stop();
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
