/**
 * The input side of `POST /v1/events/azure`: turns an Azure Event Grid
 * delivery (Event Grid schema or CloudEvents 1.0, one event or a batch) into
 * the names to invalidate. Pure: no I/O, no clock; the HTTP route (auth, body
 * size, the answer) and the invalidation itself live elsewhere.
 *
 * Everything here is untrusted input, so every failure is a CacheError
 * ('BAD_REQUEST' naming the event and what was wrong, 'TOO_LARGE' for an
 * oversized body) and never anything else: the route maps codes to statuses
 * in one place, and a TypeError from a hostile body would become a 500 that
 * Event Grid retries for a day.
 *
 * Two kinds of bad input are told apart. A delivery that is not one at all
 * (not JSON, not an event array or CloudEvent, too many events, an event that
 * is not an object or has no type) fails whole. A well-formed blob event whose
 * subject names no blob the cache could hold (not a blob path, a container or
 * key validateContainer / validateKey refuse) is *skipped* and reported: Event
 * Grid never retries a 400, so failing the delivery would lose every other
 * event of its batch for the sake of a name that cannot be cached anyway.
 */
import { CacheError } from '../errors/cache-error.js';
import { validateContainer, validateKey } from '../origin/names.js';

/**
 * The most events one delivery may hold: Event Grid's own ceiling for
 * `maxEventsPerBatch` (1..5000), so a legitimate delivery never hits it.
 */
export const MAX_EVENTS_PER_DELIVERY = 5000;

/**
 * The most body bytes the route should read before parsing. Event Grid sends
 * batches of at most `preferredBatchSizeInKilobytes` (≤ 1024 KiB) but a single
 * event of up to 1 MB goes out alone even when larger than that, so 1 MiB plus
 * room for the batch's JSON framing is what a real delivery can reach.
 */
export const MAX_EVENT_DELIVERY_BYTES = 1024 * 1024 + 64 * 1024;

/** Header values we echo back (handshake origin) are bounded and plain so they cannot split a response. */
const MAX_ORIGIN_LENGTH = 255;
const ORIGIN_RE = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/;
const MAX_VALIDATION_FIELD_LENGTH = 4096;
const MAX_ETAG_LENGTH = 256;

export const EVENT_TYPE_SUBSCRIPTION_VALIDATION = 'Microsoft.EventGrid.SubscriptionValidationEvent';
export const EVENT_TYPE_BLOB_CREATED = 'Microsoft.Storage.BlobCreated';
export const EVENT_TYPE_BLOB_DELETED = 'Microsoft.Storage.BlobDeleted';

export interface BlobInvalidation {
  container: string;
  key: string;
  event: 'created' | 'deleted';
  /** The blob's new ETag (quotes stripped, as the Azure origin keeps them); absent on deletes. */
  etag?: string;
}

/** A blob event that names nothing the cache could hold: left out, reported, and counted by the route. */
export interface SkippedEvent {
  /** Position in the delivery (0 for a single CloudEvent). */
  index: number;
  type: string;
  /** What was wrong, naming the event, e.g. `event 3 (Microsoft.Storage.BlobCreated): key in subject …`. */
  reason: string;
}

export type EventGridDelivery =
  /** Event Grid schema handshake: answer 200 {"validationResponse": validationCode}. */
  | { kind: 'validation'; validationCode?: string; validationUrl?: string }
  /** CloudEvents abuse protection (OPTIONS): answer 200 with `WebHook-Allowed-Origin: origin`. */
  | { kind: 'cloudevents-handshake'; origin: string }
  /**
   * Names to invalidate, in delivery order, not deduplicated (the same name
   * may appear more than once; the invalidation re-resolves at the origin, so
   * only the set of names matters). `ignored` counts events of other types;
   * `skipped` lists the blob events whose subject names no acceptable blob.
   */
  | { kind: 'events'; invalidations: BlobInvalidation[]; ignored: number; skipped: SkippedEvent[] };

export type HeaderLookup = (name: string) => string | undefined;

/**
 * Parses one delivery. `body` is the parsed JSON (see parseEventBody), or
 * undefined for the CloudEvents OPTIONS handshake, which is recognised by its
 * `WebHook-Request-Origin` header (CloudEvents HTTP webhook spec §4) on a
 * request without a body. Throws CacheError('BAD_REQUEST') on a malformed
 * delivery (see the top of this file), including a validation event mixed with
 * other events. A blob event whose subject is missing, not a blob path, or
 * names a container or key the cache would refuse is skipped and listed in
 * `skipped`; an unusable `data.eTag` (informational only) is dropped.
 */
