/**
 * What every reliability scenario produces: figures, each with the goal it is
 * held to (from the scenario file, matched by metric name) and whether it met
 * it. A figure without a goal is context (a rate, a count, a latency to compare).
 *
 * Goals are written the way a reader says them: `== 0`, `<= 0.1`, `< 1`,
 * `>= 99.9`, or `within 10%` (for ratios: |value − 1| ≤ 0.10).
 */

export interface Goal {
  readonly text: string;
  met(value: number): boolean;
}

export interface Figure {
  readonly case: string;
  readonly metric: string;
  readonly unit: string;
  readonly value: number;
  readonly goal?: string;
  /** true/false against the goal; null when the figure has none (or could not be measured). */
  readonly pass: boolean | null;
  readonly note?: string;
}

export function parseGoal(text: string): Goal {
  const cmp = /^(==|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)$/.exec(text.trim());
  if (cmp) {
    const [op, n] = [cmp[1]!, Number(cmp[2])];
    const ops: Record<string, (v: number) => boolean> = {
      '==': (v) => v === n,
      '<=': (v) => v <= n,
      '>=': (v) => v >= n,
      '<': (v) => v < n,
      '>': (v) => v > n,
    };
    return { text: text.trim(), met: ops[op]! };
  }
  const within = /^within\s*±?\s*(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (within) {
    const tol = Number(within[1]) / 100;
    return { text: text.trim(), met: (v) => Math.abs(v - 1) <= tol + 1e-12 };
  }
  throw new Error(`goal "${text}": expected "== N", "<= N", ">= N", "< N", "> N" or "within N%"`);
}

/** Collects a scenario's figures; goals are looked up by metric name. */
export class Figures {
  private readonly list: Figure[] = [];

  constructor(private readonly goals: Readonly<Record<string, string>>) {
    for (const g of Object.values(goals)) parseGoal(g); // a typo fails at load, not after 20 minutes
  }

  add(c: string, metric: string, unit: string, value: number, note?: string): void {
    const text = this.goals[metric];
    const measured = Number.isFinite(value);
    const pass = text === undefined ? null : measured ? parseGoal(text).met(value) : false;
    this.list.push({
      case: c,
      metric,
      unit,
      value: round(value),
      ...(text ? { goal: text } : {}),
      pass,
      ...(note ? { note } : {}),
    });
  }

  all(): Figure[] {
    return [...this.list];
  }
}

export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const digits = a >= 1000 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 4;
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  return String(round(x));
}

export function verdict(f: Figure): string {
  return f.pass === null ? '' : f.pass ? 'pass' : 'FAIL';
}
