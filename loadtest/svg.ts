/**
 * A small SVG bar-chart writer (no plotting dependency): one panel per
 * metric, one group of horizontal bars per case, one bar per server, with the
 * min–max of the runs drawn as a whisker and the median printed at the bar's
 * end. weightcache's bars are drawn in a strong colour, peers in greys.
 */
import { isWeightcache, type ScenarioResult } from './results.js';

const W = 900;
const LABEL_W = 300;
const BAR_H = 16;
const GAP = 4;
const PEER_COLOURS = ['#8c8c8c', '#b3b3b3', '#5f6b7a', '#c9b38a', '#7a9e9f'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function num(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** Draws `metrics` (in order) of the result; metrics without rows are skipped. */
export function renderSvg(res: ScenarioResult, metrics: readonly string[]): string {
  const parts: string[] = [];
  let y = 68;
  const servers = [...new Set(res.rows.map((r) => r.server))].filter((s) => !isWeightcache(s));
  const colour = (s: string) =>
    isWeightcache(s) ? '#d9480f' : (PEER_COLOURS[servers.indexOf(s) % PEER_COLOURS.length] ?? '#999');
  // Scenario name, then its title (often long) and the context on lines of their own.
  parts.push(
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(res.scenario)}</text>`,
    `<text x="10" y="40" font-size="12">${esc(res.title)}</text>`,
    `<text x="10" y="56" font-size="11" fill="#555">${esc(
      `${res.machine.cores} cores · ${res.startedAt.slice(0, 16)}Z · median of runs, whisker = min–max · ${res.command}`,
    )}</text>`,
  );
  if (res.status !== 'ok') {
    parts.push(
      `<text x="10" y="${y + 10}" font-size="13">${esc(`${res.status}: ${res.reason ?? ''}`)}</text>`,
    );
    y += 30;
  }
  for (const metric of metrics) {
    const rows = res.rows.filter((r) => r.metric === metric && Number.isFinite(r.median));
    if (rows.length === 0) continue;
    const unit = rows[0]!.unit;
    const max = Math.max(...rows.map((r) => r.max)) || 1;
    const scale = (W - LABEL_W - 90) / max;
    y += 14;
    parts.push(
      `<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(`${metric} (${unit})`)}</text>`,
    );
    y += 8;
    for (const c of [...new Set(rows.map((r) => r.case))]) {
      const group = rows.filter((r) => r.case === c);
      // The case on its own line: long case names would run into the server labels.
      parts.push(
        `<text x="10" y="${y + 12}" font-size="12" font-style="italic" fill="#222">${esc(c)}</text>`,
      );
      y += 18;
      for (const r of group) {
        const bw = Math.max(1, r.median * scale);
        const ratio = r.ratio != null ? ` (${r.ratio.toFixed(2)}×)` : '';
        parts.push(
          `<text x="${LABEL_W - 6}" y="${y + 12}" font-size="11" text-anchor="end" fill="#444">${esc(r.server)}</text>`,
          `<rect x="${LABEL_W}" y="${y}" width="${bw.toFixed(1)}" height="${BAR_H}" fill="${colour(r.server)}"/>`,
          `<line x1="${(LABEL_W + r.min * scale).toFixed(1)}" x2="${(LABEL_W + r.max * scale).toFixed(1)}" y1="${
            y + BAR_H / 2
          }" y2="${y + BAR_H / 2}" stroke="#000" stroke-width="1"/>`,
          `<text x="${(LABEL_W + Math.max(bw, r.max * scale) + 5).toFixed(1)}" y="${y + 12}" font-size="11">${esc(
            num(r.median) + ratio,
          )}</text>`,
        );
        y += BAR_H + GAP;
      }
      y += 8;
    }
  }
  y += 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${parts.join('\n')}
</svg>
`;
}
