/**
 * The HTTP entry points of invalidation (docs/coherence.md, "Invalidation"):
 *
 *   POST    /v1/invalidate    {"container", "key"} | {"container", "prefix"}
 *   POST    /v1/events/azure  an Azure Event Grid delivery (docs/event-grid.md)
 *   OPTIONS /v1/events/azure  the CloudEvents abuse-protection handshake
 *
 * Both answer only once the invalidation completed (the coherence layer's
 * promise resolved), so a 200 means that no new read anywhere gets the old
 * version. Both need an admin token, checked here as well as in the auth
 * middleware; the webhook's two handshakes are answered without one (Azure
 * may send them without its delivery headers; they reveal nothing and start
 * no work).
 */
import type { Context, Hono } from 'hono';
import { Counter } from 'prom-client';
import type { Grant, TokenSet } from '../auth/tokens.js';
import {
  type BlobInvalidation,
  handshakeResponseHeaders,
  MAX_EVENT_DELIVERY_BYTES,
  parseEventBody,
  parseEventGridDelivery,
  validationResponseBody,
} from '../coherence/event-grid.js';
import type { Invalidate, InvalidationSource, InvalidationTarget } from '../coherence/invalidation.js';

import { CacheError } from '../errors/cache-error.js';
import { settleBounded } from '../fill/pool.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { formatName, validateContainer, validateKey } from '../origin/names.js';
import type { ObjectName } from '../origin/origin.js';
import { bearerGrant, EVENTS_AZURE_PATH, notAdmin, requireAdmin, unauthorized } from './auth.js';
import type { HttpEnv } from './objects.js';

export const INVALIDATE_PATH = '/v1/invalidate';
/** A `{container, key}` body: a 1 KiB key plus JSON escaping fits many times over. */
export const MAX_INVALIDATE_BODY_BYTES = 16 * 1024;
/**
 * What the webhook reads from a caller without an admin token: enough for the
 * subscription validation event (code and URL of at most 4096 characters
 * each), so that an anonymous caller cannot make the node buffer and parse a
 * full 1 MiB delivery.
 */
export const MAX_ANONYMOUS_EVENT_BYTES = 16 * 1024;
/** Invalidations of one Event Grid delivery in flight at once. */
export const EVENT_INVALIDATION_CONCURRENCY = 16;
/** Skipped events named in one warning line (the counter has them all). */
const MAX_SKIPS_LOGGED = 10;

export const EVENTS_SKIPPED_METRIC = 'weightcache_eventgrid_events_skipped_total';

export interface InvalidateRouteDeps {
  readonly invalidate: Invalidate;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The HTTP door's tokens; null: no auth. */
  readonly tokens: TokenSet | null;
  readonly concurrency?: number;
}

