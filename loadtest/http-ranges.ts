/**
 * Scenario kind "http-ranges": random aligned range reads of one file over
 * HTTP, the same clients against every server, servers interleaved within
 * each repeat so that drift of the shared machine spreads over all of them.
 *
 *   tier dram: the node's DRAM holds the file (warmed by one full pass);
 *              nginx's page cache is re-warmed before each run; Varnish is
 *              warmed once (its malloc storage is process memory: never reclaimed).
 *   tier nvme: the node's DRAM is far smaller than the file, NVMe holds it
 *              (warmed by one full pass), and the page cache is dropped before
 *              each run, so hits are disk reads; nginx runs cold for reference
 *              and fio gives the O_DIRECT disk ceiling.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { selfSignedCert } from '../test/harness/tls.js';
import { type ClientResult, runRangeClient, runWrk } from './client/clients.js';
import { treeDiskReadBytes, treeRssBytes, withCpu } from './cpu.js';
import type { Ctx } from './ctx.js';
import { drainUrl } from './drain.js';
import { ensureFile } from './fixtures.js';
import { dropPageCache, warmPageCache } from './pagecache.js';
import { runFio } from './peers/fio.js';
import { runIperf, startIperfServer } from './peers/iperf3.js';
import { startNginx } from './peers/nginx.js';
import type { Server } from './peers/server.js';
import { startVarnish } from './peers/varnish.js';
import { ensureBuild, metricSum, startWeightcache, type WeightcacheServer } from './peers/weightcache.js';
import type { Samples } from './results.js';
import type { HttpRangesScenario } from './scenario.js';

const MiB = 2 ** 20;
const CONTAINER = 'bench';

export function sizeLabel(bytes: number): string {
  return bytes >= 2 ** 30 && bytes % 2 ** 30 === 0
    ? `${bytes / 2 ** 30} GiB`
    : bytes >= MiB
      ? `${bytes / MiB} MiB`
      : `${bytes / 1024} KiB`;
}

const CLIENT_LABEL = {
  rangeclient: 'C client',
  wrk: 'wrk',
  'rangeclient-trunc': 'C client, MSG_TRUNC (server-side bound)',
} as const;

/** A node's name in the tables: the door it serves HTTP with when the scenario measures several. */
export function doorLabel(
  d: {
    door: 'js' | 'native';
    threads?: number | undefined;
    tls?: boolean | undefined;
    via?: 'objects' | 's3' | 's3-signed' | 'azure' | 'azure-sas' | undefined;
  },
  count: number,
): string {
  // With http.tls the port is served by node:https whatever http.door says (docs/native-http-door.md).
  if (d.tls) return 'weightcache (TLS, JS door)';
  const via = {
    objects: '',
    s3: ', S3 GetObject',
    's3-signed': ', S3 GetObject signed',
    azure: ', Azure Get Blob',
    'azure-sas': ', Azure Get Blob with a SAS',
  }[d.via ?? 'objects'];
  if (count === 1 && d.door === 'js') return `weightcache${via ? ` (${via.slice(2)})` : ''}`;
  if (d.door === 'js') return `weightcache (JS door${via})`;
  const t = d.threads ?? 1;
  return `weightcache (native door, ${t} thread${t === 1 ? '' : 's'}${via})`;
}

/** The self-signed certificate every TLS server of a run uses (made once per run in its work dir). */
function certOf(ctx: Ctx): { cert: string; key: string } {
  const dir = join(ctx.workDir, 'tls');
  mkdirSync(dir, { recursive: true });
  return selfSignedCert(dir);
}

