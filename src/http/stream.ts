/**
 * Writes Buffers to a Node response with backpressure: when the socket's
 * buffer is full we wait for 'drain', so a slow client pins at most the
 * read-ahead window of chunks, never the whole range. While it waits, the
 * response counts as slow in the send budget (send-budget.ts), which
 * disconnects the slowest clients when they hold too much together.
 *
 * Plain listeners, not events.once with an AbortSignal: aborting the signal
 * to clean up built a DOMException per wait, ~10% of a 64 KiB hit's CPU.
 */
import type { ServerResponse } from 'node:http';
import type { Reservation } from './send-budget.js';

export function writeWithBackpressure(
  res: ServerResponse,
  data: Buffer,
  reservation?: Reservation,
): Promise<void> {
  if (res.destroyed) return Promise.reject(new ClientGone());
  if (res.write(data)) return Promise.resolve();
  reservation?.stalled();
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      reservation?.resumed();
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ClientGone());
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** The client closed the connection (or was disconnected) before its answer was sent: not a server fault. */
export class ClientGone extends Error {
  constructor() {
    super('client went away');
  }
}
