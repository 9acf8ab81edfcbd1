/** Polling for a condition in tests: one helper, so every wait fails the same way. */

export interface UntilOptions {
  /** What is awaited, for the error when the deadline passes. */
  readonly what?: string;
  /**
   * Give up after this long. Unset: wait as long as vitest's test timeout
   * allows (no timing assertion of its own, so a loaded machine is not a failure).
   */
  readonly timeoutMs?: number;
  /** Between probes. */
  readonly stepMs?: number;
  /** A probe that throws is retried (e.g. a server not listening yet) instead of failing the wait. */
  readonly retryErrors?: boolean;
}

type Got<T> = Exclude<Awaited<T>, false | null | undefined>;

/**
 * Probes until `probe` returns something other than false, null or undefined,
 * and returns it (so a probe can hand back what it found).
 */
export async function until<T>(probe: () => T, o: UntilOptions = {}): Promise<Got<T>> {
  const end = o.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + o.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== false && v !== null && v !== undefined) return v as Got<T>;
    } catch (err) {
      if (!o.retryErrors) throw err;
      last = err;
    }
    if (Date.now() >= end) {
      const why = last === undefined ? '' : ` (last error: ${(last as Error).message ?? last})`;
      throw new Error(`${o.what ?? 'the condition'} did not hold within ${o.timeoutMs} ms${why}`);
    }
    await new Promise((r) => setTimeout(r, o.stepMs ?? 20));
  }
}
