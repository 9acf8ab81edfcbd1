/**
 * Writes an object read (src/read/object-read.ts) to a Node response, for
 * every HTTP door: the status line and the door's headers first, then the
 * slices with backpressure. Once the status line is out a failure can only
 * cut the connection (the client sees fewer bytes than Content-Length), never
 * send bytes of another version.
 */
import type { ServerResponse } from 'node:http';
import type { ObjectInfo } from '../origin/origin.js';
import type { ObjectContent, SliceStream } from '../read/object-read.js';
import type { Slice } from '../read/read-path.js';
import type { MultipartPlan } from './multipart.js';
import { writeWithBackpressure } from './stream.js';

export type Headers = Record<string, string | number>;

/**
 * Sends `read`'s bytes after `status` and `headers` (which must already hold
 * Content-Length). HEAD and empty bodies send the headers only. With a
 * multipart plan, each range goes out with its part header.
 */
export async function sendRead(
  res: ServerResponse,
  head: boolean,
  status: number,
  headers: Headers,
  read: ObjectContent,
  multipart?: MultipartPlan,
): Promise<void> {
  if (head || read.length === 0) {
    res.writeHead(status, headers).end();
    return;
  }
  const first = await read.slices(0);
  res.writeHead(status, headers);
  for (let i = 0; i < read.ranges.length; i++) {
    const stream = i === 0 ? first : await read.slices(i).catch((err: unknown) => abort(res, read.info, err));
    if (multipart) await writeWithBackpressure(res, multipart.partHeaders[i]!);
    await sendSlices(res, stream, read.info);
  }
  res.end(multipart?.trailer);
}

/** Streams a range; after the first byte, a failure aborts the connection. */
async function sendSlices(res: ServerResponse, s: SliceStream, info: ObjectInfo): Promise<void> {
  try {
    await writeWithBackpressure(res, s.first.data);
    for await (const slice of s.rest as AsyncGenerator<Slice>) await writeWithBackpressure(res, slice.data);
  } catch (err) {
    await s.rest.return(undefined);
    abort(res, info, err);
  }
}

function abort(res: ServerResponse, info: ObjectInfo, err: unknown): never {
  // Headers are out: the only honest signal left is a short body.
  res.destroy(err instanceof Error ? err : new Error(String(err)));
  throw new BodyAborted(info, err);
}

/** A failure after the status line was sent; the edge logs it but cannot answer it. */
export class BodyAborted extends Error {
  constructor(info: ObjectInfo, cause: unknown) {
    super(`response body for ${info.container}/${info.key} aborted`, { cause });
  }
}

const TYPES: Record<string, string> = {
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  model: 'application/octet-stream',
};

/** The Content-Type every door answers for a key (the origins keep no types). */
export function contentTypeOf(key: string): string {
  const dot = key.lastIndexOf('.');
  return (dot >= 0 && TYPES[key.slice(dot + 1).toLowerCase()]) || 'application/octet-stream';
}
