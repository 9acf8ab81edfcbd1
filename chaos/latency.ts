/** Latency samples in ms, kept whole (10⁶ doubles = 8 MB) so percentiles are exact, not estimated. */
export class Latencies {
  private buf = new Float64Array(1024);
  private n = 0;

  push(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** q in [0, 1]: the nearest-rank percentile; NaN without samples. */
  percentile(q: number): number {
    if (this.n === 0) return Number.NaN;
    const sorted = this.buf.slice(0, this.n).sort();
    return sorted[Math.min(this.n - 1, Math.max(0, Math.ceil(q * this.n) - 1))]!;
  }

  max(): number {
    let m = Number.NaN;
    for (let i = 0; i < this.n; i++) m = Number.isNaN(m) ? this.buf[i]! : Math.max(m, this.buf[i]!);
    return m;
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