export async function runHttpRanges(s: HttpRangesScenario, ctx: Ctx, samples: Samples): Promise<void> {
  const key = `ckpt-${s.fileBytes}.bin`;
  const file = join(ctx.originRoot, CONTAINER, key);
  ctx.log(`fixture ${sizeLabel(s.fileBytes)} at ${file}`);
  ensureFile(file, s.fileBytes);

  const servers: Server[] = [];
  let nginx: Server | null = null;
  if (s.tier === 'nvme') {
    const reason = dropPageCache();
    if (reason) ctx.notes.push(`${reason}: NVMe-tier figures may include page-cache hits`);
  }
  const nodes: WeightcacheServer[] = [];
  const tls = s.servers.includes('nginx-tls') || s.weightcache.doors.some((d) => d.tls) ? certOf(ctx) : null;
  if (s.servers.includes('weightcache')) {
    const why = ensureBuild();
    if (why) ctx.notes.push(`weightcache not available: ${why}`);
    for (const door of why ? [] : s.weightcache.doors) {
      const name = doorLabel(door, s.weightcache.doors.length);
      try {
        const slug = name.replace(/[^A-Za-z0-9]+/g, '-');
        const n = await startWeightcache({
          workDir: ctx.workDir,
          origin: { type: 'fs', fs: { root: ctx.originRoot } },
          ...s.weightcache,
          nvmeDir: join(ctx.workDir, `chunks-${slug}`),
          name,
          door,
          ...(door.tls && tls ? { tls } : {}),
        });
        ctx.log(`${name} on :${n.port}, warming (one full pass through the node)`);
        if (n.tls)
          await drainUrl(`https://127.0.0.1:${n.port}${n.pathPrefix}/${CONTAINER}/${key}`, tls?.cert);
        else await onePass(ctx, n, key, s.fileBytes, s.weightcache.chunkBytes);
        if (s.tier === 'nvme') {
          const why = await fillNvme(ctx, n, key, s.fileBytes, s.weightcache.chunkBytes);
          if (why) ctx.notes.push(why);
        }
        nodes.push(n);
        servers.push(n);
      } catch (err) {
        ctx.notes.push(`${name} not available: ${firstLine(err)}`);
      }
    }
  }
  if (s.servers.includes('nginx') || s.servers.includes('varnish')) {
    nginx = await startNginx({ root: ctx.originRoot, workDir: ctx.workDir });
    if (s.servers.includes('nginx')) {
      servers.push(s.tier === 'nvme' ? { ...nginx, name: 'nginx (sendfile, cold page cache)' } : nginx);
    }
  }
  let nginxTls: Server | null = null;
  if (s.servers.includes('nginx-tls') && tls) {
    const workDir = join(ctx.workDir, 'nginx-tls');
    mkdirSync(workDir, { recursive: true });
    nginxTls = await startNginx({ root: ctx.originRoot, workDir, tls });
    servers.push(nginxTls);
  }
  if (s.servers.includes('varnish') && nginx) {
    const v = await startVarnish({
      backendPort: nginx.port,
      workDir: ctx.workDir,
      mallocBytes: Math.ceil(s.fileBytes * 1.5),
    });
    ctx.log(`varnish on :${v.port}, warming (one full GET)`);
    await drainUrl(`http://127.0.0.1:${v.port}/${CONTAINER}/${key}`);
    servers.push(v);
  }

  for (const rangeBytes of s.rangeBytes) {
    for (const client of s.clients) {
      const c = `${sizeLabel(rangeBytes)} ranges · ${CLIENT_LABEL[client]}`;
      for (let rep = 0; rep < s.repeats; rep++) {
        for (const srv of servers) {
          // Only wrk speaks TLS; the C client's rows have no TLS servers.
          if (srv.tls && client !== 'wrk') continue;
          if (s.tier === 'nvme') dropPageCache();
          else if (srv === nginx || srv === nginxTls) warmPageCache(file);
          const node = nodes.find((n) => n === srv) ?? null;
          const before = node ? await node.metrics() : null;
          const run = {
            port: srv.port,
            targets: [{ path: targetOf(srv, `${srv.pathPrefix}/${CONTAINER}/${key}`), size: s.fileBytes }],
            rangeBytes,
            conns: s.conns,
            durationS: s.durationS,
            warmupS: s.warmupS,
            trunc: client === 'rangeclient-trunc',
            tls: srv.tls === true,
          };
          const diskBefore = s.tier === 'nvme' ? treeDiskReadBytes(srv.pids[0]!) : 0;
          let m: { value: ClientResult; serverCores: number; machineCores: number };
          try {
            m = await withCpu(srv.pids, () =>
              client === 'wrk' ? runWrk(run) : runRangeClient(ctx.clientBin, run),
            );
          } catch (err) {
            ctx.notes.push(`${c} / ${srv.name}: run failed: ${firstLine(err)}`);
            continue;
          }
          const r = m.value;
          if (r.error) {
            ctx.notes.push(
              `${c} / ${srv.name}: ${r.error} (run discarded)${srv.lastLog ? `; server log: ${srv.lastLog()}` : ''}`,
            );
            continue;
          }
          record(samples, c, srv.name, r, m.serverCores, m.machineCores);
          if (s.tier === 'nvme' && r.bytes > 0) {
            // Read amplification: disk bytes per byte served (1.0 = reads only what it sends).
            const disk = treeDiskReadBytes(srv.pids[0]!) - diskBefore;
            samples.add(c, srv.name, 'disk read / served', 'x', disk / r.bytes);
          }
          if (before && node) {
            const after = await node.metrics();
            const src = s.tier;
            const all =
              metricSum(after, 'weightcache_served_bytes_total') -
              metricSum(before, 'weightcache_served_bytes_total');
            const hit =
              metricSum(after, 'weightcache_served_bytes_total', `source="${src}"`) -
              metricSum(before, 'weightcache_served_bytes_total', `source="${src}"`);
            if (all > 0) samples.add(c, srv.name, `served from ${src}`, '%', (100 * hit) / all);
            if (src === 'nvme' && hit > 0) {
              // Bytes read from chunk files (headers and 4 KiB blocks) per byte served from NVMe: the
              // tier's reader (JavaScript door) plus the native doors' own reads on their I/O threads.
              const read =
                metricSum(after, 'weightcache_nvme_disk_read_bytes_total') -
                metricSum(before, 'weightcache_nvme_disk_read_bytes_total') +
                metricSum(after, 'weightcache_nvme_native_read_bytes_total') -
                metricSum(before, 'weightcache_nvme_native_read_bytes_total');
              samples.add(c, srv.name, 'nvme read / nvme served', 'x', read / hit);
            }
          }
          ctx.log(
            `${c} · ${srv.name}: ${(r.bytes / r.seconds / 1e9).toFixed(2)} GB/s, p99 ${r.p99Ms.toFixed(1)} ms, ` +
              `client ${r.clientCores.toFixed(2)} / server ${m.serverCores.toFixed(2)} cores`,
          );
        }
      }
    }
  }

  for (const srv of servers) {
    const rss = treeRssBytes(srv.pids[0]!);
    samples.add('memory', srv.name, 'RSS', 'MiB', rss / MiB);
    const node = nodes.find((n) => n === srv);
    if (node) {
      samples.add('memory', srv.name, 'DRAM budget', 'MiB', node.dramBytes / MiB);
      samples.note(
        'memory',
        srv.name,
        'RSS',
        `RSS / cache.dram.maxBytes = ${(rss / node.dramBytes).toFixed(2)}`,
      );
    }
  }
  for (const srv of [...servers].reverse()) await srv.stop();
  if (nginx && !servers.includes(nginx)) await nginx.stop();

  if (s.iperfStreams > 0) await iperfCeiling(s, ctx, samples);
  for (const job of s.fio) {
    for (let rep = 0; rep < s.repeats; rep++) {
      dropPageCache();
      const name = `fio O_DIRECT ${job.rw} bs=${sizeLabel(job.blockBytes)} qd=${job.iodepth}`;
      try {
        const f = await runFio(file, job, s.durationS);
        samples.add(job.case, name, 'GB/s', 'GB/s', f.gbps);
        samples.add(job.case, name, 'req/s', 'IO/s', f.iops);
        samples.add(job.case, name, 'p50', 'ms', f.p50Ms);
        samples.add(job.case, name, 'p99', 'ms', f.p99Ms);
        samples.add(job.case, name, 'client CPU', 'cores', f.cores);
        ctx.log(`${job.case} · ${name}: ${f.gbps.toFixed(2)} GB/s, ${Math.round(f.iops)} IO/s`);
      } catch (err) {
        ctx.notes.push(`${name}: ${firstLine(err)}`);
      }
    }
  }
}

