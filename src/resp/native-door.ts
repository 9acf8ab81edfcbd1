/**
 * The native RESP door (`resp.door: native`; addon/src/resp/door.h) seen from
 * JavaScript: N I/O threads accept, read, parse (the same limits and errors
 * as request-parser.ts) and bound connections, and post each whole command
 * here; the connection's NativePort (native-port.ts) hands it to the same
 * Connection code as the JavaScript door, whose replies the thread writes in
 * pipeline order. server.ts starts it.
 */
import type { NativeAccessRecord } from '../http/native-binding.js';
import { binding } from '../transport/binding.js';
import type { NativeRespDoorOptions, NativeRespDoorStats, NativeRespEvent } from './native-binding.js';
import { NativePort } from './native-port.js';

export class NativeRespDoor {
  private stopped = false;
  private readonly ports = new Map<number, NativePort>();

  private constructor(readonly port: number) {}

  private id = 0;

  /**
   * Starts the threads; `onOpen` gets each new connection (before any of its commands), `onAccess`
   * the access records of fast-path replies (with options.accessLog).
   */
  static start(
    options: NativeRespDoorOptions,
    onOpen: (port: NativePort) => void,
    onAccess?: (records: NativeAccessRecord[]) => void,
  ): NativeRespDoor {
    let door: NativeRespDoor | null = null;
    const pending: NativeRespEvent[][] = [];
    const handle = (events: NativeRespEvent[]) => {
      const d = door!;
      for (const e of events) {
        if (e.kind === 'access') {
          onAccess?.(e.records);
          continue;
        }
        if (e.kind === 'open') {
          const p = new NativePort(e.conn, e.peer, (conn, pieces, done, flags, grant) =>
            d.send(conn, pieces, done, flags, grant),
          );
          d.ports.set(e.conn, p);
          onOpen(p);
          continue;
        }
        const p = d.ports.get(e.conn);
        if (!p) continue;
        switch (e.kind) {
          case 'command':
            if (e.written > 0 || e.served > 0) p.onWritten(e.written, e.served); // progress rides on the command
            p.onCommand(e.args);
            break;
          case 'written':
            p.onWritten(e.bytes, e.served);
            break;
          case 'protocolError':
            p.onProtocolError(e.reason, e.message);
            break;
          case 'closed':
            d.ports.delete(e.conn);
            p.onClosed();
            break;
        }
      }
    };
    const { id, port } = binding().respDoorStart(options, (events) => {
      // Events can only arrive once start() returned (they are drained on this thread).
      if (door) handle(events);
      else pending.push(events);
    });
    door = new NativeRespDoor(port);
    door.id = id;
    for (const events of pending.splice(0)) handle(events);
    return door;
  }

  /** Sends of this tick, all connections: handed over in one call (one lock and doorbell per thread). */
  private outgoing: (number | Uint8Array[] | string[] | null)[] = [];

  private send(
    conn: number,
    pieces: Uint8Array[],
    done: number,
    flags: number,
    grant: string[] | null,
  ): void {
    if (this.stopped) return;
    if (this.outgoing.length === 0) queueMicrotask(() => this.flush());
    this.outgoing.push(conn, pieces, done, flags, grant);
  }

  private flush(): void {
    const batch = this.outgoing;
    this.outgoing = [];
    if (!this.stopped && batch.length > 0) binding().respDoorSend(this.id, batch);
  }

  stats(): NativeRespDoorStats {
    return binding().respDoorStats(this.id);
  }

  /** Closes the listeners and every connection (their ports see 'close'). */
  stop(): void {
    if (this.stopped) return;
    this.flush();
    this.stopped = true;
    binding().respDoorStop(this.id);
    for (const p of this.ports.values()) p.onClosed();
    this.ports.clear();
  }
}
