/**
 * One client connection: bytes in → RequestParser → commands run one at a
 * time, in order → replies out. Running commands strictly in sequence is what
 * keeps pipelined replies in order (a pipeline of thousands of GETRANGEs is
 * answered in the order asked), and it bounds each connection's memory to one
 * command's read-ahead window plus the unparsed query buffer.
 *
 * Backpressure both ways: replies wait for 'drain' (reply.ts), and while the
 * unparsed input is past the query buffer limit the socket is paused, so a
 * client pipelining faster than it reads is slowed by TCP, not buffered.
 */

import type { Grant } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import type { Ticket } from './admission.js';
import { COMMANDS } from './commands/index.js';
import type { RespDeps, Session } from './commands/types.js';
import { isClientError, respErrorOf } from './errors.js';
import { ProtocolError } from './protocol-error.js';
import { ReplyBroken, ReplyWriter } from './reply.js';
import type { ReplyOwner } from './reply-memory.js';
import { scopedDeps } from './scope.js';
import type { CommandInput, RespSocket } from './socket.js';

/** After a protocol error the socket is read and discarded this long, so the client gets the error line. */
const CLOSE_GRACE_MS = 2000;
/** Commands run back to back before yielding to other connections' I/O. */
const BATCH_COMMANDS = 1024;
/** Command names longer than this are not looked up (and are shown cut in the error). */
const MAX_NAME_SHOWN = 128;

