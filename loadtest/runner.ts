/**
 * The one load-test runner: scenarios are data, this runs them (docs/performance.md):
 *
 *   npm run loadtest -- <scenario>     one scenario from loadtest/scenarios/
 *   npm run loadtest -- all            every scenario with inAll (≤ 10 min)
 *   npm run loadtest -- list           names and what they measure
 *   npm run loadtest -- render         redraw SVG/Markdown from the results JSON
 *
 * For each scenario: installs missing Debian tools, starts the servers with
 * their own configs on high loopback ports, measures, stops everything it
 * started (also on Ctrl-C or failure), prints a table and writes
 * loadtest/results/<scenario>.json and .svg. A scenario that cannot run
 * reports "not available" with the reason instead of failing the run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildRangeClient } from './client/clients.js';
import { runColdFill } from './cold-fill.js';
import { runCrc32c } from './crc32c.js';
import type { Ctx } from './ctx.js';
import { runExternal } from './external.js';
import { LOADTEST_HOME } from './fixtures.js';
import { firstLine, runHttpRanges } from './http-ranges.js';
import { ensureTools } from './install.js';
import { runMount } from './mount/run.js';
import { runNvmeReads } from './nvme-reads.js';
import { installCleanup, removeDir, removeOnInterrupt, stopAll, wasInterrupted } from './processes.js';
import { updatePerformanceDoc } from './report.js';
import { machineInfo, type Row, Samples, type ScenarioResult, withRatios } from './results.js';
import { loadScenarios, type Scenario } from './scenario.js';
import { renderSvg } from './svg.js';
import { markdownTable, textTable } from './table.js';

const REPO = resolve(import.meta.dirname, '..');
const RESULTS = join(REPO, 'loadtest', 'results');
const CHART_METRICS = [
  'GB/s',
  'throughput',
  'p99',
  'fill time',
  'warm re-read time',
  'origin bytes / model',
  'disk read / served',
  'CPU per GB',
  'client CPU per GB',
  'server CPU',
  'client CPU',
];

function toolsFor(s: Scenario): string[] {
  if (s.kind === 'external') return [];
  const t = ['gcc'];
  if (s.kind === 'crc32c') return t;
  if (s.kind === 'nvme-reads') return s.fio ? [...t, 'fio'] : t;
  if (s.kind === 'mount') return [...t, 'curl'];
  if (s.kind === 'cold-fill') return [...t, 'nginx'];
  if (s.servers.includes('nginx') || s.servers.includes('varnish')) t.push('nginx');
  if (s.servers.includes('varnish')) t.push('varnishd');
  if (s.clients.includes('wrk')) t.push('wrk');
  if (s.iperfStreams > 0) t.push('iperf3');
  if (s.fio.length > 0) t.push('fio');
  return t;
}

async function runOne(s: Scenario, command: string): Promise<ScenarioResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const workDir = join(LOADTEST_HOME, `run-${process.pid}`, s.name);
  removeDir(workDir);
  mkdirSync(workDir, { recursive: true });
  const notes: string[] = [];
  const ctx: Ctx = {
    workDir,
    originRoot: join(LOADTEST_HOME, 'origin'),
    clientBin: join(LOADTEST_HOME, 'bin', 'rangeclient'),
    notes,
    log: (msg) =>
      process.stderr.write(`[${s.name} ${((performance.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`),
  };
  const done = (status: ScenarioResult['status'], rows: Row[], reason?: string): ScenarioResult => ({
    scenario: s.name,
    title: s.title,
    status,
    ...(reason ? { reason } : {}),
    command,
    startedAt,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    machine,
    rows,
    notes,
  });
  const missing = ensureTools(toolsFor(s));
  if (missing.size > 0) return done('not available', [], [...missing.values()].join('; '));
  try {
    if (s.kind !== 'external') buildRangeClient(join(LOADTEST_HOME, 'bin'));
    if (s.kind === 'external') {
      const out = await runExternal(s, REPO, ctx);
      return out.ok ? done('ok', out.rows) : done('not available', [], out.reason);
    }
    const samples = new Samples();
    if (s.kind === 'http-ranges') await runHttpRanges(s, ctx, samples);
    else if (s.kind === 'crc32c') runCrc32c(s, ctx, samples);
    else if (s.kind === 'nvme-reads') await runNvmeReads(s, ctx, samples);
    else if (s.kind === 'mount') {
      const why = await runMount(s, ctx, samples);
      if (why) return done('not available', [], why);
    } else {
      const why = await runColdFill(s, ctx, samples);
      if (why) return done('not available', samples.rows(s.name), why);
    }
    const rows = samples.rows(s.name);
    const other = rows.filter((r) => r.metric === 'other CPU').map((r) => r.median);
    if (other.length > 0) {
      const worst = Math.max(...other);
      notes.push(
        `client and server share ${machine.cores} cores; other processes on the machine used up to ${worst.toFixed(2)} ` +
          `cores (median per case) during the runs, so figures are lower bounds for this machine`,
      );
    }
    return rows.length > 0 ? done('ok', rows) : done('not available', rows, notes.join('; ') || 'no figures');
  } catch (err) {
    return done('failed', [], firstLine(err));
  } finally {
    await stopAll();
    removeDir(workDir);
  }
}

function write(res: ScenarioResult): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${res.scenario}.json`), `${JSON.stringify(res, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${res.scenario}.svg`), renderSvg(res, CHART_METRICS));
  // Markdown beside them, for docs/performance.md and the README.
  const head = `### ${res.scenario}: ${res.title}\n\n\`${res.command}\` · ${res.startedAt} · ${res.machine.cores} cores (${res.machine.cpuModel}) · status: ${res.status}${res.reason ? ` (${res.reason})` : ''}\n\n`;
  const notes = res.notes.map((n) => `- ${n}`).join('\n');
  writeFileSync(
    join(RESULTS, `${res.scenario}.md`),
    `${head}${res.rows.length ? markdownTable(res.rows) : ''}\n\n${notes}\n`,
  );
}

async function main(argv: string[]): Promise<number> {
  const scenarios = loadScenarios(join(REPO, 'loadtest', 'scenarios'));
  const arg = argv[0];
  if (!arg || arg === 'list' || arg === '--help') {
    for (const s of scenarios)
      process.stdout.write(`${s.name.padEnd(18)} ${s.title}${s.inAll ? '' : ' (not in all)'}\n`);
    process.stdout.write('\nusage: npm run loadtest -- <scenario>...|all|list|render\n');
    return arg ? 0 : 2;
  }
  if (arg === 'render') {
    // Charts and tables are derived from the JSON: redraw them without measuring again.
    for (const s of scenarios) {
      const file = join(RESULTS, `${s.name}.json`);
      if (!existsSync(file)) continue;
      const res = JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult;
      // Ratios are derived from the medians too: recompute them with the current rule.
      write({ ...res, rows: withRatios(res.rows.map((r) => ({ ...r, ratio: undefined, vs: undefined }))) });
    }
    updatePerformanceDoc(
      REPO,
      scenarios.filter((s) => s.inAll).map((s) => s.name),
    );
    return 0;
  }
  const chosen =
    arg === 'all' ? scenarios.filter((s) => s.inAll) : scenarios.filter((s) => argv.includes(s.name));
  const unknown = argv.filter((a) => a !== 'all' && !scenarios.some((s) => s.name === a));
  if (unknown.length > 0 || chosen.length === 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; try: npm run loadtest -- list\n`);
    return 2;
  }
  const runDir = join(LOADTEST_HOME, `run-${process.pid}`);
  installCleanup(runDir);
  removeOnInterrupt(runDir);
  const command = `npm run loadtest -- ${argv.join(' ')}`;
  const t0 = performance.now();
  let failed = 0;
  for (const s of chosen) {
    const res = await runOne(s, command);
    if (wasInterrupted()) break;
    write(res);
    process.stdout.write(`\n${textTable(res)}\n`);
    if (res.status === 'failed') failed++;
  }
  if (!wasInterrupted()) {
    updatePerformanceDoc(
      REPO,
      scenarios.filter((s) => s.inAll).map((s) => s.name),
    );
  }
  process.stdout.write(
    `\n${chosen.length} scenario(s) in ${Math.round((performance.now() - t0) / 1000)} s; results in loadtest/results/\n`,
  );
  removeDir(runDir);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
