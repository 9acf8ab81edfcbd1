/**
 * The reliability suite's one runner (issue 12), in the load test's style:
 * scenarios are data in chaos/scenarios/, each kind one file in chaos/kinds/.
 *
 *   npm run chaos -- list                 names and what they do
 *   npm run chaos -- all                  every scenario at full counts (~40 min on 2 shared cores)
 *   npm run chaos -- node-kill coherence  some of them
 *   npm run chaos -- all --scale 0.05     the same at a fraction of the counts (a quick check)
 *   npm run chaos -- all --scale 0.4 --record   a recorded run at 40 % of the counts (~13 min)
 *   npm run chaos -- render               redraw docs/reliability.md from chaos/results/*.json
 *   npm run chaos -- all --scale 0.4 --doors native   every process on the native HTTP and RESP doors
 *   npm run chaos -- all --scale 0.4 --doors js       every process on the JavaScript HTTP and RESP doors
 *                                         (neither recorded: their results go beside the run dirs;
 *                                         the default, `--doors default`, is the config's doors)
 *
 * Every scenario runs real processes (nodes, sidecars, an origin behind a
 * fault-injecting proxy) driven only through their public doors (HTTP, RESP,
 * the transport) and signals, checks every byte it reads against the origin,
 * and prints figures with the goal each is held to. A recorded run (scale 1,
 * or `--record` at another scale, which every result and the doc show) writes
 * chaos/results/<scenario>.json and .md and redraws docs/reliability.md; any
 * other run, and every scenario outside `all` (the smoke `npm test` runs),
 * writes beside the run dirs. The exit code is 1 if a goal was missed or a
 * scenario could not finish. Not part of `npm test`, but for its smoke.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureTools } from '../loadtest/install.js';
import { ensureBuild } from '../loadtest/peers/weightcache.js';
import {
  installCleanup,
  removeDir,
  removeOnInterrupt,
  stopAll,
  wasInterrupted,
} from '../loadtest/processes.js';
import { machineInfo } from '../loadtest/results.js';
import type { Ctx } from './ctx.js';
import { Figures } from './figures.js';
import { runCoherence } from './kinds/coherence.js';
import { runDiskFaults } from './kinds/disk-faults.js';
import { runHostile } from './kinds/hostile.js';
import { runNodeKill } from './kinds/node-kill.js';
import { runOriginFaults } from './kinds/origin-faults.js';
import { meterMachineLoad } from './machine-load.js';
import { updateReliabilityDoc } from './report.js';
import { type ChaosResult, statusOf, textTable, writeResult } from './results.js';
import { loadScenarios, type Scenario } from './scenario.js';

const REPO = resolve(import.meta.dirname, '..');
const RESULTS = join(REPO, 'chaos', 'results');
/** Per-run dirs (origin files, chunk dirs, logs) live here and are removed afterwards. */
const CHAOS_HOME = process.env.WEIGHTCACHE_CHAOS_DIR ?? '/var/tmp/weightcache-chaos';

async function runKind(s: Scenario, ctx: Ctx): Promise<void> {
  switch (s.kind) {
    case 'node-kill':
      return await runNodeKill(s, ctx);
    case 'origin-faults':
      return await runOriginFaults(s, ctx);
    case 'disk-faults':
      return await runDiskFaults(s, ctx);
    case 'hostile-clients':
      return await runHostile(s, ctx);
    case 'coherence':
      return await runCoherence(s, ctx);
  }
}

async function runOne(s: Scenario, command: string, scale: number, runDir: string): Promise<ChaosResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const meter = meterMachineLoad();
  const workDir = join(runDir, s.name);
  removeDir(workDir);
  mkdirSync(workDir, { recursive: true });
  const notes: string[] = [];
  const figures = new Figures(s.goals);
  const ctx: Ctx = {
    workDir,
    scale,
    figures,
    notes,
    log: (msg) =>
      process.stderr.write(`[${s.name} ${((performance.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`),
    scaled: (n, min = 1) => (n === 0 ? 0 : Math.max(min, Math.round(n * scale))),
  };
  let error: string | undefined;
  try {
    await runKind(s, ctx);
  } catch (err) {
    error = ((err as Error).stack ?? String(err)).split('\n').slice(0, 3).join(' | ').slice(0, 600);
    ctx.log(`failed: ${error}`);
  } finally {
    await stopAll();
    removeDir(workDir);
  }
  const all = figures.all();
  return {
    scenario: s.name,
    title: s.title,
    status: statusOf(all, error),
    ...(error ? { reason: error } : {}),
    command,
    scale,
    startedAt,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    machine,
    load: meter.stop(),
    figures: all,
    show: s.show,
    notes,
  };
}

