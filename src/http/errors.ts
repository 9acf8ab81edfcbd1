/**
 * The one place CacheError codes become HTTP statuses and error answers.
 * 4xx for the caller's mistakes, 502/503/504 for the origin's and for
 * overload. Every error answer, from a route, from the request-target parse
 * or from node's HTTP parser itself, is the same JSON `{code, message}` with
 * an exact Content-Length (also on HEAD, which gets the headers a GET would).
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { ErrorCode } from '../errors/cache-error.js';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  NOT_FOUND: 404,
  RANGE_NOT_SATISFIABLE: 416,
  PRECONDITION_FAILED: 412,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  READONLY: 405,
  TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  ORIGIN_UNAVAILABLE: 502,
  ORIGIN_TIMEOUT: 504,
  ORIGIN_BAD_RESPONSE: 502,
  VERSION_CHANGED: 412,
  UNSUPPORTED: 501,
  CHECKSUM_MISMATCH: 502,
  TIER_IO: 500,
  DISK_FULL: 507,
  OVERLOADED: 503,
  SHUTTING_DOWN: 503,
  PEER_UNAVAILABLE: 503,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** The error body every endpoint answers: `{ code, message }`. */
export function errorBody(code: ErrorCode, message: string): string {
  return JSON.stringify({ code, message });
}

/**
 * Answers an error on a response whose headers are not sent yet. HEAD gets
 * the same status and headers (Content-Length of the JSON body included)
 * without the body.
 */
export function sendError(
  res: ServerResponse,
  method: string | undefined,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = errorBody(code, message);
  res.writeHead(httpStatusOf(code), {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/**
 * A whole HTTP/1.1 error answer as bytes, for a socket with no usable
 * request or response object (node's parser refused the bytes, a connection
 * over a limit). It always closes the connection: what follows on the wire
 * cannot be trusted to be a request boundary.
 */
export function rawErrorResponse(code: ErrorCode, message: string): Buffer {
  const status = httpStatusOf(code);
  const body = errorBody(code, message);
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body, 'utf8')]);
}