export function invalidateRoutes(app: Hono<HttpEnv>, d: InvalidateRouteDeps): void {
  const skippedEvents = skippedCounter(d.metrics);
  const width = Math.max(1, d.concurrency ?? EVENT_INVALIDATION_CONCURRENCY);

  app.post(INVALIDATE_PATH, async (c) => {
    requireAdmin(c, d.tokens, INVALIDATE_PATH);
    const target = parseInvalidateBody(
      (await readBody(c, MAX_INVALIDATE_BODY_BYTES, tooLarge)).toString('utf8'),
    );
    const source: InvalidationSource =
      c.req.header('x-weightcache-source')?.trim().toLowerCase() === 'cli' ? 'cli' : 'http';
    const signal = clientGone(c);
    const result = await withoutIdleTimeout(c, () => d.invalidate(target, source, signal));
    return c.json(result, 200);
  });

  app.options(EVENTS_AZURE_PATH, (c) => {
    if (c.req.header('webhook-request-origin') === undefined) {
      throw new CacheError(
        'BAD_REQUEST',
        `OPTIONS ${EVENTS_AZURE_PATH} is the CloudEvents abuse-protection handshake: it needs a WebHook-Request-Origin header`,
      );
    }
    const delivery = parseEventGridDelivery(undefined, (name) => c.req.header(name));
    if (delivery.kind !== 'cloudevents-handshake') throw new CacheError('INTERNAL', 'expected a handshake');
    d.log.info({ origin: delivery.origin }, 'event grid: CloudEvents handshake answered');
    return c.body(null, 200, handshakeResponseHeaders(delivery));
  });

  app.post(EVENTS_AZURE_PATH, async (c) => {
    const grant = grantOf(c, d.tokens);
    const admin = !d.tokens || grant?.admin === true;
    // Anything but a handshake needs an admin token; the answer to a caller
    // without one is the same 401/403 whatever its body held.
    const denied = () => (d.tokens && !grant ? unauthorized(c) : notAdmin(EVENTS_AZURE_PATH));
    let delivery: ReturnType<typeof parseEventGridDelivery>;
    try {
      const limit = admin ? MAX_EVENT_DELIVERY_BYTES : MAX_ANONYMOUS_EVENT_BYTES;
      const raw = await readBody(c, limit, (size) =>
        admin ? new CacheError('TOO_LARGE', `event delivery ${size}`) : denied(),
      );
      delivery = parseEventGridDelivery(parseEventBody(raw), (name) => c.req.header(name));
    } catch (err) {
      throw admin ? err : denied();
    }
    if (delivery.kind === 'validation') {
      d.log.info('event grid: subscription validation answered');
      return c.json(validationResponseBody(delivery), 200);
    }
    if (delivery.kind !== 'events') throw new CacheError('INTERNAL', 'a POST is never a handshake');
    if (!admin) throw denied();

    const { skipped, ignored } = delivery;
    if (skipped.length > 0) {
      skippedEvents.inc(skipped.length);
      d.log.warn(
        { skipped: skipped.length, reasons: skipped.slice(0, MAX_SKIPS_LOGGED).map((s) => s.reason) },
        'event grid: skipped blob events that name no blob the cache can hold',
      );
    }
    const targets = distinct(delivery.invalidations);
    const started = Date.now();
    const signal = clientGone(c);
    const failures = await withoutIdleTimeout(c, () =>
      settleBounded(targets, width, (t) => d.invalidate(t, 'eventgrid', signal)),
    );
    if (failures.length > 0) {
      const first = failures[0]!;
      const e = CacheError.from(first.err);
      d.log.warn(
        { failed: failures.length, of: targets.length, code: e.code, err: e.cause ?? e },
        'event grid: delivery failed; Event Grid will retry it',
      );
      // 503 whatever the cause: Event Grid retries it (not a 4xx), and the
      // invalidations are idempotent.
      return c.json(
        {
          code: e.code,
          message: `${failures.length} of ${targets.length} invalidations failed (${formatName(first.item)}: ${e.message})`,
        },
        503,
      );
    }
    d.log.info(
      { invalidated: targets.length, ignored, skipped: skipped.length, ms: Date.now() - started },
      'event grid: delivery invalidated',
    );
    return c.json({ invalidated: targets.length, ignored, skipped: skipped.length }, 200);
  });
}

