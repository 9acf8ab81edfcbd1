/**
 * A smoke of the reliability suite's runner (`npm run chaos`, docs/reliability.md):
 * the suite itself takes minutes and is not part of `npm test`, but its one
 * runner must keep working. The `smoke` scenario (the coherence kind at its
 * smallest, outside `all`) starts real nodes and a sidecar, reads, rewrites
 * files in place with the mtime restored, invalidates, checks every byte,
 * holds figures to goals and writes its result beside the run dirs, never
 * into chaos/results/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChaosResult } from '../../chaos/results.js';
import { loadScenarios } from '../../chaos/scenario.js';

const REPO = resolve(import.meta.dirname, '../..');
const TSX = join(REPO, 'node_modules', '.bin', 'tsx');
const home = mkdtempSync(join(tmpdir(), 'wc-chaos-smoke-'));

function runner(args: string[], timeout = 100_000) {
  return spawnSync(TSX, ['chaos/runner.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, WEIGHTCACHE_CHAOS_DIR: home },
    encoding: 'utf8',
    timeout,
  });
}

afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('chaos runner', () => {
  it('every scenario file is valid, and the smoke stays out of `all`', () => {
    const scenarios = loadScenarios(join(REPO, 'chaos', 'scenarios'));
    const names = scenarios.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'node-kill',
        'origin-faults',
        'disk-faults',
        'hostile-clients',
        'coherence',
        'smoke',
      ]),
    );
    expect(scenarios.find((s) => s.name === 'smoke')?.inAll).toBe(false);
  });

  it('refuses an unknown scenario and a bad scale, naming them', () => {
    const unknown = runner(['no-such-scenario'], 30_000);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown scenario(s): no-such-scenario');
    const scale = runner(['smoke', '--scale', 'lots'], 30_000);
    expect(scale.status).toBe(2);
    expect(scale.stderr).toContain('--scale must be a number in (0, 10], got lots');
  });

  it('runs the smoke scenario against real processes: passes, every goal checked, result outside the repo', () => {
    const r = runner(['smoke']);
    expect(r.status, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(existsSync(join(REPO, 'chaos', 'results', 'smoke.json'))).toBe(false);
    const res = JSON.parse(readFileSync(join(home, 'results', 'smoke.json'), 'utf8')) as ChaosResult;
    expect(res.status).toBe('pass');
    const of = (metric: string) => res.figures.filter((f) => f.metric === metric);
    // Each writer mode ran and readers read through it.
    expect(of('reads').map((f) => f.case)).toEqual([
      'replace + invalidate',
      'replace, no invalidation (term 1000 ms)',
      'in-place rewrite, mtime restored, + invalidate',
    ]);
    for (const f of of('reads')) expect(f.value).toBeGreaterThan(0);
    for (const f of of('versions seen by readers')) expect(f.value).toBeGreaterThanOrEqual(2);
    // Every goal of the scenario file was held against at least one figure, and met.
    const goals = loadScenarios(join(REPO, 'chaos', 'scenarios')).find((s) => s.name === 'smoke')!.goals;
    for (const metric of Object.keys(goals)) {
      expect(of(metric).length, metric).toBeGreaterThan(0);
      for (const f of of(metric)) expect(f.pass, `${f.case}: ${metric} = ${f.value}`).toBe(true);
    }
    expect(of('reads mixing versions').every((f) => f.value === 0)).toBe(true);
    // The run dir (origin files, chunk dirs, logs) is removed at the end: only results stay.
    expect(readdirSync(home)).toEqual(['results']);
  }, 120_000);
});