/** Reads the whole file once through the node (fills DRAM/NVMe); 8 connections, chunk-sized ranges. */
/** What a client sends for an object path: the path, or the server's own target for it (a presigned URL). */
function targetOf(srv: Server, path: string): string {
  return srv.target ? srv.target(path) : path;
}

async function onePass(ctx: Ctx, node: Server, key: string, size: number, chunk: number): Promise<void> {
  const r = await runRangeClient(ctx.clientBin, {
    port: node.port,
    targets: [{ path: targetOf(node, `${node.pathPrefix}/${CONTAINER}/${key}`), size }],
    rangeBytes: chunk,
    conns: 8,
    durationS: 0,
    warmupS: 0,
    once: true,
  });
  if (r.error) throw new Error(`warm-up pass: ${r.error}`);
}

/**
 * Until the node's NVMe tier holds every chunk of the file: more passes, each
 * after the write-through queue has drained. The node writes fills through
 * to NVMe in the background and drops writes past its queue bound, so one
 * fast pass can leave chunks only the origin has, and an "NVMe hit" run
 * would then read whole 4 MiB chunks from the origin. Returns a note when
 * the tier is still short after a few passes.
 */
async function fillNvme(
  ctx: Ctx,
  node: WeightcacheServer,
  key: string,
  size: number,
  chunk: number,
): Promise<string | null> {
  const want = Math.ceil(size / chunk);
  let have = 0;
  for (let pass = 0; pass < 4; pass++) {
    // Entries stop changing once the queued writes are done.
    let last = -1;
    for (let i = 0; i < 60; i++) {
      have = metricSum(await node.metrics(), 'weightcache_tier_entries', 'tier="nvme"');
      if (have >= want || have === last) break;
      last = have;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (have >= want) return null;
    ctx.log(`NVMe holds ${have} of ${want} chunks: another pass`);
    await onePass(ctx, node, key, size, chunk);
  }
  return `NVMe held ${have} of ${want} chunks after the warm-up passes: some hits are origin reads`;
}

function record(
  samples: Samples,
  c: string,
  server: string,
  r: ClientResult,
  serverCores: number,
  machineCores: number,
): void {
  samples.add(c, server, 'GB/s', 'GB/s', r.bytes / r.seconds / 1e9);
  samples.add(c, server, 'req/s', 'req/s', r.requests / r.seconds);
  samples.add(c, server, 'p50', 'ms', r.p50Ms);
  samples.add(c, server, 'p99', 'ms', r.p99Ms);
  samples.add(c, server, 'client CPU', 'cores', r.clientCores);
  samples.add(c, server, 'server CPU', 'cores', serverCores);
  // What neither side used: other processes on the shared machine (0 on a quiet one).
  samples.add(c, server, 'other CPU', 'cores', Math.max(0, machineCores - r.clientCores - serverCores));
}

async function iperfCeiling(s: HttpRangesScenario, ctx: Ctx, samples: Samples): Promise<void> {
  const srv = await startIperfServer();
  try {
    for (let rep = 0; rep < s.repeats; rep++) {
      for (const streams of [1, s.iperfStreams]) {
        const name = `iperf3 ${streams} stream${streams > 1 ? 's' : ''}`;
        const m = await withCpu([srv.pid], () =>
          runIperf(srv.port, streams, Math.max(1, Math.round(s.durationS))),
        );
        samples.add('loopback ceiling', name, 'GB/s', 'GB/s', m.value.gbps);
        samples.add('loopback ceiling', name, 'client CPU', 'cores', m.value.cores);
        samples.add('loopback ceiling', name, 'server CPU', 'cores', m.serverCores);
        ctx.log(`loopback ceiling · ${name}: ${m.value.gbps.toFixed(2)} GB/s`);
      }
    }
  } finally {
    await srv.stop();
  }
}

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
