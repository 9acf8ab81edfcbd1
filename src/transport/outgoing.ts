/**
 * Requests the accepting side of a connection sends to the connecting side (a
 * home's LEASE_REVOKE travels on the holder's own connection: sidecars listen
 * on loopback only). Ids are this side's own; each request ends exactly once:
 * answered, an ERROR answer, a timeout, or the connection closing.
 */
import { CacheError } from '../errors/cache-error.js';
import { decodeError } from './messages.js';
import type { FrameEvent } from './native.js';
import { FrameType } from './protocol.js';

interface Pending {
  resolve(ev: FrameEvent): void;
  reject(err: CacheError): void;
  timer: NodeJS.Timeout;
}

export class OutgoingRequests {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(
    private readonly peer: string,
    /** Writes the request frame (flags 0) with this id. */
    private readonly write: (type: number, id: number, meta: Buffer) => void,
  ) {}

  send(type: number, meta: Buffer, timeoutMs: number): Promise<FrameEvent> {
    let id: number;
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      id = this.nextId;
    } while (this.pending.has(id));
    return new Promise<FrameEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CacheError('ORIGIN_TIMEOUT', `peer ${this.peer}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.write(type, id, meta);
    });
  }

  /** A response frame from the peer (the addon has checked its id is one we sent). */
  answer(ev: FrameEvent): void {
    const p = this.pending.get(ev.requestId);
    if (!p) return; // timed out already
    this.pending.delete(ev.requestId);
    clearTimeout(p.timer);
    if (ev.type !== FrameType.ERROR) {
      p.resolve(ev);
      return;
    }
    let err: CacheError;
    try {
      err = decodeError(ev.meta, this.peer);
    } catch {
      err = new CacheError('INTERNAL', `peer ${this.peer}: malformed ERROR frame`);
    }
    p.reject(err);
  }

  /** The connection closed: every request still waiting fails now. */
  closed(reason: string): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new CacheError('SHUTTING_DOWN', `connection to ${this.peer} closed: ${reason}`));
    }
    this.pending.clear();
  }
}