/** Parses `{"container", "key"}` or `{"container", "prefix"}`, naming the field at fault. */
export function parseInvalidateBody(text: string): InvalidationTarget {
  const shape = '{"container": "...", "key": "..."} or {"container": "...", "prefix": "..."}';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CacheError('BAD_REQUEST', `body must be JSON: ${shape}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new CacheError('BAD_REQUEST', `body must be a JSON object: ${shape}`);
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => k !== 'container' && k !== 'key' && k !== 'prefix');
  if (unknown.length > 0) {
    const names = unknown
      .slice(0, 5)
      .map((k) => JSON.stringify(k.slice(0, 50)))
      .join(', ');
    throw new CacheError(
      'BAD_REQUEST',
      `unknown field${unknown.length > 1 ? 's' : ''} ${names}${unknown.length > 5 ? ', …' : ''}: expected ${shape}`,
    );
  }
  const { container, key, prefix } = fields;
  if (container === undefined) throw new CacheError('BAD_REQUEST', '"container" is missing');
  if (typeof container !== 'string') throw new CacheError('BAD_REQUEST', '"container" must be a string');
  if (key !== undefined && prefix !== undefined) {
    throw new CacheError('BAD_REQUEST', 'give either "key" or "prefix", not both');
  }
  if (key === undefined && prefix === undefined) {
    throw new CacheError(
      'BAD_REQUEST',
      '"key" or "prefix" is missing (a prefix of "" invalidates the whole container)',
    );
  }
  validateContainer(container);
  if (key !== undefined) {
    if (typeof key !== 'string') throw new CacheError('BAD_REQUEST', '"key" must be a string');
    return { container, key: validateKey(key) };
  }
  if (typeof prefix !== 'string') throw new CacheError('BAD_REQUEST', '"prefix" must be a string');
  return { container, prefix: validateKey(prefix, { allowEmpty: true, what: 'prefix' }) };
}

function tooLarge(size: string): CacheError {
  return new CacheError('TOO_LARGE', `request body ${size}`);
}

function grantOf(c: Context<HttpEnv>, tokens: TokenSet | null): Grant | undefined {
  return tokens ? bearerGrant(c, tokens) : undefined;
}

/**
 * Reads the body, at most `limit` bytes: a Content-Length over it is refused
 * before a byte is read, and a chunked body as soon as it passes the limit.
 * `refuse` gets the size as far as known, e.g. "of 20000 bytes is more than 16384 bytes".
 */
async function readBody(
  c: Context<HttpEnv>,
  limit: number,
  refuse: (size: string) => CacheError,
): Promise<Buffer> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) {
    // The rest of the body is not read: the connection cannot be reused.
    c.header('Connection', 'close');
    throw refuse(`of ${declared} bytes is more than ${limit} bytes`);
  }
  const body = c.req.raw.body;
  if (!body) return Buffer.alloc(0);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    size += part.length;
    if (size > limit) {
      c.header('Connection', 'close');
      throw refuse(`is more than ${limit} bytes`);
    }
    parts.push(part);
  }
  return Buffer.concat(parts, size);
}

/** A signal aborted when the client goes away before its answer was sent. */
function clientGone(c: Context<HttpEnv>): AbortSignal {
  const ac = new AbortController();
  const res = c.env.outgoing;
  res.once('close', () => {
    if (!res.writableFinished) ac.abort(new CacheError('BAD_REQUEST', 'the client closed the connection'));
  });
  return ac.signal;
}

/**
 * An invalidation may wait out a lease term (an unreachable holder), longer
 * than http.idleTimeout: the connection is not idle while it runs, so its
 * idle timer is off until the answer is ready.
 */
async function withoutIdleTimeout<T>(c: Context<HttpEnv>, work: () => Promise<T>): Promise<T> {
  const socket = c.env.incoming.socket;
  const idle = socket.timeout ?? 0;
  socket.setTimeout(0);
  try {
    return await work();
  } finally {
    if (!socket.destroyed) socket.setTimeout(idle);
  }
}

/** Each (container, key) once, in first-seen order: the invalidation re-resolves, so only the set matters. */
function distinct(all: readonly BlobInvalidation[]): ObjectName[] {
  const seen = new Map<string, ObjectName>();
  for (const i of all) {
    const id = formatName(i);
    if (!seen.has(id)) seen.set(id, { container: i.container, key: i.key });
  }
  return [...seen.values()];
}

/** The skipped-events counter, registered once per registry (buildApp may run more than once on one). */
function skippedCounter(m: Metrics): Counter {
  const existing = m.registry.getSingleMetric(EVENTS_SKIPPED_METRIC);
  if (existing) return existing as Counter;
  return new Counter({
    name: EVENTS_SKIPPED_METRIC,
    help: 'Azure Event Grid blob events skipped because their subject names no blob the cache can hold (invalid container or key)',
    registers: [m.registry],
  });
}
