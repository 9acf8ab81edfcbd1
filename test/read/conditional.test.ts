import { describe, expect, it } from 'vitest';
import { evaluatePreconditions, ifRangeAllows } from '../../src/read/conditional.js';

const v = { etag: 'abc', lastModified: new Date('2026-01-02T03:04:05Z') };
const h = (headers: Record<string, string>) => (name: string) => headers[name];

describe('preconditions (RFC 9110 §13.2.2)', () => {
  it('If-Match: strong comparison, * and lists', () => {
    expect(evaluatePreconditions(h({ 'if-match': '"abc"' }), v)).toBe('proceed');
    expect(evaluatePreconditions(h({ 'if-match': '"x", "abc"' }), v)).toBe('proceed');
    expect(evaluatePreconditions(h({ 'if-match': '*' }), v)).toBe('proceed');
    expect(evaluatePreconditions(h({ 'if-match': '"zzz"' }), v)).toBe('precondition-failed');
    expect(evaluatePreconditions(h({ 'if-match': 'W/"abc"' }), v)).toBe('precondition-failed');
    expect(evaluatePreconditions(h({ 'if-match': 'abc' }), v)).toBe('precondition-failed');
  });

  it('If-None-Match: weak comparison → 304', () => {
    expect(evaluatePreconditions(h({ 'if-none-match': '"abc"' }), v)).toBe('not-modified');
    expect(evaluatePreconditions(h({ 'if-none-match': 'W/"abc"' }), v)).toBe('not-modified');
    expect(evaluatePreconditions(h({ 'if-none-match': '*' }), v)).toBe('not-modified');
    expect(evaluatePreconditions(h({ 'if-none-match': '"old"' }), v)).toBe('proceed');
  });

  it('dates are consulted only without the matching tag header', () => {
    const before = 'Thu, 01 Jan 2026 00:00:00 GMT';
    const after = 'Sat, 03 Jan 2026 00:00:00 GMT';
    expect(evaluatePreconditions(h({ 'if-unmodified-since': before }), v)).toBe('precondition-failed');
    expect(evaluatePreconditions(h({ 'if-unmodified-since': after }), v)).toBe('proceed');
    expect(evaluatePreconditions(h({ 'if-match': '"abc"', 'if-unmodified-since': before }), v)).toBe(
      'proceed',
    );
    expect(evaluatePreconditions(h({ 'if-modified-since': after }), v)).toBe('not-modified');
    expect(evaluatePreconditions(h({ 'if-modified-since': before }), v)).toBe('proceed');
    expect(evaluatePreconditions(h({ 'if-none-match': '"old"', 'if-modified-since': after }), v)).toBe(
      'proceed',
    );
    expect(evaluatePreconditions(h({ 'if-modified-since': 'garbage' }), v)).toBe('proceed');
  });

  it('If-Range: strong etag match or exact date', () => {
    expect(ifRangeAllows(h({}), v)).toBe(true);
    expect(ifRangeAllows(h({ 'if-range': '"abc"' }), v)).toBe(true);
    expect(ifRangeAllows(h({ 'if-range': '"old"' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': 'W/"abc"' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': v.lastModified.toUTCString() }), v)).toBe(true);
    expect(ifRangeAllows(h({ 'if-range': 'Thu, 01 Jan 2026 00:00:00 GMT' }), v)).toBe(false);
  });

  it('If-Range takes one validator: a list of tags (even one that matches) is a false condition', () => {
    // Issue 12: `If-Range: "x", "abc"` allowed a 206.
    expect(ifRangeAllows(h({ 'if-range': '"x", "abc"' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': '"abc", "x"' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': '"abc","abc"' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': '*' }), v)).toBe(false);
    expect(ifRangeAllows(h({ 'if-range': ' "abc" ' }), v)).toBe(true);
  });
});
