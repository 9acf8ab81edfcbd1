/**
 * A per-call deadline for origin requests: one AbortSignal that fires when the
 * caller aborts or when `timeoutMs` has passed, whichever comes first. Origins
 * hand `signal` to their client and, when anything fails, ask `failure()`
 * which of the two fired, so a timeout becomes ORIGIN_TIMEOUT and a caller's
 * abort stays the caller's AbortError rather than an origin fault.
 *
 * The timer is cleared in `dispose()`: a busy node issues thousands of reads a
 * second, and AbortSignal.timeout() would keep each one's timer alive for the
 * full timeout.
 */
import { CacheError } from '../errors/cache-error.js';

export class Deadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  private readonly onCallerAbort = (): void => this.controller.abort(this.caller?.reason);

  constructor(
    private readonly timeoutMs: number,
    private readonly caller?: AbortSignal,
  ) {
    caller?.throwIfAborted();
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new CacheError('ORIGIN_TIMEOUT', `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.timer.unref();
    caller?.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  /**
   * The error to throw if the deadline or the caller ended the call, else undefined
   * (the failure was the origin's own). `what` names the operation for the message.
   */
  failure(what: string): unknown {
    if (this.caller?.aborted) return this.caller.reason;
    if (this.timedOut)
      return new CacheError('ORIGIN_TIMEOUT', `${what}: no answer within ${this.timeoutMs} ms`);
    return undefined;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}

/**
 * Runs one origin call under a Deadline and translates whatever it throws:
 * a timeout or the caller's abort as such, anything else through `translate`
 * (each origin's own error mapping).
 */
export async function withDeadline<T>(
  timeoutMs: number,
  caller: AbortSignal | undefined,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
  translate: (err: unknown) => unknown,
): Promise<T> {
  const deadline = new Deadline(timeoutMs, caller);
  try {
    return await fn(deadline.signal);
  } catch (err) {
    throw deadline.failure(what) ?? translate(err);
  } finally {
    deadline.dispose();
  }
}
