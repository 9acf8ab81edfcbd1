/** What the runner hands every scenario: its dirs, the scale, figures to fill, notes, a log. */
import type { Figures } from './figures.js';

export interface Ctx {
  /** Per-run temp dir (origin files, configs, chunk dirs, logs); removed at the end. */
  readonly workDir: string;
  /** Multiplier for the scaled counts of the scenario (1 = the recorded run). */
  readonly scale: number;
  readonly figures: Figures;
  readonly notes: string[];
  log(msg: string): void;
  /** `n` × scale, at least `min`. */
  scaled(n: number, min?: number): number;
}
