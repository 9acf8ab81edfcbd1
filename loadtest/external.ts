/**
 * Scenario kind "external": another team's benchmark (native transport,
 * RESP) plugged in as data. When its entry point exists, run its command and
 * read the rows it wrote; otherwise report "not available" with the reason.
 * Their rows keep their own case/server/metric names; ratios are recomputed
 * here the same way as for our own rows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ctx } from './ctx.js';
import { run } from './processes.js';
import { type Row, withRatios } from './results.js';
import type { ExternalScenario } from './scenario.js';

export type ExternalOutcome = { ok: true; rows: Row[] } | { ok: false; reason: string };

export async function runExternal(s: ExternalScenario, repo: string, ctx: Ctx): Promise<ExternalOutcome> {
  const entry = s.entries.find((e) => existsSync(join(repo, e)));
  if (!entry) return { ok: false, reason: `${s.missingReason} (none of ${s.entries.join(', ')} present)` };
  const argv = s.command.map((a) => a.replaceAll('{entry}', entry));
  ctx.log(`running ${argv.join(' ')}`);
  const startedMs = Date.now();
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), {
      cwd: repo,
      timeoutMs: s.timeoutS * 1000,
      env: {
        ...process.env,
        WEIGHTCACHE_LOADTEST_WORKDIR: ctx.workDir,
        WEIGHTCACHE_LOADTEST_CLIENT: ctx.clientBin,
      },
    });
    for (const l of stdout.trim().split('\n').slice(-20)) ctx.log(`  ${l}`);
  } catch (err) {
    // One line: the reason lands in a table cell and a chart. Keep the error's own words.
    const msg = (err as Error).message.replace(/\s+/g, ' ');
    const at = msg.search(/\b\w*Error\b/);
    return { ok: false, reason: `${argv.join(' ')} failed: ${(at > 0 ? msg.slice(at) : msg).slice(0, 300)}` };
  }
  const file = join(repo, s.results);
  if (!existsSync(file)) return { ok: false, reason: `${s.results} was not written` };
  const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
  // Accept a bare row list or our ScenarioResult shape.
  const list = Array.isArray(raw) ? raw : (raw as { rows?: unknown }).rows;
  if (!Array.isArray(list)) return { ok: false, reason: `${s.results}: no rows` };
  const rows = list.filter(isRow);
  if (rows.length === 0)
    return { ok: false, reason: `${s.results}: no rows of the shape {case, server, metric, median}` };
  ctx.log(`${rows.length} rows from ${s.results} (${Math.round((Date.now() - startedMs) / 1000)} s)`);
  // Fill what their rows may leave out, so the table, chart and ratios treat them like ours.
  const norm = rows.map((r) => ({
    ...r,
    scenario: s.name,
    min: typeof r.min === 'number' ? r.min : r.median,
    max: typeof r.max === 'number' ? r.max : r.median,
    runs: Array.isArray(r.runs) ? r.runs : [r.median],
    ratio: undefined,
  }));
  return { ok: true, rows: withRatios(norm) };
}

function isRow(x: unknown): x is Row {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return (
    typeof r.case === 'string' &&
    typeof r.server === 'string' &&
    typeof r.metric === 'string' &&
    typeof r.median === 'number' &&
    typeof r.unit === 'string'
  );
}