async function main(argv: string[]): Promise<number> {
  const scenarios = loadScenarios(join(REPO, 'chaos', 'scenarios'));
  const scaleAt = argv.indexOf('--scale');
  const scale = scaleAt >= 0 ? Number(argv[scaleAt + 1]) : 1;
  if (!(scale > 0 && scale <= 10)) {
    process.stderr.write(`--scale must be a number in (0, 10], got ${argv[scaleAt + 1]}\n`);
    return 2;
  }
  const doorsAt = argv.indexOf('--doors');
  const doors = doorsAt >= 0 ? argv[doorsAt + 1] : 'default';
  if (doors !== 'default' && doors !== 'js' && doors !== 'native') {
    process.stderr.write(`--doors must be default, js or native, got ${doors}\n`);
    return 2;
  }
  // The recorded figures are the default doors' (http.door native, resp.door js); other runs are compared against them.
  if (doors !== 'default') process.env.WEIGHTCACHE_DOORS = doors;
  const record = (argv.includes('--record') || scale === 1) && doors === 'default';
  const flagged = new Set([scaleAt, doorsAt].filter((i) => i >= 0).flatMap((i) => [i, i + 1]));
  const args = argv.filter((a, i) => !flagged.has(i) && a !== '--record');
  const arg = args[0];
  if (!arg || arg === 'list' || arg === '--help') {
    for (const s of scenarios)
      process.stdout.write(`${s.name.padEnd(16)} ${s.title}${s.inAll ? '' : ' (not in all)'}\n`);
    process.stdout.write(
      '\nusage: npm run chaos -- <scenario>...|all|list|render [--scale F] [--record] [--doors default|js|native]\n',
    );
    return arg ? 0 : 2;
  }
  const inAll = scenarios.filter((s) => s.inAll).map((s) => s.name);
  if (arg === 'render') {
    updateReliabilityDoc(REPO, inAll);
    return 0;
  }
  const chosen =
    arg === 'all' ? scenarios.filter((s) => s.inAll) : scenarios.filter((s) => args.includes(s.name));
  const unknown = args.filter((a) => a !== 'all' && !scenarios.some((s) => s.name === a));
  if (unknown.length > 0 || chosen.length === 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; try: npm run chaos -- list\n`);
    return 2;
  }
  // gcc builds the load test's C range client, which the read-heavy scenarios drive.
  const missing = ensureTools(['gcc']);
  if (missing.size > 0) {
    process.stderr.write(`chaos: cannot run: ${[...missing.values()].join('; ')}\n`);
    return 1;
  }
  const why = ensureBuild();
  if (why) {
    process.stderr.write(`chaos: cannot run: ${why}\n`);
    return 1;
  }
  const runDir = join(CHAOS_HOME, `run-${process.pid}`);
  installCleanup(runDir);
  removeOnInterrupt(runDir);
  const command = `npm run chaos -- ${argv.join(' ')}`;
  const t0 = performance.now();
  let bad = 0;
  let recorded = 0;
  const scratch = join(CHAOS_HOME, 'results');
  for (const s of chosen) {
    const res = await runOne(s, command, scale, runDir);
    if (wasInterrupted()) break;
    // Only recorded runs of the documented scenarios describe the system: a quick run and
    // the smoke write beside the run dirs, so they never change the repository.
    const keep = record && s.inAll;
    writeResult(keep ? RESULTS : scratch, res);
    if (keep) recorded++;
    process.stdout.write(`\n${textTable(res)}\n`);
    if (res.status !== 'pass') bad++;
  }
  if (!wasInterrupted() && recorded > 0) updateReliabilityDoc(REPO, inAll);
  process.stdout.write(
    `\n${chosen.length} scenario(s), ${bad} not passing, in ${Math.round((performance.now() - t0) / 1000)} s; ` +
      `results in ${recorded > 0 ? 'chaos/results/' : ''}${recorded > 0 && recorded < chosen.length ? ' and ' : ''}${recorded < chosen.length ? scratch : ''}\n`,
  );
  removeDir(runDir);
  return bad > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
