/** A plain TCP socket to a transport server, for speaking the protocol badly on purpose. */
import { connect, type Socket } from 'node:net';
import { decodeError } from '../../src/transport/messages.js';
import { FrameType, HEADER_BYTES } from '../../src/transport/protocol.js';

export interface RawConn {
  sock: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the server closed the connection (or it errored). */
  closed: Promise<void>;
}

/**
 * `localAddress` picks the source address: every 127.x.y.z is loopback on
 * Linux, so one test process can be many clients as the per-address limits see them.
 */
export function rawConnect(port: number, localAddress?: string, host = '127.0.0.1'): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // ECONNRESET is an expected outcome here
    sock.once('connect', () => resolve({ sock, received: () => Buffer.concat(chunks), closed }));
    sock.once('error', reject);
  });
}

/** The connection-level ERROR frames (requestId 0) in what a raw connection received. */
export function connectionErrors(bytes: Buffer): { code: string; message: string }[] {
  const out: { code: string; message: string }[] = [];
  for (let at = 0; at + HEADER_BYTES <= bytes.length; ) {
    const meta = bytes.readUInt32LE(at + 12);
    const end = at + HEADER_BYTES + meta + Number(bytes.readBigUInt64LE(at + 16));
    if (end > bytes.length) break;
    if (bytes[at + 3] === FrameType.ERROR && bytes.readUInt32LE(at + 8) === 0) {
      const e = decodeError(bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + meta), 'server');
      out.push({ code: e.code, message: e.message });
    }
    at = end;
  }
  return out;
}
