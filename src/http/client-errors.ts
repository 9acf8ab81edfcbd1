/**
 * Requests node's HTTP parser refuses before there is a request object (bad
 * syntax, a head over 16 KiB, a head or body that took too long) get the
 * same JSON error body as every other refusal, with a stable code, instead
 * of node's empty default answer:
 *
 *   HPE_HEADER_OVERFLOW             431 HEADERS_TOO_LARGE
 *   HPE_CHUNK_EXTENSIONS_OVERFLOW   413 TOO_LARGE
 *   ERR_HTTP_REQUEST_TIMEOUT        408 REQUEST_TIMEOUT
 *   any other parse error           400 BAD_REQUEST (llhttp's reason as the message)
 *
 * The connection is closed after the answer: past a framing error nothing
 * on the wire can be trusted to start a request. Sockets that broke (reset,
 * EPIPE) or already carry part of a response are just closed. Each event is
 * one debug log line.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors/cache-error.js';
import type { Logger } from '../log/logger.js';
import { rawErrorResponse } from './errors.js';

interface ParserError extends Error {
  code?: string;
  reason?: string;
}

export function answerClientErrors(server: Server, log: Logger): void {
  server.on('clientError', (err: ParserError, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'EPIPE' || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [code, message] = classify(err);
    log.debug(
      { err: { code: err.code, reason: err.reason }, answer: code },
      'http: request refused by the parser',
    );
    socket.end(rawErrorResponse(code, message));
    setTimeout(() => socket.destroy(), 1000).unref();
  });
}

function classify(err: ParserError): [ErrorCode, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return ['HEADERS_TOO_LARGE', 'the request line and headers are larger than 16 KiB'];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return ['TOO_LARGE', 'chunk extensions are larger than 16 KiB'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['REQUEST_TIMEOUT', 'the request did not arrive in time'];
    default:
      return ['BAD_REQUEST', `malformed HTTP request: ${err.reason ?? err.code ?? err.message}`];
  }
}
