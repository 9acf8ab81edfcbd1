/**
 * Coherence under a writer: nodes and sidecars, readers on every sidecar and
 * on a node, and a writer that publishes a new version of every file each
 * `writeEveryMs`. Three writers, one after the other:
 *
 * 1. atomic replace (temp file + rename), then `POST /v1/invalidate` of each
 *    file through a rotating entry point (nodes and sidecars): once an
 *    invalidation has answered, no read that starts later may return an
 *    older version;
 * 2. atomic replace without invalidation: how stale reads get is what the
 *    leases allow (the docs bound it by the home's binding term plus the
 *    lease term);
 * 3. in-place rewrites with the mtime restored (issue 12 item 6, through the
 *    whole system), with invalidations: never a mixed body, nothing old after
 *    an answered invalidation.
 *
 * Every file is made of 16-byte records naming its version and file, so a
 * body that mixes versions, or belongs to another file, cannot go unnoticed.
 */
import { closeSync, openSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { metricSum, type WeightcacheProcess } from '../../loadtest/peers/weightcache.js';
import { startCluster } from '../cluster.js';
import type { Ctx } from '../ctx.js';
import { CONTAINER, Dataset } from '../data.js';
import { RangeReader } from '../http-reader.js';
import { Latencies, sleep } from '../latency.js';
import type { CoherenceScenario } from '../scenario.js';

const RECORD = 16;

function content(v: number, file: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let off = 0; off + RECORD <= bytes; off += RECORD) {
    b.write('WCv!', off, 'latin1');
    b.writeUInt32BE(v, off + 4);
    b.writeUInt32BE(file, off + 8);
    b.writeUInt32BE(0xc0ffee ^ v ^ file, off + 12);
  }
  return b;
}

interface Read {
  readonly start: number;
  readonly file: number;
  /** The one version the body holds; -1: a complete body that mixes versions (or files). */
  readonly v: number;
}

type WriterMode = 'invalidate' | 'no-invalidation' | 'in-place';

