/**
 * One request to an Azure door on its own connection, for comparing the
 * native and the JavaScript door's answers (azure-fast-path*.test.ts): header
 * lines in order, Date left out, request ids and error times masked (the same
 * form, other values), one Host for both nodes (List Blobs names it).
 */
import type { NodeProcess } from '../harness/node-process.js';
import { exchangeLines, type SentAnswer } from '../harness/raw-http.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;

export async function raw(url: string, method: string, target: string, headers: Record<string, string> = {}) {
  const a: SentAnswer = await exchangeLines(url, method, target, { Host: 'cache:8420', ...headers }, (l) =>
    l.replace(UUID, '<uuid>'),
  );
  const body = a.body
    .toString('latin1')
    .replace(UUID, '<uuid>')
    .replace(/\nTime:[0-9T:.-]+Z</, '\nTime:<t><');
  return { ...a, body };
}

/** Requests the native door answered on its fast path (hits). */
export const fastHits = (n: NodeProcess) =>
  n.metric('weightcache_http_fastpath_requests_total', { result: 'hit' });
