/**
 * What a command handler sees, and what the command table holds about each
 * command (enough for COMMAND INFO / COMMAND DOCS, from the same source).
 */
import type { Grant, TokenSet } from '../../auth/tokens.js';
import type { Invalidate } from '../../coherence/invalidation.js';
import type { AccessLog } from '../../log/access.js';
import type { Logger } from '../../log/logger.js';
import type { Origin } from '../../origin/origin.js';
import type { PrefetchJobs } from '../../prefetch/jobs.js';
import type { ReadPath } from '../../read/read-path.js';
import type { AuthThrottle } from '../auth-throttle.js';
import type { RespLimits } from '../limits.js';
import type { RespMetrics } from '../metrics.js';
import type { ReplyWriter } from '../reply.js';
import type { ReplyMemory, ReplyOwner } from '../reply-memory.js';
import type { ScanCursors } from '../scan-cursors.js';

/** Per-connection state that commands read and change. */
export interface Session {
  readonly id: number;
  readonly addr: string;
  /** The client's address as the per-address limits count it (admission.ts addressKey). */
  readonly clientKey: string;
  readonly createdAt: number;
  name: string | null;
  libName: string | null;
  libVer: string | null;
  authenticated: boolean;
  /** What the token used with AUTH may read (null before AUTH, or with auth off). */
  grant: Grant | null;
  /** Failed AUTH attempts on this connection: each further one is answered more slowly. */
  authFailures: number;
  /** Set by QUIT: the connection ends after this reply is sent. */
  closeAfterReply: boolean;
}

/** What every connection of one server shares. */
export interface RespDeps {
  readonly readPath: ReadPath;
  readonly origin: Origin;
  readonly limits: RespLimits;
  /** Tokens AUTH accepts; null when no auth is configured (every client is authenticated). */
  readonly tokens: TokenSet | null;
  /** Whether HELLO 3 is accepted; false answers NOPROTO, as a RESP2-only Redis does. */
  readonly resp3: boolean;
  readonly metrics: RespMetrics;
  readonly log: Logger;
  /** One line per command (src/log/access.ts); absent: none. */
  readonly access?: AccessLog;
  readonly cursors: ScanCursors;
  readonly startedAt: number;
  readonly version: string;
  readonly port: () => number;
  readonly connectedClients: () => number;
  /** The coherence layer's invalidation (WC.INVALIDATE); null or absent: the command answers an error. */
  readonly invalidate?: Invalidate | null;
  /** Prefetch jobs (WC.PREFETCH), shared with HTTP's /v1/prefetch; absent: the command answers an error. */
  readonly prefetch?: PrefetchJobs | null;
  /** The bytes replies may hold, all connections together (reply-memory.ts). */
  readonly replyMemory: ReplyMemory;
  /** AUTH failures per client address (auth-throttle.ts). */
  readonly authThrottle: AuthThrottle;
}

export interface Ctx {
  /** args[0] is the command name as sent. */
  readonly args: readonly Buffer[];
  readonly reply: ReplyWriter;
  readonly session: Session;
  readonly deps: RespDeps;
  /** Aborted when the client goes away: origin work for it stops waiting. */
  readonly signal: AbortSignal;
  /** The connection, as a holder of reply memory. */
  readonly owner: ReplyOwner;
}

export interface CommandSpec {
  /** Lower-case name, as COMMAND reports it. */
  readonly name: string;
  /** Redis arity: N exactly N arguments (name included), -N at least N. */
  readonly arity: number;
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly summary: string;
  readonly group: string;
  /** Allowed before AUTH succeeds (AUTH, HELLO, QUIT...). */
  readonly noAuth?: boolean;
  run(ctx: Ctx): void | Promise<void>;
}

/** The argument as a string (command names, options, numbers). */
export function str(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('utf8');
}

/** Redis's string2ll: an optional '-' and digits, no spaces, no '+', within the int64 range JS can hold. */
export function parseInteger(b: Buffer | undefined): number | null {
  const s = str(b);
  if (!/^-?(0|[1-9]\d{0,17})$/.test(s)) return null;
  return Number(s);
}

export const NOT_INTEGER = 'ERR value is not an integer or out of range';
export const SYNTAX = 'ERR syntax error';
