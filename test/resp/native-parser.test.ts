/**
 * The native RESP request parser (addon/src/resp/parser.h) through its test
 * binding, against the JavaScript parser (src/resp/request-parser.ts) and
 * redis-parser: random streams of valid and malformed commands, cut into
 * reads at random points and parsed under random limits, authenticated or
 * not, must give the same commands and the same protocol error (reason and
 * text, which the client reads) from both of ours; valid pipelines must also
 * give redis-parser's commands. (addon/test/resp_parser_test.cc holds the
 * case table; addon/fuzz/resp_parser_fuzzer.cc fuzzes the parser.)
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/resp/limits.js';
import { ProtocolError } from '../../src/resp/protocol-error.js';
import { RequestParser } from '../../src/resp/request-parser.js';
import { binding } from '../../src/transport/binding.js';

type RedisParserCtor = new (o: {
  returnBuffers: boolean;
  returnReply(reply: unknown): void;
  returnError(err: Error): void;
}) => { execute(data: Buffer): void };
const RedisParser = createRequire(import.meta.url)('redis-parser') as RedisParserCtor;

interface Limits {
  maxArgs: number;
  maxBulkBytes: number;
  maxQueryBufferBytes: number;
}

interface Outcome {
  commands: string[][];
  error: { reason: string; message: string } | null;
  buffered: number | null;
}

const hex = (cmds: Buffer[][]) => cmds.map((c) => c.map((a) => a.toString('hex')));

function viaJs(chunks: Buffer[], limits: Limits, authenticated: boolean): Outcome {
  const p = new RequestParser({ limits, authenticated: () => authenticated });
  const commands: Buffer[][] = [];
  try {
    for (const chunk of chunks) {
      p.feed(chunk);
      for (let c = p.next(); c !== null; c = p.next()) commands.push(c);
    }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { commands: hex(commands), error: { reason: err.reason, message: err.message }, buffered: null };
  }
  return { commands: hex(commands), error: null, buffered: p.buffered };
}

function viaNative(chunks: Buffer[], limits: Limits, authenticated: boolean): Outcome {
  const r = binding().respReplay(chunks, { ...limits, authenticated });
  return { commands: hex(r.commands), error: r.error, buffered: r.error ? null : r.buffered };
}

function encode(cmd: Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${cmd.length}\r\n`)];
  for (const a of cmd) parts.push(Buffer.from(`$${a.length}\r\n`), Buffer.from(a), Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function cut(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

// ---- generated streams ---------------------------------------------------------------------------
const arg = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 600 }) },
);
const multibulk = fc.array(arg, { minLength: 1, maxLength: 12 }).map(encode);
const inlineWord = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9.:{}/-]{1,12}$/),
  fc.constantFrom('"a b"', "'x\\'y'", '"\\x41\\n"', '"unterminated', '"a"b', "'q'r", '""', "''"),
);
const inline = fc
  .tuple(
    fc.array(inlineWord, { minLength: 0, maxLength: 13 }),
    fc.constantFrom(' ', '  ', '\t'),
    fc.constantFrom('\r\n', '\n'),
  )
  .map(([words, sep, nl]) => Buffer.from(words.join(sep) + nl));
// Broken or hostile framing: every kind of error the parsers report.
const broken = fc.oneof(
  fc
    .constantFrom(
      '*-1\r\n',
      '*0\r\n',
      '*\r\n',
      '*1x\r\n',
      '*1\n',
      '*3000000000\r\n',
      '*0000000000000000001\r\n',
      '*11\r\n',
      '*5000\r\n',
      '*1\r\n$-1\r\n',
      '*1\r\n$\r\n',
      '*1\r\n$1\n',
      '*1\r\n$+1\r\n',
      '*1\r\n$536870913\r\n',
      '*1\r\n$16385\r\n',
      '*1\r\n*1\r\n',
      '*1\r\n:1\r\n',
      '*1\r\n \r\n',
      '*1\r\n$1\r\nab\r\n',
      '*2\r\n$1\r\na\r\n',
      '%1\r\n',
      '\r\n',
      '\n',
    )
    .map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a)),
  fc.nat({ max: 70_000 }).map((n) => Buffer.alloc(n, 0x61)), // long inline lines
  fc.nat({ max: 20_000 }).map((n) => Buffer.from(`*1\r\n$${n}\r\n${'b'.repeat(n)}\r\n`)),
  // Bulks each under the pre-auth bulk limit adding up past its query limit.
  fc.integer({ min: 7000, max: 9000 }).map((n) => encode([Buffer.alloc(n, 0x63), Buffer.alloc(n, 0x64)])),
);
const stream = fc
  .array(
    fc.oneof(
      { weight: 5, arbitrary: multibulk },
      { weight: 2, arbitrary: inline },
      { weight: 2, arbitrary: broken },
    ),
    { minLength: 1, maxLength: 12 },
  )
  .map((parts) => Buffer.concat(parts));
const limits: fc.Arbitrary<Limits> = fc.oneof(
  fc.constant({
    maxArgs: DEFAULT_LIMITS.maxArgs,
    maxBulkBytes: DEFAULT_LIMITS.maxBulkBytes,
    maxQueryBufferBytes: DEFAULT_LIMITS.maxQueryBufferBytes,
  }),
  fc.record({
    maxArgs: fc.integer({ min: 3, max: 12 }),
    maxBulkBytes: fc.integer({ min: 16, max: 2000 }),
    maxQueryBufferBytes: fc.integer({ min: 64, max: 4000 }),
  }),
);

describe('native RESP request parser', () => {
  it('agrees with the JavaScript parser on random valid and malformed streams, cut anywhere', () => {
    fc.assert(
      fc.property(
        stream,
        fc.array(fc.nat(), { maxLength: 12 }),
        limits,
        fc.boolean(),
        (bytes, points, l, authenticated) => {
          const chunks = cut(bytes, points);
          expect(viaNative(chunks, l, authenticated)).toEqual(viaJs(chunks, l, authenticated));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('reports every error of the JavaScript parser with the same text', () => {
    // At least one stream per reason, so the comparison above is not carried by a few.
    const seen = new Set<string>();
    fc.assert(
      fc.property(stream, limits, fc.boolean(), (bytes, l, authenticated) => {
        const js = viaJs([bytes], l, authenticated);
        expect(viaNative([bytes], l, authenticated)).toEqual(js);
        if (js.error) seen.add(js.error.reason);
      }),
      { numRuns: 3000 },
    );
    for (const reason of [
      'too_many_args',
      'preauth_args',
      'preauth_bulk',
      'preauth_query_buffer',
      'query_buffer',
      'bulk_length',
      'multibulk_length',
      'multibulk_header',
      'bulk_header',
      'expected_bulk',
      'bulk_terminator',
      'unbalanced_quotes',
      'inline_too_big',
    ])
      expect(seen, reason).toContain(reason);
  });

  it('splits valid pipelines exactly as redis-parser does, whatever the read boundaries', () => {
    const cmd = fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(
        fc.array(cmd, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (cmds, points) => {
          const wire = Buffer.concat(cmds.map(encode));
          const theirs: Buffer[][] = [];
          const ref = new RedisParser({
            returnBuffers: true,
            returnReply: (r) => theirs.push((r as Buffer[]).map((b) => Buffer.from(b))),
            returnError: (e) => {
              throw e;
            },
          });
          const chunks = cut(wire, points);
          for (const c of chunks) ref.execute(c);
          const ours = binding().respReplay(chunks);
          expect(ours.error).toBeNull();
          expect(ours.buffered).toBe(0);
          expect(hex(ours.commands)).toEqual(hex(theirs));
          expect(hex(ours.commands)).toEqual(cmds.map((c) => c.map((a) => Buffer.from(a).toString('hex'))));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses bad options with a clear error', () => {
    expect(() => binding().respReplay([Buffer.from('PING\r\n')], { maxArgs: 0 })).toThrow(
      /maxArgs must be a number in 1\.\./,
    );
    expect(() => binding().respReplay(['x' as unknown as Uint8Array])).toThrow(
      /every chunk must be a Uint8Array/,
    );
  });
});
