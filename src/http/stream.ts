/**
 * Writes Buffers to a Node response with backpressure: when the socket's
 * buffer is full we wait for 'drain', so a slow client pins at most the
 * read-ahead window of chunks, never the whole range.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

export async function writeWithBackpressure(res: ServerResponse, data: Buffer): Promise<void> {
  if (res.destroyed) throw new Error('client went away');
  if (res.write(data)) return;
  const ac = new AbortController();
  try {
    await Promise.race([
      once(res, 'drain', { signal: ac.signal }),
      once(res, 'close', { signal: ac.signal }).then(() => {
        throw new Error('client went away');
      }),
    ]);
  } finally {
    ac.abort();
  }
}
