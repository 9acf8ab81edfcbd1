/** The request parser on its own: incremental feeding, inline splitting, pre-auth limits. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatch, literalPrefix } from '../../src/resp/glob.js';
import { splitInline } from '../../src/resp/inline.js';
import { DEFAULT_LIMITS } from '../../src/resp/limits.js';
import { ProtocolError } from '../../src/resp/protocol-error.js';
import { RequestParser } from '../../src/resp/request-parser.js';

function parser(authenticated = true) {
  return new RequestParser({ limits: DEFAULT_LIMITS, authenticated: () => authenticated });
}

function encode(args: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function drain(p: RequestParser): Buffer[][] {
  const out: Buffer[][] = [];
  for (let c = p.next(); c !== null; c = p.next()) out.push(c);
  return out;
}

describe('RequestParser', () => {
  it('yields the same commands however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 5 }), {
          maxLength: 8,
        }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (cmds, cuts) => {
          const wire = Buffer.concat(cmds.map((c) => encode(c.map((a) => Buffer.from(a)))));
          const at = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const p = parser();
          const got: Buffer[][] = [];
          let prev = 0;
          for (const cut of [...at, wire.length]) {
            p.feed(wire.subarray(prev, cut));
            got.push(...drain(p));
            prev = cut;
          }
          expect(got.map((c) => c.map((a) => a.toString('hex')))).toEqual(
            cmds.map((c) => c.map((a) => Buffer.from(a).toString('hex'))),
          );
          expect(p.buffered).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('parses inline commands with CRLF or LF and skips empty lines', () => {
    const p = parser();
    p.feed(Buffer.from('PING\r\n\r\n  GET  "a b" \nEC'));
    expect(drain(p).map((c) => c.map(String))).toEqual([['PING'], ['GET', 'a b']]);
    p.feed(Buffer.from('HO x\r\n'));
    expect(drain(p).map((c) => c.map(String))).toEqual([['ECHO', 'x']]);
  });

  it('applies the pre-auth limits until the client authenticates', () => {
    let authed = false;
    const p = new RequestParser({ limits: DEFAULT_LIMITS, authenticated: () => authed });
    p.feed(Buffer.from('*11\r\n'));
    expect(() => p.next()).toThrow('unauthenticated multibulk length');
    const q = new RequestParser({ limits: DEFAULT_LIMITS, authenticated: () => authed });
    q.feed(Buffer.from(`*1\r\n$${16 * 1024 + 1}\r\n`));
    expect(() => q.next()).toThrow('unauthenticated bulk length');
    authed = true;
    const r = new RequestParser({ limits: DEFAULT_LIMITS, authenticated: () => authed });
    r.feed(Buffer.from(`*11\r\n`));
    expect(r.next()).toBeNull();
  });

  it('throws ProtocolError with a metric reason', () => {
    const p = parser();
    p.feed(Buffer.from('*1\r\n$-2\r\n'));
    try {
      p.next();
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).reason).toBe('bulk_length');
    }
  });
});

describe('splitInline', () => {
  const split = (s: string) => splitInline(Buffer.from(s))?.map((b) => b.toString('latin1')) ?? null;
  it('follows sdssplitargs', () => {
    expect(split('a  b\tc')).toEqual(['a', 'b', 'c']);
    // An invalid \x escape keeps the 'x' and drops the backslash, as sdssplitargs does.
    expect(split('"\\x41\\x4g\\n"')).toEqual(['Ax4g\n']);
    expect(split("'a\\'b' \"\"")).toEqual(["a'b", '']);
    expect(split('ab"cd" x')).toEqual(['abcd', 'x']);
    expect(split('"abc')).toBeNull();
    expect(split("'abc")).toBeNull();
    expect(split('"a"b')).toBeNull();
    expect(split('')).toEqual([]);
  });
});

describe('glob', () => {
  it('matches like Redis stringmatchlen', () => {
    expect(globMatch('models/*', 'models/a/b.bin')).toBe(true);
    expect(globMatch('models/*.json', 'models/x/config.json')).toBe(true);
    expect(globMatch('m?dels/[a-c]*', 'models/b1')).toBe(true);
    expect(globMatch('m?dels/[^a-c]*', 'models/b1')).toBe(false);
    expect(globMatch('a\\*b', 'a*b')).toBe(true);
    expect(globMatch('a\\*b', 'axb')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
  });
  it('finds the literal prefix the listing can use', () => {
    expect(literalPrefix('models/llama/*.safetensors')).toBe('models/llama/');
    expect(literalPrefix('models/ll?ma')).toBe('models/ll');
    expect(literalPrefix('a\\*b*')).toBe('a*b');
  });
});
