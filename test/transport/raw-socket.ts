/** A plain TCP socket to a transport server, for speaking the protocol badly on purpose. */
import { connect, type Socket } from 'node:net';

export interface RawConn {
  sock: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the server closed the connection (or it errored). */
  closed: Promise<void>;
}

export function rawConnect(port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // ECONNRESET is an expected outcome here
    sock.once('connect', () => resolve({ sock, received: () => Buffer.concat(chunks), closed }));
    sock.once('error', reject);
  });
}
