/**
 * One set of target rules (docs/http-api.md, "Request targets"): whatever the
 * native parser refuses in a request target, src/http/target.ts refuses too,
 * with the same status; whatever target.ts accepts, the native parser lets
 * through to it. (The parser may let more through: target.ts has the last
 * word on every request the native door hands to the application.)
 */
import { describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { httpStatusOf } from '../../src/http/errors.js';
import { parseTarget } from '../../src/http/target.js';
import { binding } from '../../src/transport/binding.js';

const TARGETS = [
  '/',
  '/v1/objects/models/a.bin',
  '/v1/objects/models/a.bin?version=x&y',
  '/a%20b',
  '/a%2Fb',
  '/a%zz',
  '/a%2',
  '/a#b',
  '/a?b#c',
  '/a\\b',
  '/a%5Cb',
  '/a//b',
  '/a/../b',
  '/a/%2e%2e/b',
  '/a/./b',
  '/a/',
  '*',
  'http://cache/a',
  'https://cache:8420/a?b',
  'HTTP://CACHE/a',
  'http://cache',
  'http://cache?x',
  'http://user@cache/a',
  'http://[::1]:8420/a',
  'http://[::1/a',
  'http:///a',
  'ftp://cache/a',
  'cache:8420',
  'a/b',
  "/a!$&'()*+,;=:@b",
  '/a~b-c_d.e',
  '/a"b',
  '/a<b>',
  '/a{b}',
  '/a|b',
  '/a^b',
  '/a`b',
  `/${'x'.repeat(8191)}`,
  `/${'x'.repeat(8192)}`,
];

function jsVerdict(target: string, method: string): number {
  try {
    parseTarget(target, method);
    return 0;
  } catch (err) {
    return httpStatusOf(CacheError.from(err).code);
  }
}

describe('request-target rules: the native parser and target.ts agree', () => {
  for (const method of ['GET', 'OPTIONS']) {
    it(`${method}: a target the parser refuses, target.ts refuses with the same status; one target.ts accepts, the parser accepts`, () => {
      const disagree: string[] = [];
      for (const target of TARGETS) {
        const raw = Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: cache\r\n\r\n`, 'latin1');
        const [r] = binding().httpReplay(raw, { maxRequestLineBytes: 8192 + 64 });
        const nativeStatus = r?.error ? r.status : 0;
        const js = jsVerdict(target, method);
        if (nativeStatus !== 0 && nativeStatus !== js)
          disagree.push(`${target.slice(0, 40)}: native ${nativeStatus} ${r?.error}, target.ts ${js}`);
        if (js === 0 && nativeStatus !== 0)
          disagree.push(`${target.slice(0, 40)}: target.ts accepts, native refuses ${r?.error}`);
      }
      expect(disagree).toEqual([]);
    });
  }
});
