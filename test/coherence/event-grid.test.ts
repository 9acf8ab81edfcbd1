import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  handshakeResponseHeaders,
  MAX_EVENT_DELIVERY_BYTES,
  MAX_EVENTS_PER_DELIVERY,
  parseEventBody,
  parseEventGridDelivery,
  validationResponseBody,
} from '../../src/coherence/event-grid.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { formatName } from '../../src/origin/names.js';
import { ceBlob, egBlobCreated, egBlobDeleted, sub, VALIDATION } from './event-grid-samples.js';

/** No headers: what a plain POST from Event Grid looks like to the parser. */
const noHeaders = () => undefined;

function headers(h: Record<string, string>) {
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  return (name: string) => lower[name.toLowerCase()];
}

function expectBadRequest(fn: () => unknown, message: RegExp) {
  try {
    fn();
  } catch (err) {
    expect(CacheError.is(err, 'BAD_REQUEST'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a BAD_REQUEST CacheError');
}

describe('parseEventGridDelivery: handshakes', () => {
  it('answers the Event Grid schema subscription validation with its code', () => {
    const d = parseEventGridDelivery(VALIDATION, headers({ 'aeg-event-type': 'SubscriptionValidation' }));
    expect(d).toEqual({
      kind: 'validation',
      validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
      validationUrl: VALIDATION[0]!.data.validationUrl,
    });
    expect(validationResponseBody(d as { validationCode?: string })).toEqual({
      validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
    });
  });

  it('refuses a validation event hidden among blob events, or one with nothing to answer', () => {
    expectBadRequest(
      () => parseEventGridDelivery([...VALIDATION, egBlobCreated(sub('models', 'a'))], noHeaders),
      /event 0: .*must be the only event/,
    );
    expectBadRequest(
      () => parseEventGridDelivery([{ ...VALIDATION[0], data: {} }], noHeaders),
      /neither "validationCode" nor "validationUrl"/,
    );
    expectBadRequest(
      () => parseEventGridDelivery([{ ...VALIDATION[0], data: { validationCode: 42 } }], noHeaders),
      /"validationCode" is not a string/,
    );
  });

  it('answers the CloudEvents abuse-protection OPTIONS with the requesting origin', () => {
    const d = parseEventGridDelivery(
      undefined,
      headers({ 'WebHook-Request-Origin': 'eventgrid.azure.net', 'WebHook-Request-Rate': '120' }),
    );
    expect(d).toEqual({ kind: 'cloudevents-handshake', origin: 'eventgrid.azure.net' });
    expect(handshakeResponseHeaders(d as { origin: string })).toEqual({
      'WebHook-Allowed-Origin': 'eventgrid.azure.net',
    });
  });

  it('does not take a POST with events for a handshake, whatever its headers', () => {
    const d = parseEventGridDelivery(
      [egBlobDeleted(sub('models', 'k'))],
      headers({ 'WebHook-Request-Origin': 'eventgrid.azure.net' }),
    );
    expect(d.kind).toBe('events');
  });

  it('refuses an origin that could split the response it is echoed into', () => {
    expectBadRequest(
      () =>
        parseEventGridDelivery(undefined, headers({ 'WebHook-Request-Origin': 'a.net\r\nSet-Cookie: x=1' })),
      /WebHook-Request-Origin .* is not a host name/,
    );
    expectBadRequest(
      () => parseEventGridDelivery(undefined, headers({ 'WebHook-Request-Origin': '' })),
      /not a host name/,
    );
  });
});

describe('parseEventGridDelivery: blob events', () => {
  it('turns an Event Grid schema BlobCreated into an invalidation with the unquoted ETag', () => {
    const d = parseEventGridDelivery(
      [egBlobCreated(sub('models', 'llama/model-00001.safetensors'))],
      noHeaders,
    );
    expect(d).toEqual({
      kind: 'events',
      invalidations: [
        {
          container: 'models',
          key: 'llama/model-00001.safetensors',
          event: 'created',
          etag: '0x8D4BCC2E4835CD0',
        },
      ],
      ignored: 0,
      skipped: [],
    });
  });

  it('turns BlobDeleted into an invalidation without an ETag', () => {
    const d = parseEventGridDelivery([egBlobDeleted(sub('models', 'old.bin'))], noHeaders);
    expect(d).toEqual({
      kind: 'events',
      invalidations: [{ container: 'models', key: 'old.bin', event: 'deleted' }],
      ignored: 0,
      skipped: [],
    });
  });

  it('reads a single CloudEvent (application/cloudevents+json) and a CloudEvents batch', () => {
    const one = parseEventGridDelivery(
      ceBlob('Microsoft.Storage.BlobCreated', sub('models', 'x')),
      noHeaders,
    );
    expect(one).toEqual({
      kind: 'events',
      invalidations: [{ container: 'models', key: 'x', event: 'created', etag: '0x8D76C39E4407333' }],
      ignored: 0,
      skipped: [],
    });
    const batch = parseEventGridDelivery(
      [
        ceBlob('Microsoft.Storage.BlobCreated', sub('models', 'a/b')),
        ceBlob('Microsoft.Storage.BlobDeleted', sub('models', 'c')),
      ],
      headers({ 'content-type': 'application/cloudevents-batch+json; charset=utf-8' }),
    );
    expect(batch).toEqual({
      kind: 'events',
      invalidations: [
        { container: 'models', key: 'a/b', event: 'created', etag: '0x8D76C39E4407333' },
        { container: 'models', key: 'c', event: 'deleted' },
      ],
      ignored: 0,
      skipped: [],
    });
  });

  it("accepts the subject without its leading '/', as in Microsoft's CloudEvents sample", () => {
    const d = parseEventGridDelivery(
      ceBlob('Microsoft.Storage.BlobCreated', 'blobServices/default/containers/models/blobs/new-file'),
      noHeaders,
    );
    expect(d.kind === 'events' && d.invalidations.map((i) => i.key)).toEqual(['new-file']);
  });

  it('keeps batch order and counts events of other types as ignored', () => {
    const d = parseEventGridDelivery(
      [
        egBlobCreated(sub('models', 'one')),
        { ...egBlobCreated(sub('models', 'tier')), eventType: 'Microsoft.Storage.BlobTierChanged' },
        egBlobDeleted(sub('tokenizers', 'two')),
        { ...egBlobCreated(sub('models', 'x')), eventType: 'Microsoft.Storage.AsyncOperationInitiated' },
        egBlobCreated(sub('models', 'one')),
      ],
      noHeaders,
    );
    expect(d.kind).toBe('events');
    if (d.kind !== 'events') return;
    expect(d.ignored).toBe(2);
    expect(d.invalidations.map((i) => `${i.event} ${formatName(i)}`)).toEqual([
      'created models/one',
      'deleted tokenizers/two',
      'created models/one',
    ]);
  });

  it('takes the key from the subject as it is, and also invalidates its percent-decoded form', () => {
    // Blob names reach the subject unescaped; '%20' is then either a literal
    // part of the name or an escape, and invalidating both is the safe choice.
    const d = parseEventGridDelivery([egBlobDeleted(sub('models', 'dir/my%20model ü.bin'))], noHeaders);
    expect(d.kind === 'events' && d.invalidations.map((i) => i.key)).toEqual([
      'dir/my%20model ü.bin',
      'dir/my model ü.bin',
    ]);
    // A '%' that is no escape yields the one literal name.
    const lit = parseEventGridDelivery([egBlobDeleted(sub('models', '100%-done'))], noHeaders);
    expect(lit.kind === 'events' && lit.invalidations.map((i) => i.key)).toEqual(['100%-done']);
  });

  it('never lets a decoded form smuggle in a name the cache refuses', () => {
    const d = parseEventGridDelivery([egBlobDeleted(sub('models', 'a/%2e%2e/b'))], noHeaders);
    expect(d.kind === 'events' && d.invalidations.map((i) => i.key)).toEqual(['a/%2e%2e/b']);
    const s = parseEventGridDelivery([egBlobDeleted(sub('models', 'a%2Fb'))], noHeaders);
    expect(s.kind === 'events' && s.invalidations.map((i) => i.key)).toEqual(['a%2Fb', 'a/b']);
  });
});

/** The reasons of a delivery's skipped events and the keys it invalidates; fails if it is not an events delivery. */
function skippedOf(body: unknown): { reasons: string[]; keys: string[] } {
  const d = parseEventGridDelivery(body, noHeaders);
  if (d.kind !== 'events') throw new Error(`expected events, got ${d.kind}`);
  return { reasons: d.skipped.map((s) => s.reason), keys: d.invalidations.map((i) => i.key) };
}

describe('parseEventGridDelivery: blob events naming no acceptable blob are skipped', () => {
  it('skips a subject that is not a blob path, is missing or is not a string', () => {
    const d = parseEventGridDelivery(
      [
        egBlobCreated('/blobServices/default/containers/models'),
        egBlobCreated('/fileServices/default/shares/s/files/f'),
        { ...egBlobCreated('x'), subject: undefined },
        { ...egBlobCreated('x'), subject: 7 },
        egBlobDeleted(sub('models', 'kept')),
      ],
      noHeaders,
    );
    expect(d).toEqual({
      kind: 'events',
      invalidations: [{ container: 'models', key: 'kept', event: 'deleted' }],
      ignored: 0,
      skipped: [
        {
          index: 0,
          type: 'Microsoft.Storage.BlobCreated',
          reason: expect.stringMatching(
            /^event 0 \(Microsoft.Storage.BlobCreated\): subject .* is not '\/blobServices/,
          ),
        },
        {
          index: 1,
          type: 'Microsoft.Storage.BlobCreated',
          reason: expect.stringMatching(/^event 1 .* is not/),
        },
        {
          index: 2,
          type: 'Microsoft.Storage.BlobCreated',
          reason: expect.stringMatching(/has no "subject"/),
        },
        {
          index: 3,
          type: 'Microsoft.Storage.BlobCreated',
          reason: expect.stringMatching(/"subject" is not a string/),
        },
      ],
    });
  });

  it('skips traversal and other keys or containers the cache would refuse, keeping the rest of the batch', () => {
    const { reasons, keys } = skippedOf([
      egBlobCreated(sub('models', '../../etc/passwd')),
      egBlobDeleted(sub('models', 'a//b')),
      egBlobCreated(sub('models', 'ok')),
      egBlobDeleted(sub('models', 'a\u0000b')),
      egBlobDeleted(sub('.hidden', 'a')),
      egBlobDeleted(sub('models', 'k'.repeat(1025))),
      egBlobCreated(sub('models', 'a/./b')),
    ]);
    expect(keys).toEqual(['ok']);
    expect(reasons).toEqual([
      expect.stringMatching(/^event 0 .*: key in subject is not acceptable: key has a '\.\.' path segment/),
      expect.stringMatching(/^event 1 .*: key in subject .*empty path segment/),
      expect.stringMatching(/^event 3 .*control character/),
      expect.stringMatching(/^event 4 .*: container in subject is not acceptable/),
      expect.stringMatching(/^event 5 .*longer than 1024/),
      expect.stringMatching(/^event 6 .*: key in subject .*'\.' path segment/),
    ]);
  });

  it('skips a bad single CloudEvent too (an events delivery with nothing to do, not a failure)', () => {
    const d = parseEventGridDelivery(ceBlob('Microsoft.Storage.BlobDeleted', sub('models', '..')), noHeaders);
    expect(d).toMatchObject({ kind: 'events', invalidations: [], ignored: 0, skipped: [{ index: 0 }] });
  });

  it('does not look at the subject of events it ignores', () => {
    const d = parseEventGridDelivery(
      [{ ...egBlobCreated('x'), eventType: 'Microsoft.Storage.BlobTierChanged', subject: 7 }],
      noHeaders,
    );
    expect(d).toEqual({ kind: 'events', invalidations: [], ignored: 1, skipped: [] });
  });

  it('drops an unusable eTag but still invalidates the blob (the ETag is only informational)', () => {
    const good = egBlobCreated(sub('m', 'k'));
    for (const data of [
      { ...good.data, eTag: '"a\nb"' },
      { ...good.data, eTag: 42 },
      { ...good.data, eTag: 'x'.repeat(257) },
      { ...good.data, eTag: '""' },
      'x',
      null,
    ]) {
      const d = parseEventGridDelivery([{ ...good, data }], noHeaders);
      expect(d).toEqual({
        kind: 'events',
        invalidations: [{ container: 'm', key: 'k', event: 'created' }],
        ignored: 0,
        skipped: [],
      });
    }
  });
});

describe('parseEventGridDelivery: malformed deliveries', () => {
  it('refuses a delivery that is not an array of events', () => {
    expectBadRequest(() => parseEventGridDelivery(egBlobCreated(sub('m', 'k')), noHeaders), /JSON array/);
    expectBadRequest(() => parseEventGridDelivery('[]', noHeaders), /JSON array .* got string/);
    expectBadRequest(() => parseEventGridDelivery(null, noHeaders), /got null/);
    expectBadRequest(() => parseEventGridDelivery(undefined, noHeaders), /got undefined/);
    expectBadRequest(() => parseEventGridDelivery([], noHeaders), /no events/);
    expectBadRequest(() => parseEventGridDelivery([42], noHeaders), /event 0 is number, not an object/);
    expectBadRequest(() => parseEventGridDelivery([[]], noHeaders), /event 0 is an array/);
  });

  it('refuses events without a type or with a foreign specversion', () => {
    expectBadRequest(() => parseEventGridDelivery([{ subject: sub('m', 'k') }], noHeaders), /no "eventType"/);
    expectBadRequest(
      () => parseEventGridDelivery([{ specversion: '1.0', subject: sub('m', 'k') }], noHeaders),
      /no "type"/,
    );
    expectBadRequest(
      () =>
        parseEventGridDelivery(
          { ...ceBlob('Microsoft.Storage.BlobCreated', sub('m', 'k')), specversion: '0.3' },
          noHeaders,
        ),
      /specversion "0.3"/,
    );
  });

  it(`refuses more than ${MAX_EVENTS_PER_DELIVERY} events, and takes exactly that many`, () => {
    const ev = egBlobDeleted(sub('models', 'k'));
    const max = parseEventGridDelivery(Array(MAX_EVENTS_PER_DELIVERY).fill(ev), noHeaders);
    expect(max.kind === 'events' && max.invalidations.length).toBe(MAX_EVENTS_PER_DELIVERY);
    expectBadRequest(
      () => parseEventGridDelivery(Array(MAX_EVENTS_PER_DELIVERY + 1).fill(ev), noHeaders),
      /5001 events, more than 5000/,
    );
  });

  it('does not read inherited properties of an event', () => {
    const ev = Object.create({ eventType: 'Microsoft.Storage.BlobDeleted', subject: sub('m', 'k') });
    expectBadRequest(() => parseEventGridDelivery([ev], noHeaders), /no "eventType"/);
    const noSubject = Object.assign(Object.create({ subject: sub('m', 'k') }), {
      eventType: 'Microsoft.Storage.BlobDeleted',
    });
    expect(skippedOf([noSubject]).reasons).toEqual([expect.stringMatching(/has no "subject"/)]);
  });
});

describe('parseEventBody', () => {
  it('parses JSON text and bytes', () => {
    const text = JSON.stringify(VALIDATION);
    expect(parseEventBody(text)).toEqual(VALIDATION);
    expect(parseEventBody(new TextEncoder().encode(text))).toEqual(VALIDATION);
  });

  it('refuses garbage as BAD_REQUEST and an oversized body as TOO_LARGE', () => {
    expectBadRequest(() => parseEventBody('[{"eventType": '), /not JSON/);
    const big = ' '.repeat(MAX_EVENT_DELIVERY_BYTES + 1);
    expect(() => parseEventBody(big)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
  });
});

describe('parseEventGridDelivery: arbitrary input', () => {
  const onlyCacheErrors = (body: unknown, h: (name: string) => string | undefined = noHeaders) => {
    try {
      parseEventGridDelivery(body, h);
    } catch (err) {
      if (!(err instanceof CacheError)) throw err;
      expect(['BAD_REQUEST']).toContain(err.code);
    }
  };

  it('throws nothing but CacheError on any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => onlyCacheErrors(v)),
      { numRuns: 500 },
    );
  });

  it('throws nothing but CacheError on event-shaped objects with hostile fields', () => {
    const str = fc.oneof(fc.string(), fc.constantFrom('', '..', '/', '%', '%2e', '\u0000', '__proto__'));
    const anyField = fc.oneof(str, fc.integer(), fc.constant(null), fc.object(), fc.array(fc.anything()));
    const subject = fc.oneof(
      anyField,
      fc.tuple(str, str).map(([c, k]) => sub(c, k)),
      fc
        .tuple(fc.constantFrom('models', 'a'), fc.array(str, { maxLength: 4 }))
        .map(([c, k]) => sub(c, k.join('/'))),
    );
    const type = fc.oneof(
      anyField,
      fc.constantFrom(
        'Microsoft.Storage.BlobCreated',
        'Microsoft.Storage.BlobDeleted',
        'Microsoft.EventGrid.SubscriptionValidationEvent',
      ),
    );
    const data = fc.oneof(
      anyField,
      fc.record({ eTag: anyField, validationCode: anyField, validationUrl: anyField }, { requiredKeys: [] }),
    );
    const egEvent = fc.record({ eventType: type, subject, data }, { requiredKeys: [] });
    const ceEvent = fc.record(
      { specversion: fc.oneof(fc.constant('1.0'), anyField), type, subject, data },
      { requiredKeys: ['specversion'] },
    );
    const body = fc.oneof(fc.array(fc.oneof(egEvent, ceEvent, fc.anything()), { maxLength: 8 }), ceEvent);
    fc.assert(
      fc.property(body, (b) => onlyCacheErrors(b)),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but CacheError for any handshake origin, and on any text body', () => {
    fc.assert(
      fc.property(fc.string(), (origin) =>
        onlyCacheErrors(undefined, headers({ 'WebHook-Request-Origin': origin })),
      ),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          onlyCacheErrors(parseEventBody(text));
        } catch (err) {
          if (!(err instanceof CacheError)) throw err;
        }
      }),
    );
  });
});
