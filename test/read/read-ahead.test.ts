import { describe, expect, it } from 'vitest';
import { ReadAhead } from '../../src/read/read-ahead.js';

describe('ReadAhead', () => {
  it('looks ahead from the first chunk, and further as reads keep moving forward', () => {
    const r = new ReadAhead(8);
    expect(r.next('a', 0, 0, 100)).toEqual({ from: 1, to: 2 });
    expect(r.next('a', 1, 1, 100)).toEqual({ from: 2, to: 4 });
    expect(r.next('a', 2, 2, 100)).toEqual({ from: 3, to: 7 });
    expect(r.next('a', 3, 3, 100)).toEqual({ from: 4, to: 12 });
    expect(r.next('a', 4, 4, 100)).toEqual({ from: 5, to: 13 }); // capped at 8 ahead
  });

  it('follows concurrent readers that arrive a little out of order', () => {
    const r = new ReadAhead(8);
    r.next('a', 0, 0, 100);
    r.next('a', 2, 2, 100);
    expect(r.next('a', 1, 1, 100).to).toBeGreaterThan(3); // behind the head, within the window
    expect(r.next('a', 3, 3, 100).to).toBeGreaterThan(4);
  });

  it('does not look ahead for reads that jump around, nor past the end', () => {
    const r = new ReadAhead(8);
    expect(r.next('a', 50, 50, 100)).toEqual({ from: 0, to: 0 });
    expect(r.next('a', 10, 10, 100)).toEqual({ from: 0, to: 0 });
    expect(r.next('a', 90, 90, 100)).toEqual({ from: 0, to: 0 });
    r.next('b', 0, 0, 3);
    r.next('b', 1, 1, 3);
    expect(r.next('b', 2, 2, 3)).toEqual({ from: 3, to: 3 });
    expect(new ReadAhead(0).next('c', 0, 0, 10)).toEqual({ from: 0, to: 0 });
  });

  it('follows a bounded number of objects, forgetting the least recently read', () => {
    const r = new ReadAhead(8, 2);
    r.next('a', 0, 0, 100);
    r.next('b', 0, 0, 100);
    r.next('c', 0, 0, 100); // forgets a
    expect(r.next('a', 1, 1, 100)).toEqual({ from: 0, to: 0 });
    expect(r.next('c', 1, 1, 100).to).toBeGreaterThan(2);
  });
});
