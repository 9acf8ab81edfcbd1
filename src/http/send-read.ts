/**
 * Writes an object read (src/read/object-read.ts) to a Node response, for
 * every HTTP door: the status line and the door's headers first, then the
 * slices with backpressure. Once the status line is out a failure can only
 * cut the connection (the client sees fewer bytes than Content-Length), never
 * send bytes of another version.
 */
import type { ServerResponse } from 'node:http';
import { formatName } from '../origin/names.js';
import type { ObjectInfo } from '../origin/origin.js';
import type { ObjectContent, SliceStream } from '../read/object-read.js';
import type { ByteRange } from '../read/range.js';
import type { Slice } from '../read/read-path.js';
import { addressKey, closeConnection } from './connections.js';
import type { MultipartPlan } from './multipart.js';
import type { Reservation, SendBudget } from './send-budget.js';
import { ClientGone, writeWithBackpressure } from './stream.js';

export type Headers = Record<string, string | number>;

/** The server's bound on what responses hold (send-budget.ts), and what one read can pin. */
export interface SendLimits {
  readonly budget: SendBudget;
  readonly readAhead: number;
  readonly chunkSize: number;
}

const limitsOf = new WeakMap<ServerResponse, SendLimits>();
/** Reservations made by admitRead, before the read was opened; sendRead takes them over. */
const admitted = new WeakMap<ServerResponse, Reservation | undefined>();

/**
 * The server attaches its send budget to every response before routing, so
 * every door's body goes through the same bound without knowing of it.
 */
export function attachSendLimits(res: ServerResponse, limits: SendLimits): void {
  limitsOf.set(res, limits);
}

/**
 * An ObjectReader.open `admit` for this response: reserves what its read can
 * pin in the send budget before the read fetches its first chunk, so requests
 * waiting for room hold no bytes (sendRead then uses that reservation).
 */
export function admitRead(res: ServerResponse): (ranges: readonly ByteRange[]) => Promise<void> {
  return async (ranges) => {
    // Once per response: a door that opens again (the Hub after re-resolving a revision) keeps its room.
    if (!admitted.has(res)) admitted.set(res, await reserve(res, ranges));
  };
}

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
  const reservation = admitted.has(res) ? admitted.get(res) : await reserve(res, read.ranges);
  const first = await read.slices(0);
  res.writeHead(status, headers);
  for (let i = 0; i < read.ranges.length; i++) {
    const stream = i === 0 ? first : await read.slices(i).catch((err: unknown) => abort(res, read.info, err));
    if (multipart) {
      await writeWithBackpressure(res, multipart.partHeaders[i]!, reservation).catch((err: unknown) =>
        abort(res, read.info, err),
      );
    }
    await sendSlices(res, stream, read.info, reservation);
  }
  res.end(multipart?.trailer);
}

/**
 * Reserves in the send budget what this response's reads can pin at once
 * (send-budget.ts): min(chunks in a range, readAhead + 1) chunks, released
 * when the response closes (sent or aborted). No budget attached: nothing.
 */
async function reserve(res: ServerResponse, ranges: readonly ByteRange[]): Promise<Reservation | undefined> {
  const l = limitsOf.get(res);
  if (!l) return undefined;
  const cs = l.chunkSize;
  let chunks = 0;
  for (const r of ranges) {
    const n = Math.floor(r.end / cs) - Math.floor(r.start / cs) + 1;
    chunks = Math.max(chunks, Math.min(n, l.readAhead + 1));
  }
  const socket = res.socket;
  if (!socket || res.destroyed) throw new ClientGone();
  const ac = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) ac.abort(new ClientGone());
  };
  res.once('close', onClose);
  const owner = socket.remoteAddress ? addressKey(socket.remoteAddress) : 'local';
  try {
    const reservation = await l.budget.acquire(chunks * cs, owner, ac.signal, () =>
      closeConnection(socket, 'slow_client'),
    );
    if (ac.signal.aborted) reservation.release();
    else res.once('close', () => reservation.release());
    ac.signal.throwIfAborted();
    return reservation;
  } finally {
    res.off('close', onClose);
  }
}

/** Streams a range; after the first byte, a failure aborts the connection. */
async function sendSlices(
  res: ServerResponse,
  s: SliceStream,
  info: ObjectInfo,
  reservation: Reservation | undefined,
): Promise<void> {
  try {
    await writeWithBackpressure(res, s.first.data, reservation);
    for await (const slice of s.rest as AsyncGenerator<Slice>) {
      await writeWithBackpressure(res, slice.data, reservation);
    }
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

/**
 * A failure after the status line was sent; the edge logs it but cannot
 * answer it. `byClient`: the client left (or was disconnected for not
 * reading), an everyday event, not the server's fault.
 */
export class BodyAborted extends Error {
  readonly byClient: boolean;
  constructor(info: ObjectInfo, cause: unknown) {
    super(`response body for ${formatName(info)} aborted`, { cause });
    this.byClient = cause instanceof ClientGone || (cause instanceof Error && cause.name === 'AbortError');
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