export function parseEventGridDelivery(body: unknown, headers: HeaderLookup): EventGridDelivery {
  // Only a body-less request (the OPTIONS) is a handshake: a POST carrying
  // the header and events must not have its events answered 200 and dropped.
  const origin = headers('webhook-request-origin');
  if (origin !== undefined && body === undefined) {
    return { kind: 'cloudevents-handshake', origin: checkOrigin(origin) };
  }

  const events = eventsOf(body);
  const invalidations: BlobInvalidation[] = [];
  const skipped: SkippedEvent[] = [];
  let ignored = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = parseEvent(events[i], i);
    if (ev.type === EVENT_TYPE_SUBSCRIPTION_VALIDATION) {
      // Event Grid sends the validation event alone; one hidden in a batch of
      // blob events is not something Azure produces, so refuse to guess.
      if (events.length !== 1) {
        throw bad(`event ${i}: ${EVENT_TYPE_SUBSCRIPTION_VALIDATION} must be the only event of its delivery`);
      }
      return validationOf(ev.data, i);
    }
    const kind =
      ev.type === EVENT_TYPE_BLOB_CREATED
        ? 'created'
        : ev.type === EVENT_TYPE_BLOB_DELETED
          ? 'deleted'
          : null;
    if (kind === null) {
      ignored++;
      continue;
    }
    const got = blobInvalidations(ev, kind, i);
    if (typeof got === 'string') skipped.push({ index: i, type: ev.type, reason: got });
    else invalidations.push(...got);
  }
  return { kind: 'events', invalidations, ignored, skipped };
}

/**
 * JSON-parses a body the route has read, bounded by MAX_EVENT_DELIVERY_BYTES.
 * Kept apart from parseEventGridDelivery so that the route can refuse an
 * oversized body before buffering it all, and so that tests can hand over
 * already-parsed values.
 */
export function parseEventBody(raw: Uint8Array | string): unknown {
  const bytes = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.byteLength;
  if (bytes > MAX_EVENT_DELIVERY_BYTES) {
    throw new CacheError(
      'TOO_LARGE',
      `event delivery is ${bytes} bytes, more than ${MAX_EVENT_DELIVERY_BYTES}`,
    );
  }
  const text =
    typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CacheError('BAD_REQUEST', `event delivery is not JSON: ${(err as Error).message}`);
  }
}

/** The JSON body answering an Event Grid schema validation event. */
export function validationResponseBody(delivery: { validationCode?: string }): {
  validationResponse: string;
} {
  return { validationResponse: delivery.validationCode ?? '' };
}

/** The headers answering the CloudEvents OPTIONS handshake. */
export function handshakeResponseHeaders(delivery: { origin: string }): Record<string, string> {
  return { 'WebHook-Allowed-Origin': delivery.origin };
}

// --- internals ---------------------------------------------------------------

interface ParsedEvent {
  schema: 'eventgrid' | 'cloudevents';
  type: string;
  /** Checked only where it is used (blob events), so that a bad one skips that event alone. */
  subject: unknown;
  data: unknown;
}