export async function runCoherence(s: CoherenceScenario, ctx: Ctx): Promise<void> {
  const data = new Dataset(join(ctx.workDir, 'origin'));
  const key = (f: number) => `coherence/f${f}.bin`;
  const files = Array.from({ length: s.files }, (_, f) => f);
  let version = 0;
  for (const f of files) data.put(key(f), content(version, f, s.fileBytes));
  const cluster = await startCluster({
    workDir: ctx.workDir,
    nodes: s.nodes,
    from: 71,
    common: {
      // The stale-read counters are read once the readers stop: a cached /metrics page would lag.
      http: { metricsCache: 0 },
      origin: { type: 'fs', fs: { root: data.root } },
      cache: { chunkSize: s.chunkBytes },
      leases: { term: `${s.termMs}ms`, margin: `${s.marginMs}ms` },
    },
    node: (dir) => ({ cache: { nvme: { dir: join(dir, 'chunks'), maxBytes: '1GiB' } } }),
  });
  const sidecars: WeightcacheProcess[] = [];
  for (let i = 0; i < s.sidecars; i++) sidecars.push(await cluster.startSidecar(`sidecar${i}`, {}));
  const nodes = cluster.members.map((m) => m.proc!);
  const everyone = [...nodes, ...sidecars];
  const readFrom = [...sidecars, nodes[0]!];
  ctx.log(`${s.nodes} nodes + ${s.sidecars} sidecars; readers on ${readFrom.length} processes`);

  const written: number[] = []; // written[v]: when version v was complete at the origin
  const answered: { v: number; file: number; at: number }[] = [];
  let invalidationMs = new Latencies(); // of the current phase
  let invalidationFailures = 0;
  let stop = false;
  const reads: Read[] = [];
  const failures = new Map<string, number>();
  const readers = readFrom.flatMap((p) =>
    Array.from({ length: s.readersPerProcess }, async () => {
      const r = new RangeReader(p.url, { connections: 1, timeoutMs: 30_000 });
      while (!stop) {
        const file = Math.floor(Math.random() * s.files);
        const start = performance.now();
        const got = await r.get(data.urlPath(key(file)), 0, s.fileBytes - 1);
        if (!got.body) {
          const k = `${got.status} ${got.code ?? ''}`.trim();
          failures.set(k, (failures.get(k) ?? 0) + 1);
          continue;
        }
        reads.push({ start, file, v: versionOf(got.body, file, s.fileBytes) });
      }
      await r.close();
    }),
  );

  const invalidate = async (entry: WeightcacheProcess, file: number, v: number) => {
    const t0 = performance.now();
    const res = await fetch(`${entry.url}/v1/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ container: CONTAINER, key: key(file) }),
    }).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 200) {
      answered.push({ v, file, at: performance.now() });
      invalidationMs.push(performance.now() - t0);
    } else invalidationFailures++;
  };
  const inPlace = (f: number, bytes: Buffer) => {
    const path = data.pathOf(key(f));
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes, 0, bytes.length, 0);
    closeSync(fd);
    utimesSync(path, 1_700_000_000, 1_700_000_000); // the mtime it had before: only ctime tells
    data.remember(key(f), bytes);
  };

  const f = ctx.figures;
  const phase = async (mode: WriterMode, rounds: number, c: string) => {
    const firstRead = reads.length;
    const firstVersion = version + 1;
    const failed0 = [...failures.values()].reduce((a, b) => a + b, 0);
    const answered0 = answered.length;
    invalidationMs = new Latencies();
    const invFail0 = invalidationFailures;
    if (mode === 'in-place') {
      for (const file of files) utimesSync(data.pathOf(key(file)), 1_700_000_000, 1_700_000_000);
    }
    let entry = 0;
    for (let r = 0; r < rounds; r++) {
      await sleep(s.writeEveryMs);
      version++;
      for (const file of files) {
        const bytes = content(version, file, s.fileBytes);
        if (mode === 'in-place') inPlace(file, bytes);
        else data.put(key(file), bytes);
      }
      written[version] = performance.now();
      if (mode !== 'no-invalidation') {
        const v = version;
        await Promise.all(files.map((file) => invalidate(everyone[entry++ % everyone.length]!, file, v)));
      }
    }
    // Let the last version reach everyone (staleness of the last write is measured too).
    await sleep(mode === 'no-invalidation' ? 2 * s.termMs + 1000 : 1000);
    const mine = reads.slice(firstRead);
    const mixed = mine.filter((x) => x.v < 0).length;
    // After an invalidation of (file, v) answered, a read of that file that started later is old if < v.
    let oldAfter = 0;
    for (const a of answered.slice(answered0)) {
      oldAfter += mine.filter((x) => x.file === a.file && x.start > a.at && x.v >= 0 && x.v < a.v).length;
    }
    // Staleness: a read that started after version v+1 was written and still returned v.
    let stale = 0;
    for (const x of mine) {
      const next = written[x.v + 1];
      if (x.v >= 0 && next !== undefined && next < x.start) stale = Math.max(stale, x.start - next);
    }
    f.add(c, 'reads', 'count', mine.length);
    f.add(
      c,
      'failed reads (cut or refused, clean)',
      'count',
      [...failures.values()].reduce((a, b) => a + b, 0) - failed0,
    );
    f.add(c, 'reads mixing versions', 'count', mixed);
    f.add(c, 'versions written', 'count', rounds);
    f.add(
      c,
      'versions seen by readers',
      'count',
      new Set(mine.filter((x) => x.v >= firstVersion).map((x) => x.v)).size,
    );
    if (mode !== 'no-invalidation') {
      f.add(c, 'invalidations answered', 'count', answered.length - answered0);
      f.add(c, 'invalidations failed', 'count', invalidationFailures - invFail0);
      f.add(c, 'old-version reads after an invalidation answered', 'count', oldAfter);
      f.add(c, 'invalidation p50', 'ms', invalidationMs.percentile(0.5));
      f.add(c, 'invalidation p99', 'ms', invalidationMs.percentile(0.99));
    } else {
      f.add(c, 'max staleness', 'ms', stale);
      f.add(c, 'max staleness / lease term', 'ratio', stale / s.termMs);
      f.add(
        c,
        'max staleness / documented bound (binding term + lease term)',
        'ratio',
        stale / (2 * s.termMs),
      );
    }
  };

  try {
    await sleep(2 * s.termMs); // homes settle; readers warm up
    const rounds = (n: number) => ctx.scaled(n, 2);
    ctx.log('writer: atomic replace + invalidation');
    await phase('invalidate', rounds(s.invalidatedRounds), 'replace + invalidate');
    ctx.log('writer: atomic replace, no invalidation');
    await phase('no-invalidation', rounds(s.staleRounds), `replace, no invalidation (term ${s.termMs} ms)`);
    ctx.log('writer: in-place rewrite with mtime restored + invalidation');
    await phase('in-place', rounds(s.inPlaceRounds), 'in-place rewrite, mtime restored, + invalidate');
  } finally {
    stop = true;
    await Promise.all(readers);
  }
  const stale = await Promise.all(
    everyone.map(async (p) => metricSum(await p.metrics(), 'weightcache_stale_reads_total')),
  );
  f.add(
    'all',
    'stale reads counted by the processes (weightcache_stale_reads_total)',
    'count',
    stale.reduce((a, b) => a + b, 0),
  );
  if (failures.size > 0)
    ctx.notes.push(`failed reads by status/code: ${[...failures].map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  for (const p of sidecars) await p.stop();
  for (const m of cluster.members) await m.stop();
}

/** The one version a whole body holds, or -1 if it mixes versions or is another file's. */
function versionOf(body: Buffer, file: number, bytes: number): number {
  if (body.length !== bytes) return -1;
  const v = body.readUInt32BE(4);
  return body.equals(content(v, file, bytes)) ? v : -1;
}
