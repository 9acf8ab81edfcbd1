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

export type EventGridDelivery =
  /** Event Grid schema handshake: answer 200 {"validationResponse": validationCode}. */
  | { kind: 'validation'; validationCode?: string; validationUrl?: string }
  /** CloudEvents abuse protection (OPTIONS): answer 200 with `WebHook-Allowed-Origin: origin`. */
  | { kind: 'cloudevents-handshake'; origin: string }
  /**
   * Names to invalidate, in delivery order, not deduplicated (the same name
   * may appear more than once; the invalidation re-resolves at the origin, so
   * only the set of names matters). `ignored` counts events of other types.
   */
  | { kind: 'events'; invalidations: BlobInvalidation[]; ignored: number };

export type HeaderLookup = (name: string) => string | undefined;

/**
 * Parses one delivery. `body` is the parsed JSON (see parseEventBody), or
 * undefined for the CloudEvents OPTIONS handshake, which is recognised by its
 * `WebHook-Request-Origin` header (CloudEvents HTTP webhook spec §4) on a
 * request without a body. Throws CacheError('BAD_REQUEST') on anything malformed: a blob
 * event whose subject is not a blob path, or whose container or key the cache
 * would refuse (validateContainer / validateKey), fails the whole delivery,
 * as does a validation event mixed with other events.
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
    invalidations.push(...blobInvalidations(ev, kind, i));
  }
  return { kind: 'events', invalidations, ignored };
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
  subject: string | undefined;
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
  const subject = field(raw, 'subject');
  if (subject !== undefined && typeof subject !== 'string')
    throw bad(`event ${i}: "subject" is not a string`);
  return { schema, type, subject, data: field(raw, 'data') };
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

function blobInvalidations(ev: ParsedEvent, kind: 'created' | 'deleted', i: number): BlobInvalidation[] {
  if (ev.subject === undefined) throw bad(`event ${i} (${ev.type}) has no "subject"`);
  const m = SUBJECT_RE.exec(ev.subject);
  if (!m) {
    throw bad(
      `event ${i} (${ev.type}): subject ${JSON.stringify(ev.subject.slice(0, 200))} is not ` +
        `'/blobServices/default/containers/{container}/blobs/{key}'`,
    );
  }
  const container = checked(() => validateContainer(m[1]!), i, 'container');
  const key = checked(() => validateKey(m[2]!), i, 'key');
  const etag = kind === 'created' ? etagOf(ev.data, i) : undefined;
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

function checked(fn: () => string, i: number, what: string): string {
  try {
    return fn();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CacheError('BAD_REQUEST', `event ${i}: ${what} in subject is not acceptable: ${reason}`, {
      cause: err,
    });
  }
}

function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
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

function etagOf(data: unknown, i: number): string | undefined {
  if (data === undefined || data === null) return undefined;
  if (!isRecord(data)) throw bad(`event ${i}: "data" is not an object`);
  const raw = optionalString(data, 'eTag', i, MAX_ETAG_LENGTH);
  if (raw === undefined) return undefined;
  // Microsoft's own samples show both "0x8D…" and "\"0x8D…\""; the Azure
  // origin keeps ETags unquoted, so compare like with like.
  const etag = raw.replace(/^W\//, '').replace(/^"(.*)"$/s, '$1');
  if (etag.length === 0 || /[\u0000-\u001f\u007f"]/.test(etag)) {
    throw bad(`event ${i}: "eTag" ${JSON.stringify(raw.slice(0, 100))} is not an ETag`);
  }
  return etag;
}
