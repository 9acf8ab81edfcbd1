/**
 * multipart/byteranges framing (RFC 9110 §14.6) for requests with several
 * ranges. Every part's header is known before the first byte is sent, so the
 * response still carries an exact Content-Length (SGLang's loader, among
 * others, rejects chunked bodies).
 */
import { randomBytes } from 'node:crypto';
import { type ByteRange, contentRange } from '../read/range.js';

export interface MultipartPlan {
  readonly contentType: string;
  readonly contentLength: number;
  /** Header bytes to send before each part's data. */
  readonly partHeaders: readonly Buffer[];
  readonly trailer: Buffer;
}

export function planMultipart(ranges: readonly ByteRange[], size: number, partType: string): MultipartPlan {
  const boundary = `wc-${randomBytes(12).toString('hex')}`;
  const partHeaders = ranges.map((r, i) =>
    Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: ${contentRange(r, size)}\r\n\r\n`,
    ),
  );
  const trailer = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = ranges.reduce((n, r) => n + (r.end - r.start + 1), 0);
  const framing = partHeaders.reduce((n, b) => n + b.length, 0) + trailer.length;
  return {
    contentType: `multipart/byteranges; boundary=${boundary}`,
    contentLength: body + framing,
    partHeaders,
    trailer,
  };
}
