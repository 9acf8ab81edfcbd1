/** Plain-text and Markdown tables of a scenario's rows, for the terminal and docs/performance.md. */
import type { Row, ScenarioResult } from './results.js';

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

export function cells(r: Row): string[] {
  const range = r.runs.length > 1 ? `${fmt(r.min)}–${fmt(r.max)}` : '';
  const ratio =
    r.ratio === undefined ? '' : r.ratio === null ? 'n/a' : `${r.ratio.toFixed(2)}× ${r.vs ?? ''}`;
  return [r.case, r.server, r.metric, fmt(r.median), range, r.unit, String(r.runs.length), ratio];
}

const HEAD = ['case', 'server', 'metric', 'median', 'min–max', 'unit', 'runs', 'ratio (wc / best peer)'];

export function textTable(res: ScenarioResult): string {
  const lines = [`== ${res.scenario}: ${res.title} [${res.status}${res.reason ? `: ${res.reason}` : ''}]`];
  if (res.rows.length > 0) {
    const all = [HEAD, ...res.rows.map(cells)];
    const widths = HEAD.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
    for (const [n, r] of all.entries()) {
      lines.push(
        r.map((c, i) => (i >= 3 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '),
      );
      if (n === 0) lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
    }
  }
  for (const n of res.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

export function markdownTable(rows: readonly Row[]): string {
  const out = [`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${cells(r).join(' | ')} |`);
  return out.join('\n');
}
