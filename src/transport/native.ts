/**
 * The one owner of the addon's transport callback. The addon delivers every
 * event of every socket through a single thread-safe function; this routes
 * them to the server or client connection they belong to, and counts who
 * needs the process kept alive (open servers, pending requests).
 */
import { type Binding, binding, type NativeEvent } from './binding.js';

export type FrameEvent = Extract<NativeEvent, { kind: 'frame' }>;

export interface ConnectionSink {
  onConnected(): void;
  onFrame(ev: FrameEvent): void;
  onClosed(reason: string): void;
}

export interface ListenerSink {
  /** Must register a sink for `conn` (or close it) before returning. */
  onAccepted(conn: number, peer: string): void;
}

export class NativeTransport {
  private readonly conns = new Map<number, ConnectionSink>();
  private readonly listeners = new Map<number, ListenerSink>();
  private refs = 0;

  constructor(readonly b: Binding) {
    b.transportInit((ev) => this.dispatch(ev));
  }

  addListener(id: number, sink: ListenerSink): void {
    this.listeners.set(id, sink);
  }

  removeListener(id: number): void {
    this.listeners.delete(id);
    this.b.transportCloseListener(id);
  }

  attach(conn: number, sink: ConnectionSink): void {
    this.conns.set(conn, sink);
  }

  /** Counts a reason to keep the process alive; balanced by unref(). */
  ref(): void {
    if (this.refs++ === 0) this.b.transportRef();
  }

  unref(): void {
    if (--this.refs === 0) this.b.transportUnref();
  }

  private dispatch(ev: NativeEvent): void {
    try {
      switch (ev.kind) {
        case 'accepted': {
          const l = this.listeners.get(ev.listener);
          if (l) l.onAccepted(ev.conn, ev.peer);
          else this.b.transportClose(ev.conn, 'listener closed', false);
          break;
        }
        case 'connected':
          this.conns.get(ev.conn)?.onConnected();
          break;
        case 'frame':
          // A frame for a connection nobody owns any more is dropped; its payload is collected.
          this.conns.get(ev.conn)?.onFrame(ev);
          break;
        case 'closed': {
          const sink = this.conns.get(ev.conn);
          this.conns.delete(ev.conn);
          sink?.onClosed(ev.reason);
          break;
        }
      }
    } catch (err) {
      // A bug in a sink must not take the I/O callback (and every other connection) down with it.
      process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'WeightcacheTransportWarning');
    }
  }
}

let instance: NativeTransport | undefined;

export function nativeTransport(): NativeTransport {
  instance ??= new NativeTransport(binding());
  return instance;
}
