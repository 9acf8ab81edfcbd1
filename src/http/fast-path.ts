/**
 * The native door's fast path, JavaScript side (addon/src/http/fastpath.h,
 * docs/native-http-door.md): the version bindings the I/O threads read, and
 * the token digests they check. The coherence layer publishes bindings here
 * (it holds a BindingSink); the server hands the tables and the DRAM store to
 * the door. What the I/O threads cannot answer exactly as the JavaScript door
 * would, they pass to it.
 */
import type { TokenSet } from '../auth/tokens.js';
import type { BindingSink } from '../coherence/resolver.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import { objectIdOf } from '../store/address.js';
import { binding } from '../transport/binding.js';
import type { NativeBindings, NativeTokens } from './native-binding.js';
import { contentTypeOf } from './send-read.js';

/**
 * Bindings are installed this much shorter than the lease or term they come
 * from: the caller reads its clock a moment before `bind` does, and a binding
 * must never outlive its lease. (The work inside `bind`, where a GC pause may
 * fall, is not covered by this: the deadline is measured from its entry.)
 */
export const BINDING_CLOCK_SLACK_MS = 5;
/** Names renewed per sweep at most (the rest wait for the next sweep, or run out and go to JavaScript). */
export const MAX_RENEWALS_PER_SWEEP = 1000;

export class NativeFastPath implements BindingSink {
  readonly bindings: NativeBindings;
  readonly tokens: NativeTokens;

  constructor(
    private readonly originId: string,
    private readonly chunkSize: number,
    tokens: TokenSet | null,
  ) {
    this.bindings = new (binding().NativeBindings)();
    this.tokens = new (binding().NativeTokens)();
    this.tokens.replace(tokens !== null, tokens?.grants() ?? []);
  }

  bind(info: ObjectInfo, validForMs: number): void {
    // The monotonic clock the addon reads (libuv's hrtime is CLOCK_MONOTONIC), taken before the
    // work below: a GC pause there shortens the binding instead of stretching it past its lease.
    const measuredAtNs = process.hrtime.bigint();
    const name = formatName(info);
    const ms = validForMs - BINDING_CLOCK_SLACK_MS;
    if (ms <= 0 || !Number.isSafeInteger(info.size)) {
      this.bindings.remove(name);
      return;
    }
    let installed = false;
    try {
      installed = this.bindings.set({
        name,
        objectId: objectIdOf(this.originId, info, this.chunkSize),
        etag: info.etag,
        size: info.size,
        chunkSize: this.chunkSize,
        lastModified: info.lastModified.toUTCString(),
        contentType: contentTypeOf(info.key),
        ...(info.contentMd5 === undefined ? {} : { contentMd5: info.contentMd5 }),
        validForMs: ms,
        measuredAtNs,
      });
    } catch {
      // A field the addon refuses (an ETag over its length bound): JavaScript answers this name.
      installed = false;
    }
    // Not installed (a full table, an ETag the fast path cannot send): an older binding must not stay.
    if (!installed) this.bindings.remove(name);
  }

  unbind(name: ObjectName): void {
    this.bindings.remove(formatName(name));
  }

  unbindPrefix(idPrefix: string): void {
    this.bindings.removePrefix(idPrefix);
  }

  private renewal: NodeJS.Timeout | undefined;

  /**
   * Names served only on the fast path never reach JavaScript, so nothing
   * there would renew their leases: every `periodMs`, each binding the fast
   * path used that runs out within `aheadMs` is handed to `renew` (which
   * resolves the name so that the lease is renewed ahead, or the binding
   * revalidated, and published again). A binding nobody used just runs out.
   */
  startRenewal(renew: (name: ObjectName) => void, aheadMs: number, periodMs: number): void {
    this.stopRenewal();
    this.renewal = setInterval(() => {
      for (const id of this.bindings.usedExpiring(aheadMs, MAX_RENEWALS_PER_SWEEP)) {
        const slash = id.indexOf('/');
        if (slash > 0) renew({ container: id.slice(0, slash), key: id.slice(slash + 1) });
      }
    }, periodMs);
    this.renewal.unref();
  }

  stopRenewal(): void {
    clearInterval(this.renewal);
    this.renewal = undefined;
    clearInterval(this.served);
    this.served = undefined;
  }

  private served: NodeJS.Timeout | undefined;

  /**
   * Answers made on the I/O threads never pass the coherence layer's
   * stale-read check: every `periodMs`, the bindings they answered from
   * (each reported at most once per 100 ms while in use) are handed to
   * `check`, times on performance.now()'s clock. Stopped by stopRenewal.
   */
  watchServed(check: (served: ServedBinding) => void, periodMs: number): void {
    clearInterval(this.served);
    this.served = setInterval(() => this.checkServed(check), periodMs);
    this.served.unref();
  }

  /** Hands what the I/O threads reported since the last call to `check` (tests call it directly). */
  checkServed(check: (served: ServedBinding) => void): void {
    const r = this.bindings.takeServed();
    // CLOCK_MONOTONIC (hrtime) ms minus performance.now(): the offset between the two clocks.
    const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    for (let i = 0; i < r.names.length; i++) {
      check({
        name: r.names[i]!,
        etag: r.etags[i]!,
        boundAt: r.boundNs[i]! / 1e6 - offset,
        usedAt: r.usedNs[i]! / 1e6 - offset,
      });
    }
  }
}

/** A binding a fast path answered from: its name and version, when it was bound and used (performance.now() ms). */
export interface ServedBinding {
  readonly name: string;
  readonly etag: string;
  readonly boundAt: number;
  readonly usedAt: number;
}
