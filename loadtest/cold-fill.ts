/**
 * Scenario kind "cold-fill": a whole model read once through a node whose
 * tiers are empty, from each origin type, with the page cache dropped first
 * (so an fs or nginx origin is a disk read too). Reports the time to read the
 * model, its GB/s, and origin bytes / model bytes from the node's /metrics
 * (1.00 = every byte pulled once; more means duplicate origin reads).
 *
 * Baseline per origin: the same client reading the model straight from the
 * origin (nginx over the same files, or Azurite), so the cost of the cache in
 * the path shows.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runRangeClient } from './client/clients.js';
import { withCpu } from './cpu.js';
import type { Ctx } from './ctx.js';
import { ensureModel } from './fixtures.js';
import { doorLabel, firstLine, sizeLabel } from './http-ranges.js';
import { dropPageCache } from './pagecache.js';
import { type Azurite, startAzurite } from './peers/azurite.js';
import { startNginx } from './peers/nginx.js';
import type { Server } from './peers/server.js';
import { ensureBuild, metricSum, startWeightcache } from './peers/weightcache.js';
import type { Samples } from './results.js';
import type { ColdFillScenario } from './scenario.js';

const CONTAINER = 'models';
const RANGE = 4 * 2 ** 20;

/** Returns a reason when nothing could be measured. */
export async function runColdFill(s: ColdFillScenario, ctx: Ctx, samples: Samples): Promise<string | null> {
  const prefix = `model-${s.modelBytes}`;
  const files = ensureModel(ctx.originRoot, CONTAINER, prefix, s.modelBytes, s.shardBytes);
  const total = files.reduce((a, f) => a + f.size, 0);
  ctx.log(`model ${sizeLabel(s.modelBytes)} in ${files.length} files`);
  const why = ensureBuild();
  if (why) return `weightcache not available: ${why}`;
  const nginx = await startNginx({ root: ctx.originRoot, workDir: ctx.workDir });
  let azurite: Azurite | null = null;

  for (const origin of s.origins) {
    const c = `${origin} origin · ${sizeLabel(s.modelBytes)} model · ${s.conns} conns`;
    let originCfg: Record<string, unknown>;
    let direct: { name: string; port: number; prefix: string; pids: number[] };
    if (origin === 'fs') {
      originCfg = { type: 'fs', fs: { root: ctx.originRoot } };
      direct = {
        name: 'nginx direct (cold page cache)',
        port: nginx.port,
        prefix: '',
        pids: nginx.pids.slice(),
      };
    } else if (origin === 'http') {
      originCfg = { type: 'http', http: { baseUrl: `http://127.0.0.1:${nginx.port}` } };
      direct = {
        name: 'nginx direct (cold page cache)',
        port: nginx.port,
        prefix: '',
        pids: nginx.pids.slice(),
      };
    } else {
      try {
        azurite ??= await startAzurite(ctx.workDir);
        ctx.log(`uploading the model to Azurite on :${azurite.port}`);
        await azurite.upload(
          CONTAINER,
          files.map((f) => ({ key: f.key, path: join(ctx.originRoot, CONTAINER, f.key) })),
        );
      } catch (err) {
        ctx.notes.push(`${c}: not available: Azurite: ${firstLine(err)}`);
        continue;
      }
      originCfg = { type: 'azure', azure: { connectionString: azurite.connectionString } };
      direct = {
        name: 'Azurite direct',
        port: azurite.port,
        prefix: '/devstoreaccount1',
        pids: [azurite.pid],
      };
    }

    // A discarded run (e.g. a 500 because a colleague's rebuild removed the shared addon
    // file under the running node) is retried, at most twice per origin, so the median
    // still rests on `repeats` good runs when the failure was not the node's.
    let retries = 2;
    for (let rep = 0; rep < s.repeats; rep++) {
      let retry = false;
      let unavailable = false;
      // Through a node per door (weightcache.doors), empty tiers each.
      for (const door of s.weightcache.doors) {
        const runDir = join(ctx.workDir, `${origin}-${rep}-${retries}-${door.door}${door.threads ?? ''}`);
        let node: Awaited<ReturnType<typeof startWeightcache>>;
        try {
          mkdirSync(runDir, { recursive: true });
          node = await startWeightcache({
            workDir: runDir,
            origin: originCfg,
            ...s.weightcache,
            name: doorLabel(door, s.weightcache.doors.length),
            door,
          });
        } catch (err) {
          ctx.notes.push(`${c}: weightcache with origin.type ${origin} not available: ${firstLine(err)}`);
          unavailable = true;
          break;
        }
        try {
          dropPageCache();
          const ok = await measure(ctx, samples, c, node, '/v1/objects', files, s.conns, node.pids, total);
          if (ok) {
            // The same model again through the same node: what the next load on this host costs.
            const again = await withCpu(node.pids, () =>
              runRangeClient(ctx.clientBin, {
                port: node.port,
                targets: files.map((f) => ({ path: `/v1/objects/${CONTAINER}/${f.key}`, size: f.size })),
                rangeBytes: RANGE,
                conns: s.conns,
                durationS: 0,
                warmupS: 0,
                once: true,
              }),
            );
            if (!again.value.error) samples.add(c, node.name, 'warm re-read time', 's', again.value.seconds);
            const m = await node.metrics();
            const originBytes = metricSum(m, 'weightcache_origin_bytes_total');
            samples.add(c, node.name, 'origin bytes / model', 'x', originBytes / total);
            samples.add(
              c,
              node.name,
              'origin requests',
              'count',
              metricSum(m, 'weightcache_origin_requests_total'),
            );
          } else if (retries-- > 0) {
            retry = true;
          }
        } finally {
          await node.stop();
        }
        if (retry) break;
      }
      if (unavailable) break;
      if (retry) {
        rep--;
        continue;
      }
      // The same read straight from the origin.
      dropPageCache();
      const srv: Server = {
        name: direct.name,
        port: direct.port,
        pids: direct.pids,
        pathPrefix: direct.prefix,
        stop: async () => {},
      };
      await measure(ctx, samples, c, srv, direct.prefix, files, s.conns, direct.pids, total);
    }
  }
  await azurite?.stop();
  await nginx.stop();
  return null;
}

