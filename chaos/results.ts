/**
 * One scenario's result: its figures with goals and verdicts, the machine and
 * its load during the run, notes. Written as chaos/results/<scenario>.json
 * (the data) and .md (the same as a table); docs/reliability.md's table is
 * generated from the JSON files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from '../loadtest/results.js';
import { type Figure, fmt, verdict } from './figures.js';
import type { MachineLoad } from './machine-load.js';

export interface ChaosResult {
  readonly scenario: string;
  readonly title: string;
  /** pass: every goal met; fail: a goal missed; error: the scenario could not finish. */
  readonly status: 'pass' | 'fail' | 'error';
  readonly reason?: string;
  readonly command: string;
  readonly scale: number;
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly load: MachineLoad;
  readonly figures: Figure[];
  readonly show: string[];
  readonly notes: string[];
}

export function statusOf(figures: readonly Figure[], error?: string): ChaosResult['status'] {
  if (error) return 'error';
  return figures.some((f) => f.pass === false) ? 'fail' : 'pass';
}

export function loadLine(r: ChaosResult): string {
  const l = r.load;
  return (
    `${r.machine.cores} cores (${r.machine.cpuModel}); load average ${l.loadavg1mStart} → ${l.loadavg1mEnd}; ` +
    `other processes used ${l.otherCoresMedian} cores (median, max ${l.otherCoresMax}), this run ${l.ownCoresMedian}`
  );
}

export function textTable(r: ChaosResult): string {
  const rows = r.figures.map((f) => [
    f.case,
    f.metric,
    `${fmt(f.value)} ${f.unit}`,
    f.goal ?? '',
    verdict(f),
  ]);
  const head = ['case', 'metric', 'value', 'goal', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    `${r.scenario}: ${r.status.toUpperCase()}${r.reason ? ` (${r.reason})` : ''} in ${r.seconds} s — ${r.title}`,
    `machine: ${loadLine(r)}`,
    line(head),
    ...rows.map(line),
    ...r.notes.map((n) => `- ${n}`),
  ].join('\n');
}

export function markdownTable(figures: readonly Figure[], withScenario?: string): string {
  const pre = withScenario !== undefined ? '| scenario ' : '';
  const out = [
    `${pre}| case | metric | value | goal | verdict |`,
    `${withScenario !== undefined ? '|---' : ''}|---|---|---|---|---|`,
  ];
  for (const f of figures) {
    const v = verdict(f);
    out.push(
      `${withScenario !== undefined ? `| ${withScenario} ` : ''}| ${f.case} | ${f.metric} | ${fmt(f.value)} ${f.unit} | ${f.goal ?? ''} | ${v === 'FAIL' ? '**FAIL**' : v} |`,
    );
  }
  return out.join('\n');
}

export function writeResult(dir: string, r: ChaosResult): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${r.scenario}.json`), `${JSON.stringify(r, null, 2)}\n`);
  const md = [
    `### ${r.scenario}: ${r.title}`,
    '',
    `\`${r.command}\` · ${r.startedAt} · ${r.seconds} s · scale ${r.scale} · status: **${r.status}**${r.reason ? ` (${r.reason})` : ''}`,
    '',
    `Machine: ${loadLine(r)}.`,
    '',
    markdownTable(r.figures),
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
  ];
  writeFileSync(join(dir, `${r.scenario}.md`), md.join('\n'));
}
