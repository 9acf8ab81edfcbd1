/**
 * Node loss under load: 4 clients read a model chunk by chunk through 2
 * sidecars in front of 3 nodes; one node is SIGKILLed a third of the way in.
 * Figures: client-visible errors and wrong bytes (both must be 0), the
 * longest stall between two completed reads of one client, and the extra
 * origin bytes the loss cost — beside the same run without a kill. (Origin
 * bytes are summed over the processes alive at the end: what the killed node
 * read before it died is not counted, at most its third of the model.)
 *
 *   node node_modules/tsx/dist/cli.mjs loadtest/cluster/node-loss.ts   (or: npm run loadtest -- node-loss)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedDemo } from '../../src/demo/seed.js';
import { ensureBuilt, REPO, row, startFleet, sumMetric } from './fleet.js';

const CLIENTS = 4;
const RUNS = Number(process.env.NODE_LOSS_RUNS ?? 3);
const RANGE = 4 * 2 ** 20;

interface Outcome {
  errors: number;
  wrong: number;
  maxStallMs: number;
  seconds: number;
  originPerModel: number;
}

async function once(
  work: string,
  root: string,
  files: Map<string, Buffer>,
  bytes: number,
  kill: boolean,
): Promise<Outcome> {
  const dir = mkdtempSync(join(work, kill ? 'kill-' : 'base-'));
  const fleet = await startFleet(dir, root, 3, 2);
  const reads = [...files.entries()].flatMap(([key, buf]) =>
    Array.from({ length: Math.ceil(buf.length / RANGE) }, (_, i) => ({ key, buf, start: i * RANGE })),
  );
  let errors = 0;
  let wrong = 0;
  let maxStallMs = 0;
  let done = 0;
  const t0 = performance.now();
  const client = async (c: number) => {
    let last = performance.now();
    for (const r of reads) {
      const end = Math.min(r.start + RANGE, r.buf.length) - 1;
      try {
        const res = await fetch(`${fleet.sidecars[c % 2]!.url}/v1/objects/demo/tiny-llama/${r.key}`, {
          headers: { Range: `bytes=${r.start}-${end}` },
        });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 206) errors++;
        else if (!body.equals(r.buf.subarray(r.start, end + 1))) wrong++;
      } catch {
        errors++;
      }
      const now = performance.now();
      maxStallMs = Math.max(maxStallMs, now - last);
      last = now;
      if (kill && ++done === Math.floor((CLIENTS * reads.length) / 3)) fleet.nodes[1]!.proc.kill('SIGKILL');
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  const seconds = (performance.now() - t0) / 1000;
  const origin =
    (await sumMetric([...fleet.nodes, ...fleet.sidecars], 'weightcache_origin_bytes_total')) / bytes;
  await fleet.stop();
  rmSync(dir, { recursive: true, force: true });
  return { errors, wrong, maxStallMs, seconds, originPerModel: origin };
}

async function main(): Promise<void> {
  ensureBuilt();
  const work = mkdtempSync(join(process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? tmpdir(), 'node-loss-'));
  try {
    const root = join(work, 'origin');
    const seeded = await seedDemo(root);
    const files = new Map(seeded.files.map((f) => [f, readFileSync(join(seeded.dir, f))]));
    const out = { kill: [] as Outcome[], base: [] as Outcome[] };
    for (let run = 0; run < RUNS; run++) {
      out.base.push(await once(work, root, files, seeded.bytes, false));
      out.kill.push(await once(work, root, files, seeded.bytes, true));
    }
    const c = `${CLIENTS} clients, 2 sidecars, 3 nodes, 4 MiB ranges`;
    const rows = (['kill', 'base'] as const).flatMap((k) => {
      const server =
        k === 'kill' ? 'weightcache (1 of 3 nodes SIGKILLed at 1/3)' : 'weightcache (no node lost)';
      const o = out[k];
      return [
        row(
          c,
          server,
          'client errors',
          'count',
          o.map((x) => x.errors),
        ),
        row(
          c,
          server,
          'wrong bytes',
          'count',
          o.map((x) => x.wrong),
        ),
        row(
          c,
          server,
          'max stall',
          'ms',
          o.map((x) => x.maxStallMs),
        ),
        row(
          c,
          server,
          'load time',
          's',
          o.map((x) => x.seconds),
        ),
        row(
          c,
          server,
          'origin bytes / model',
          'x',
          o.map((x) => x.originPerModel),
        ),
      ];
    });
    writeFileSync(join(REPO, 'loadtest/results/node-loss-rows.json'), `${JSON.stringify(rows, null, 2)}\n`);
    for (const r of rows) console.log(`${r.server.padEnd(46)} ${r.metric.padEnd(22)} ${r.median} ${r.unit}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