async function measure(
  ctx: Ctx,
  samples: Samples,
  c: string,
  srv: Server,
  prefix: string,
  files: readonly { key: string; size: number }[],
  conns: number,
  pids: readonly number[],
  total: number,
): Promise<boolean> {
  try {
    const m = await withCpu(pids, () =>
      runRangeClient(ctx.clientBin, {
        port: srv.port,
        targets: files.map((f) => ({ path: `${prefix}/${CONTAINER}/${f.key}`, size: f.size })),
        rangeBytes: RANGE,
        conns,
        durationS: 0,
        warmupS: 0,
        once: true,
      }),
    );
    if (m.value.error) {
      ctx.notes.push(
        `${c} / ${srv.name}: ${m.value.error} (run discarded)${srv.lastLog ? `; server log: ${srv.lastLog()}` : ''}`,
      );
      return false;
    }
    samples.add(c, srv.name, 'fill time', 's', m.value.seconds);
    samples.add(c, srv.name, 'GB/s', 'GB/s', total / m.value.seconds / 1e9);
    samples.add(c, srv.name, 'client CPU', 'cores', m.value.clientCores);
    samples.add(c, srv.name, 'server CPU', 'cores', m.serverCores);
    ctx.log(
      `${c} · ${srv.name}: ${m.value.seconds.toFixed(2)} s, ${(total / m.value.seconds / 1e9).toFixed(2)} GB/s`,
    );
    return true;
  } catch (err) {
    ctx.notes.push(`${c} / ${srv.name}: ${firstLine(err)}`);
    return false;
  }
}
