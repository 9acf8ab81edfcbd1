/**
 * The SigV4 implementation against AWS's published vectors: the generic
 * test suite (service "service", credentials AKIDEXAMPLE) and the S3
 * documentation's worked examples (header form with a Range, presigned URL).
 */
import { describe, expect, it } from 'vitest';
import {
  canonicalQuery,
  canonicalRequest,
  EMPTY_SHA256,
  presignedQuery,
  type Scope,
  signature,
  signedHeaders,
  stringToSign,
  uriEncode,
} from '../../src/s3/sigv4.js';

const SUITE_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SUITE_SCOPE: Scope = { date: '20150830', region: 'us-east-1', service: 'service' };
const SUITE_DATE = '20150830T123600Z';

function suite(method: string, query: Array<[string, string]>, extra: Array<[string, string]> = []) {
  const headers = [
    ['host', ['example.amazonaws.com']] as const,
    ['x-amz-date', [SUITE_DATE]] as const,
    ...extra.map(([k, v]) => [k, [v]] as const),
  ].sort(([a], [b]) => (a < b ? -1 : 1));
  const creq = canonicalRequest({
    method,
    uri: '/',
    query: canonicalQuery(query),
    headers,
    payloadHash: EMPTY_SHA256,
  });
  return signature(SUITE_SECRET, SUITE_SCOPE, stringToSign(SUITE_DATE, SUITE_SCOPE, creq));
}

describe('SigV4: the AWS test suite', () => {
  it('get-vanilla', () => {
    expect(suite('GET', [])).toBe('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });
  it('get-vanilla-query-order-key-case (sorted by key)', () => {
    expect(
      suite('GET', [
        ['Param2', 'value2'],
        ['Param1', 'value1'],
      ]),
    ).toBe('b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500');
  });
  it('post-vanilla', () => {
    expect(suite('POST', [])).toBe('5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b');
  });
  it('post-header-value-case (values keep their case)', () => {
    expect(suite('POST', [], [['my-header1', 'VALUE1']])).toBe(
      'cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d',
    );
  });
  it('uriEncode keeps only unreserved characters', () => {
    expect(uriEncode('a b+c/ü~._-')).toBe('a%20b%2Bc%2F%C3%BC~._-');
    expect(uriEncode('dir/a b', true)).toBe('dir/a%20b');
  });
});

describe('SigV4: the S3 documentation examples', () => {
  const credentials = {
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  };
  const now = new Date('2013-05-24T00:00:00Z');

  it('GET /test.txt with Range, signed in the Authorization header', () => {
    const h = signedHeaders({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      uri: '/test.txt',
      query: [],
      headers: { range: 'bytes=0-9' },
      payloadHash: EMPTY_SHA256,
      region: 'us-east-1',
      service: 's3',
      credentials,
      now,
    });
    expect(h.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('GET /?max-keys=2&prefix=J (a listing)', () => {
    const h = signedHeaders({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      uri: '/',
      query: [
        ['max-keys', '2'],
        ['prefix', 'J'],
      ],
      payloadHash: EMPTY_SHA256,
      region: 'us-east-1',
      service: 's3',
      credentials,
      now,
    });
    expect(h.authorization).toContain(
      'Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
    );
  });

  it('a presigned GET URL', () => {
    const q = presignedQuery({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      uri: '/test.txt',
      query: [],
      region: 'us-east-1',
      service: 's3',
      credentials,
      now,
      expiresSeconds: 86400,
    });
    expect(Object.fromEntries(q)['X-Amz-Signature']).toBe(
      'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });
});