function bad(message: string): CacheError {
  return new CacheError('BAD_REQUEST', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own properties only: a body's "__proto__" or "constructor" must never reach Object.prototype. */
function field(obj: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

function checkOrigin(origin: string): string {
  const o = origin.trim();
  if (o.length === 0 || o.length > MAX_ORIGIN_LENGTH || !ORIGIN_RE.test(o)) {
    throw bad(`WebHook-Request-Origin ${JSON.stringify(origin.slice(0, 100))} is not a host name`);
  }
  return o;
}

function eventsOf(body: unknown): unknown[] {
  let events: unknown[];
  if (Array.isArray(body)) {
    events = body;
  } else if (isRecord(body) && field(body, 'specversion') !== undefined) {
    // CloudEvents structured mode, one event (application/cloudevents+json).
    // The Event Grid schema is always an array, so a lone object must be a CloudEvent.
    events = [body];
  } else {
    throw bad(`event delivery must be a JSON array of events (or one CloudEvent), got ${describe(body)}`);
  }
  if (events.length === 0) throw bad('event delivery holds no events');
  if (events.length > MAX_EVENTS_PER_DELIVERY) {
    throw bad(`event delivery holds ${events.length} events, more than ${MAX_EVENTS_PER_DELIVERY}`);
  }
  return events;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (isRecord(v)) return 'an object without "specversion"';
  return typeof v;
}

function parseEvent(raw: unknown, i: number): ParsedEvent {
  if (!isRecord(raw)) throw bad(`event ${i} is ${describe(raw)}, not an object`);
  const specversion = field(raw, 'specversion');
  const schema = specversion !== undefined ? 'cloudevents' : 'eventgrid';
  if (schema === 'cloudevents' && specversion !== '1.0') {
    throw bad(`event ${i}: specversion ${JSON.stringify(specversion)} is not "1.0"`);
  }
  const typeField = schema === 'cloudevents' ? 'type' : 'eventType';
  const type = field(raw, typeField);
  if (typeof type !== 'string' || type.length === 0) throw bad(`event ${i} has no "${typeField}" string`);
  return { schema, type, subject: field(raw, 'subject'), data: field(raw, 'data') };
}

function validationOf(data: unknown, i: number): EventGridDelivery {
  if (!isRecord(data)) throw bad(`event ${i}: validation event has no "data" object`);
  const code = optionalString(data, 'validationCode', i, MAX_VALIDATION_FIELD_LENGTH);
  const url = optionalString(data, 'validationUrl', i, MAX_VALIDATION_FIELD_LENGTH);
  // Without either the subscription can never be validated: tell the operator now.
  if (code === undefined && url === undefined) {
    throw bad(`event ${i}: validation event carries neither "validationCode" nor "validationUrl"`);
  }
  return {
    kind: 'validation',
    ...(code !== undefined ? { validationCode: code } : {}),
    ...(url !== undefined ? { validationUrl: url } : {}),
  };
}

function optionalString(
  obj: Record<string, unknown>,
  name: string,
  i: number,
  max: number,
): string | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`event ${i}: "${name}" is not a string`);
  if (v.length > max) throw bad(`event ${i}: "${name}" is longer than ${max} characters`);
  return v;
}

/**
 * `/blobServices/default/containers/{container}/blobs/{blob name}`. The
 * leading '/' is what Storage sends; Microsoft's CloudEvents sample omits it,
 * so it is optional. The container cannot hold '/', the blob name runs to the
 * end and may.
 */
const SUBJECT_RE = /^\/?blobServices\/default\/containers\/([^/]+)\/blobs\/(.+)$/s;

/** The names a blob event invalidates, or why it must be skipped. */
function blobInvalidations(
  ev: ParsedEvent,
  kind: 'created' | 'deleted',
  i: number,
): BlobInvalidation[] | string {
  const what = `event ${i} (${ev.type})`;
  if (ev.subject === undefined) return `${what} has no "subject"`;
  if (typeof ev.subject !== 'string') return `${what}: "subject" is not a string`;
  const m = SUBJECT_RE.exec(ev.subject);
  if (!m) {
    return (
      `${what}: subject ${JSON.stringify(ev.subject.slice(0, 200))} is not ` +
      `'/blobServices/default/containers/{container}/blobs/{key}'`
    );
  }
  const container = m[1]!;
  const key = m[2]!;
  const containerRefusal = refusal(() => validateContainer(container));
  if (containerRefusal !== undefined) {
    return `${what}: container in subject is not acceptable: ${containerRefusal}`;
  }
  const keyRefusal = refusal(() => validateKey(key));
  if (keyRefusal !== undefined) return `${what}: key in subject is not acceptable: ${keyRefusal}`;
  const etag = kind === 'created' ? etagOf(ev.data) : undefined;
  const one = (k: string): BlobInvalidation => ({
    container,
    key: k,
    event: kind,
    ...(etag !== undefined ? { etag } : {}),
  });
  const out = [one(key)];
  // Storage puts the blob name into the subject as it is (Microsoft documents
  // no escaping, and names with emoji show up raw), while data.url is
  // percent-encoded. A name holding '%XX' is therefore ambiguous to us: it is
  // either that literal name or, if some producer did escape it, the decoded
  // one. Invalidating a name that is not cached only costs one origin stat,
  // while missing the right one leaves it stale for a lease term, so we
  // invalidate both. A decoded form the cache would refuse cannot be cached,
  // so it is dropped rather than failing the delivery.
  const decoded = percentDecoded(key);
  if (decoded !== undefined && decoded !== key && isValidKey(decoded)) out.push(one(decoded));
  return out;
}

/** Why `check` refuses, or undefined when it accepts. */
function refusal(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function isValidKey(key: string): boolean {
  return refusal(() => validateKey(key)) === undefined;
}

function percentDecoded(key: string): string | undefined {
  if (!/%[0-9A-Fa-f]{2}/.test(key)) return undefined;
  try {
    return decodeURIComponent(key);
  } catch {
    // Not valid UTF-8 once decoded, so it was never an escaped name.
    return undefined;
  }
}

/**
 * `data.eTag`, unquoted, or undefined when absent or unusable. It is only
 * informational (the home re-resolves at the origin whatever the event says),
 * so a bad one is dropped: it must cost neither this name's invalidation nor
 * the rest of the delivery.
 */
function etagOf(data: unknown): string | undefined {
  if (!isRecord(data)) return undefined;
  const raw = field(data, 'eTag');
  if (typeof raw !== 'string' || raw.length > MAX_ETAG_LENGTH) return undefined;
  // Microsoft's own samples show both "0x8D…" and "\"0x8D…\""; the Azure
  // origin keeps ETags unquoted, so compare like with like.
  const etag = raw.replace(/^W\//, '').replace(/^"(.*)"$/s, '$1');
  if (etag.length === 0 || /[\u0000-\u001f\u007f"]/.test(etag)) return undefined;
  return etag;
}