export class Connection implements ReplyOwner {
  readonly session: Session;
  private readonly reply: ReplyWriter;
  private readonly abort = new AbortController();
  private running = false;
  private closing = false;
  private idle: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: RespSocket,
    /** Where whole commands come from: this socket's bytes parsed here, or the native door's I/O thread. */
    private readonly input: CommandInput,
    private readonly deps: RespDeps,
    id: number,
    /** This connection's slot (admission.ts): told when AUTH succeeds, may close us to make room. */
    private readonly ticket: Ticket,
    private readonly onClose: (c: Connection) => void,
  ) {
    ticket.onEvict = (message) => this.evict(message);
    this.session = {
      id,
      addr: `${socket.remoteAddress}:${socket.remotePort}`,
      clientKey: ticket.address,
      createdAt: Date.now(),
      name: null,
      libName: null,
      libVer: null,
      authenticated: deps.tokens === null,
      grant: null,
      authFailures: 0,
      closeAfterReply: false,
    };
    this.reply = new ReplyWriter(socket);
  }

  start(): void {
    const s = this.socket;
    this.input.start({
      arrived: () => {
        this.idle?.refresh();
        void this.pump();
      },
      closing: () => this.closing,
      authenticated: () => this.session.authenticated,
      grant: () => this.session.grant,
    });
    s.on('drain', () => this.idle?.refresh()); // the client reads: progress
    s.on('error', (err: Error) =>
      this.deps.log.debug({ err, client: this.session.addr }, 'resp socket error'),
    );
    s.on('close', () => {
      this.ticket.release();
      this.abort.abort(new Error('client closed the connection'));
      if (this.idle) clearTimeout(this.idle);
      this.onClose(this);
    });
    if (this.deps.limits.idleTimeoutMs > 0) {
      this.idle = setTimeout(() => this.onIdle(), this.deps.limits.idleTimeoutMs);
      this.idle.unref();
    }
  }

  /** ReplyOwner: since when a reply has waited for this client to read. */
  stalledSince(): number | null {
    return this.reply.waitingSince;
  }

  /**
   * Closes the connection to give its slot or reply memory to others. The
   * client is told why (`-ERR <message>`) when it would read that line as a
   * reply: not mid-value, and not when it has stopped reading anyway.
   */
  evict(message: string): void {
    if (this.socket.destroyed) return;
    this.closing = true;
    this.abort.abort(new Error(message));
    if (this.reply.midValue || this.socket.writableLength > 0) {
      this.socket.destroy();
      return;
    }
    this.reply.error(`ERR ${message}`);
    this.reply.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Server shutdown: idle connections go now, busy ones after their current command. */
  shutdown(): void {
    if (!this.running) this.socket.destroy();
    else this.closing = true;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private scopedFor: { grant: Grant; deps: RespDeps } | undefined;

  /** The deps this connection's token may use (see scope.ts), built once per grant. */
  private scoped(grant: Grant): RespDeps {
    if (this.scopedFor?.grant !== grant) this.scopedFor = { grant, deps: scopedDeps(this.deps, grant) };
    return this.scopedFor.deps;
  }

  private onIdle(): void {
    // A long command (WC.PREFETCH, a slow origin) is not idleness; a client that stopped
    // reading its replies is (no 'drain' for a whole period): it would hold a slot forever.
    if (this.running && !this.reply.waitingForReader) {
      this.idle?.refresh();
      return;
    }
    this.deps.metrics.rejectedConnections.inc({ reason: this.running ? 'stalled_reader' : 'idle' });
    this.socket.destroy();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let batch = 0;
    try {
      while (!this.closing) {
        let args: Buffer[] | null;
        try {
          args = this.input.next();
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          this.protocolError(err);
          return;
        }
        if (args === null) break;
        await this.execute(args);
        if (this.session.closeAfterReply) return this.endGracefully();
        if (this.reply.pressured) await this.reply.drained();
        if (++batch % BATCH_COMMANDS === 0) {
          // A long pipeline of cheap commands must not starve every other connection.
          this.reply.flush();
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      this.reply.flush();
      if (this.closing)
        this.endGracefully(); // shutdown: the replies already sent still reach the client
      else this.input.settle(); // only an incomplete command is left: reading goes on
    } catch (err) {
      this.deps.log.warn({ err, client: this.session.addr }, 'resp connection failed');
      this.socket.destroy();
    } finally {
      this.running = false;
      this.idle?.refresh();
    }
  }

  private protocolError(err: ProtocolError): void {
    this.deps.metrics.protocolErrors.inc({ reason: err.reason });
    // debug, not info: a hostile client must not be able to flood the log (the metric counts them).
    this.deps.log.debug(
      { client: this.session.addr, reason: err.reason },
      `resp protocol error: ${err.message}`,
    );
    this.reply.error(`ERR Protocol error: ${err.message}`);
    this.endGracefully();
  }

  /** Sends what is pending, then closes; input is read and dropped meanwhile so the reply is not lost to a reset. */
  private endGracefully(): void {
    if (this.socket.writableEnded) return;
    this.closing = true;
    this.reply.flush();
    this.input.discard();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private async execute(args: Buffer[]): Promise<void> {
    const { reply, session, deps } = this;
    const raw = args[0]!;
    const name = raw.length <= MAX_NAME_SHOWN ? raw.toString('utf8').toLowerCase() : '';
    const spec = COMMANDS.get(name);
    if (!session.authenticated && !spec?.noAuth) {
      reply.error('NOAUTH Authentication required.');
      return;
    }
    if (!spec) {
      reply.error(unknownCommand(args));
      return;
    }
    if ((spec.arity > 0 && args.length !== spec.arity) || args.length < -spec.arity) {
      reply.error(`ERR wrong number of arguments for '${spec.name}' command`);
      return;
    }
    const m = deps.metrics.base;
    const done = m.requestDuration.startTimer({ protocol: 'resp' });
    const errorsBefore = reply.errors;
    let result = 'ok';
    // The key only (never other arguments: AUTH and HELLO carry passwords).
    const key = spec.firstKey > 0 ? args[spec.firstKey] : undefined;
    const record = deps.access?.open(
      spec.name.toUpperCase(),
      key ? key.subarray(0, 1024).toString('utf8') : '',
      session.addr,
    );
    try {
      const scoped = session.grant ? this.scoped(session.grant) : deps;
      const ctx = { args, reply, session, deps: scoped, signal: this.abort.signal, owner: this };
      await (record ? deps.access!.within(record, () => spec.run(ctx)) : spec.run(ctx));
      if (session.authenticated) this.ticket.authenticated();
      if (reply.errors !== errorsBefore) result = 'client_error';
    } catch (err) {
      if (this.abort.signal.aborted) {
        // The client went away, or was closed to make room: nobody to answer, and nothing
        // went wrong here worth a warning (a hostile client must not be able to flood the log).
        deps.log.debug(
          { err, client: session.addr, command: spec.name },
          'resp command ended with its connection',
        );
        m.requests.inc({ protocol: 'resp', result: 'client_error' });
        this.closing = true;
        return;
      }
      if (err instanceof ReplyBroken) {
        // Half a value went out: nothing can be appended that the client would parse right.
        deps.log.warn({ err: err.cause, client: session.addr, command: spec.name }, err.message);
        m.requests.inc({ protocol: 'resp', result: 'server_error' });
        this.closing = true;
        this.socket.destroy();
        return;
      }
      const e = CacheError.from(err);
      const client = isClientError(e.code);
      result = client ? 'client_error' : 'server_error';
      if (!client) deps.log.warn({ code: e.code, err: e.cause ?? e, command: spec.name }, e.message);
      reply.error(respErrorOf(e.code, e.message));
    } finally {
      done();
      deps.access?.close(record, {
        status:
          reply.errors !== errorsBefore ? reply.lastErrorCode : this.abort.signal.aborted ? 'ABORTED' : 'OK',
      });
    }
    m.requests.inc({ protocol: 'resp', result });
  }
}

/** Redis 7's wording: the name and the first arguments, cut to about 128 characters. */
function unknownCommand(args: Buffer[]): string {
  const cut = (b: Buffer, n: number) => b.subarray(0, Math.max(0, n)).toString('utf8');
  let shown = '';
  for (let i = 1; i < args.length && shown.length < 128; i++)
    shown += `'${cut(args[i]!, 128 - shown.length)}' `;
  return `ERR unknown command '${cut(args[0]!, MAX_NAME_SHOWN)}', with args beginning with: ${shown}`;
}
