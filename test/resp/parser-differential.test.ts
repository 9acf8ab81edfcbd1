/**
 * redis-parser as the reference: our request parser (src/resp/request-parser.ts,
 * which enforces the limits redis-parser lacks) must split any pipeline of
 * valid multibulk commands into exactly the arguments redis-parser finds, however
 * the bytes are cut into packets. Only frames within our limits are fed to
 * redis-parser: a parser without limits is only safe behind ours.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/resp/limits.js';
import { RequestParser } from '../../src/resp/request-parser.js';

interface RedisParser {
  execute(data: Buffer): void;
}
type RedisParserCtor = new (o: {
  returnBuffers: boolean;
  returnReply(reply: unknown): void;
  returnError(err: Error): void;
  returnFatalError?(err: Error): void;
}) => RedisParser;
const Parser = createRequire(import.meta.url)('redis-parser') as RedisParserCtor;

function encode(cmd: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${cmd.length}\r\n`)];
  for (const a of cmd) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
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

describe('request parser vs redis-parser', () => {
  it('agrees on every pipeline of valid commands, whatever the packet boundaries', () => {
    const arg = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    const command = fc.array(arg, { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (cmds, points) => {
          const wire = Buffer.concat(cmds.map(encode));
          const ours: Buffer[][] = [];
          const mine = new RequestParser({ limits: DEFAULT_LIMITS, authenticated: () => true });
          const theirs: Buffer[][] = [];
          const ref = new Parser({
            returnBuffers: true,
            returnReply: (r) => theirs.push(r as Buffer[]),
            returnError: (e) => {
              throw e;
            },
          });
          for (const packet of cut(wire, points)) {
            mine.feed(packet);
            for (let c = mine.next(); c; c = mine.next()) ours.push(c);
            ref.execute(packet);
          }
          expect(ours).toEqual(cmds);
          expect(theirs.map((c) => c.map((b) => Buffer.from(b)))).toEqual(cmds);
        },
      ),
      { numRuns: 300 },
    );
  });
});
