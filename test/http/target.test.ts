import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CacheError } from '../../src/errors/cache-error.js';
import { parseTarget } from '../../src/http/target.js';

const refused = (raw: string, method = 'GET') => {
  try {
    parseTarget(raw, method);
  } catch (err) {
    return (err as CacheError).code;
  }
  return 'accepted';
};

describe('parseTarget (RFC 9112 §3.2, docs/http-api.md "Request targets")', () => {
  it('origin-form: segments decoded, the canonical path re-encodes only what is not a pchar', () => {
    expect(parseTarget('/v1/%70refetch', 'POST')).toEqual({
      form: 'origin',
      path: '/v1/prefetch',
      segments: ['v1', 'prefetch'],
      query: '',
      authority: null,
    });
    const t = parseTarget("/v1/objects/m/a%20b%2Fc%25d~!$&'()*+,;=:@?x=1&y=%2F", 'GET');
    expect(t.segments).toEqual(['v1', 'objects', 'm', "a b/c%d~!$&'()*+,;=:@"]);
    expect(t.path).toBe("/v1/objects/m/a%20b%2Fc%25d~!$&'()*+,;=:@");
    expect(t.query).toBe('x=1&y=%2F');
    expect(parseTarget('/v1/manifests/models/', 'GET').segments).toEqual(['v1', 'manifests', 'models', '']);
    expect(parseTarget('/', 'GET').segments).toEqual(['']);
    expect(parseTarget('/v1/objects/m/%C3%A9', 'GET').path).toBe('/v1/objects/m/%C3%A9');
  });

  it('absolute-form: accepted, its authority kept, routed like the origin-form', () => {
    expect(parseTarget('HTTP://Cache.Example:8420/v1/prefetch?x', 'POST')).toEqual({
      form: 'absolute',
      path: '/v1/prefetch',
      segments: ['v1', 'prefetch'],
      query: 'x',
      authority: 'cache.example:8420',
    });
    expect(parseTarget('http://[::1]:80', 'GET').path).toBe('/');
    expect(parseTarget('https://h?q=1', 'GET')).toMatchObject({ path: '/', query: 'q=1' });
  });

  it('asterisk-form only for OPTIONS', () => {
    expect(parseTarget('*', 'OPTIONS').form).toBe('asterisk');
    expect(refused('*', 'GET')).toBe('BAD_REQUEST');
  });

  it('refuses what routing and authorisation could read differently, naming the fault', () => {
    const cases: Array<[string, string]> = [
      ['/v1/prefetch#x', 'BAD_REQUEST'],
      ['/a?b#c', 'BAD_REQUEST'],
      ['v1/prefetch', 'BAD_REQUEST'],
      ['cache:8420', 'BAD_REQUEST'],
      ['ftp://h/x', 'BAD_REQUEST'],
      ['http://u:p@h/x', 'BAD_REQUEST'],
      ['http:///x', 'BAD_REQUEST'],
      ['http://h h/x', 'BAD_REQUEST'],
      ['/a b', 'BAD_REQUEST'],
      ['/caf\u00e9', 'BAD_REQUEST'],
      ['/a\u0000', 'BAD_REQUEST'],
      ['//a', 'BAD_KEY'],
      ['/a//b', 'BAD_KEY'],
      ['/./a', 'BAD_KEY'],
      ['/a/..', 'BAD_KEY'],
      ['/a/%2e%2E/b', 'BAD_KEY'],
      ['/a/%2e', 'BAD_KEY'],
      ['/a\\b', 'BAD_KEY'],
      ['/a%5Cb', 'BAD_KEY'],
      ['/a%00', 'BAD_KEY'],
      ['/a%0a', 'BAD_KEY'],
      ['/a%7f', 'BAD_KEY'],
      ['/a%zz', 'BAD_KEY'],
      ['/a%', 'BAD_KEY'],
      ['/a%C3', 'BAD_KEY'],
      [`/${'a'.repeat(8192)}`, 'URI_TOO_LONG'],
    ];
    for (const [raw, code] of cases)
      expect({ raw: raw.slice(0, 40), code: refused(raw) }).toEqual({ raw: raw.slice(0, 40), code });
    for (const raw of ['/v1/prefetch/', '/v1/prefetch;', '/V1/PREFETCH', '/v1/a%2fb', '/?#'.slice(0, 2)]) {
      expect(refused(raw)).toBe('accepted');
    }
    expect(parseTarget('/v1/prefetch/', 'POST').path).toBe('/v1/prefetch/');
    expect(parseTarget('/V1/PREFETCH', 'POST').path).toBe('/V1/PREFETCH');
  });

  it('property: the canonical path parses to itself (one parse, one route)', () => {
    const segment = fc
      .string({ minLength: 1, maxLength: 12, unit: 'grapheme' })
      .filter((s) => s !== '.' && s !== '..' && !/[\u0000-\u001f\u007f\\]/.test(s));
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), (segs) => {
        const path = `/${segs.map(encodeURIComponent).join('/')}`;
        const t = parseTarget(path, 'GET');
        expect(t.segments).toEqual(segs);
        const again = parseTarget(t.path, 'GET');
        expect(again.path).toBe(t.path);
        expect(again.segments).toEqual(segs);
        // What hono routes on (decodeURI of the path) splits into the same segments.
        expect(decodeURI(t.path).split('/').length).toBe(segs.length + 1);
      }),
    );
  });
});
