/**
 * A front door for an existing client protocol (S3, Azure Blob, the Hugging
 * Face Hub), mounted on the HTTP port under its path and optionally on a
 * listener of its own at the root. A door translates its protocol onto the
 * object read and listings below it (src/read/) and maps every failure to its
 * protocol's error format in one place; it authenticates its own requests
 * (signatures, its protocol's token header), so the bearer middleware skips
 * its path.
 */
import type { Context, Hono } from 'hono';
import type { HttpEnv } from './objects.js';
import { BodyAborted } from './send-read.js';

export interface Door {
  /** 's3' | 'azure' | 'hub' */
  readonly name: string;
  /** The path it answers under on the shared HTTP port, e.g. '/s3'. */
  readonly path: string;
  /** Its own listener, where it answers at the root; null: none. */
  readonly listen: { readonly host: string; readonly port: number } | null;
  /** Routes every request under `prefix` ('' on its own listener) to the door. */
  mount(app: Hono<HttpEnv>, prefix: string): void;
}

/**
 * A door from its protocol's two halves: `handle` answers a request under
 * `prefix` ('' on the door's own listener), `answerError` turns whatever it
 * threw before the status line into the protocol's error answer.
 */
export function makeDoor(
  name: string,
  where: { readonly path: string; readonly listen: Door['listen'] },
  handle: (prefix: string, c: Context<HttpEnv>) => Promise<Response>,
  answerError: (c: Context<HttpEnv>, err: unknown) => Response,
): Door {
  return {
    name,
    path: where.path,
    listen: where.listen,
    mount(app, prefix) {
      mountAll(
        app,
        prefix,
        doorHandler((c) => handle(prefix, c), answerError),
      );
    },
  };
}

/** Registers `handler` for every method on `prefix` and below. */
function mountAll(
  app: Hono<HttpEnv>,
  prefix: string,
  handler: (c: Context<HttpEnv>) => Promise<Response>,
): void {
  if (prefix === '') {
    app.all('*', handler);
    return;
  }
  app.all(prefix, handler);
  app.all(`${prefix}/*`, handler);
}

/**
 * Wraps a door's handler: whatever it throws before the status line goes to
 * the door's own error answer; after it, the connection is cut (a short body
 * is the only honest signal left) and the failure logged by the server.
 */
function doorHandler(
  handle: (c: Context<HttpEnv>) => Promise<Response>,
  answerError: (c: Context<HttpEnv>, err: unknown) => Response,
) {
  return async (c: Context<HttpEnv>): Promise<Response> => {
    try {
      return await handle(c);
    } catch (err) {
      if (err instanceof BodyAborted || c.env.outgoing.headersSent) throw err;
      return answerError(c, err);
    }
  };
}
