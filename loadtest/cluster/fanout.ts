/**
 * Cluster fan-out: M GPU hosts (sidecars) load one model through 3 nodes with
 * `weightcache pull`, against the same hosts each copying the model from the
 * origin directly. Figures: origin bytes / model bytes (1.00 = one origin pull
 * for the whole fleet) and the time until every host has the model.
 *
 * The origin here is a local folder (the fs origin), so "reading the origin
 * directly" is a local copy at page-cache speed: a best case for the direct
 * path that no blob store over a network gives. The origin-bytes figure is
 * the one that carries over to a real deployment.
 *
 *   node node_modules/tsx/dist/cli.mjs loadtest/cluster/fanout.ts   (or: npm run loadtest -- cluster-fanout)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedDemo } from '../../src/demo/seed.js';
import { BIN, ensureBuilt, REPO, row, runCommand, startFleet, sumMetric } from './fleet.js';

const HOSTS = Number(process.env.FANOUT_HOSTS ?? 4);
const NODES = 3;
const RUNS = Number(process.env.FANOUT_RUNS ?? 3);

async function main(): Promise<void> {
  ensureBuilt();
  const work = mkdtempSync(join(process.env.WEIGHTCACHE_LOADTEST_WORKDIR ?? tmpdir(), 'fanout-'));
  const root = join(work, 'origin');
  const seeded = await seedDemo(root);
  const model = join(root, 'demo', 'tiny-llama');
  const c = `${HOSTS} hosts load a ${Math.round(seeded.bytes / 2 ** 20)} MiB model`;
  const wc = { ratio: [] as number[], time: [] as number[] };
  const direct = { time: [] as number[] };
  const one = { time: [] as number[] };
  try {
    for (let run = 0; run < RUNS; run++) {
      const dir = join(work, `run${run}`);
      const fleet = await startFleet(dir, root, NODES, HOSTS);
      const t0 = performance.now();
      const codes = await Promise.all(
        fleet.sidecars.map((s, i) =>
          runCommand(process.execPath, [
            BIN,
            'pull',
            'demo/tiny-llama',
            '--to',
            join(dir, `host${i}`),
            '--from',
            s.url,
            '-q',
          ]),
        ),
      );
      const seconds = (performance.now() - t0) / 1000;
      if (codes.some((x) => x !== 0)) throw new Error(`a pull failed: exit codes ${codes.join(',')}`);
      wc.time.push(seconds);
      wc.ratio.push((await sumMetric(fleet.nodes, 'weightcache_origin_bytes_total')) / seeded.bytes);
      await fleet.stop();
      rmSync(dir, { recursive: true, force: true });

      // The same hosts, each copying from the origin directly.
      const t1 = performance.now();
      await Promise.all(
        Array.from({ length: HOSTS }, (_, i) => runCommand('cp', ['-r', model, join(work, `direct${i}`)])),
      );
      direct.time.push((performance.now() - t1) / 1000);
      const t2 = performance.now();
      await runCommand('cp', ['-r', model, join(work, 'one')]);
      one.time.push((performance.now() - t2) / 1000);
      for (let i = 0; i < HOSTS; i++) rmSync(join(work, `direct${i}`), { recursive: true, force: true });
      rmSync(join(work, 'one'), { recursive: true, force: true });
    }
    const server = `weightcache (${NODES} nodes, ${HOSTS} sidecars, pull)`;
    const rows = [
      row(c, server, 'origin bytes / model', 'x', wc.ratio),
      row(c, server, 'fill time', 's', wc.time),
      row(
        c,
        `origin direct (${HOSTS} hosts, cp)`,
        'origin bytes / model',
        'x',
        direct.time.map(() => HOSTS),
      ),
      row(
        c,
        `origin direct (${HOSTS} hosts, cp)`,
        'fill time',
        's',
        direct.time,
        'local fs origin: page-cache copy',
      ),
      row(
        c,
        'origin direct (1 host, cp)',
        'origin bytes / model',
        'x',
        one.time.map(() => 1),
      ),
      row(c, 'origin direct (1 host, cp)', 'fill time', 's', one.time, 'local fs origin: page-cache copy'),
    ];
    writeFileSync(
      join(REPO, 'loadtest/results/cluster-fanout-rows.json'),
      `${JSON.stringify(rows, null, 2)}\n`,
    );
    for (const r of rows) console.log(`${r.server.padEnd(44)} ${r.metric.padEnd(22)} ${r.median} ${r.unit}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
