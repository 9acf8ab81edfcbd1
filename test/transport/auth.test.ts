/**
 * Cluster-secret authentication on the native transport: the matrix of who
 * has which secret, and a raw client that skips AUTH. Real sockets; the
 * server runs in this process (one transport environment per process).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { EXT_CLIENT_NONCE, NONCE_BYTES } from '../../src/transport/auth.js';
import { TransportClient, TransportServer } from '../../src/transport/index.js';
import { encodeHello, encodeObjectName } from '../../src/transport/messages.js';
import { FrameType, PROTOCOL_VERSION } from '../../src/transport/protocol.js';
import { rawFrame } from './raw-frame.js';
import { rawConnect } from './raw-socket.js';

const secretA = Buffer.from(randomBytes(32).toString('hex'));
const secretB = Buffer.from(randomBytes(32).toString('hex'));
const info = { container: 'c', key: 'k', etag: 'v1', size: 1, lastModified: new Date(0) };
const handler = {
  readChunk: async () => ({ kind: 'buffer' as const, data: Buffer.from('x') }),
  stat: async () => info,
};
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

async function serve(secret: Buffer | null): Promise<TransportServer> {
  return TransportServer.listen({ host: '127.0.0.1', port: 0, handler, secret, logger: quiet });
}

async function statWith(server: TransportServer, secret: Buffer | null): Promise<unknown> {
  const client = new TransportClient({
    host: '127.0.0.1',
    port: server.address.port,
    timeoutMs: 3000,
    secret,
    logger: quiet,
  });
  try {
    return await client.stat({ container: 'c', key: 'k' });
  } catch (err) {
    return err;
  } finally {
    await client.close();
  }
}

describe('transport cluster secret', () => {
  let withA: TransportServer;
  let open: TransportServer;
  beforeAll(async () => {
    withA = await serve(secretA);
    open = await serve(null);
  });
  afterAll(async () => {
    await withA?.close();
    await open?.close();
  });

  it('the same secret on both sides: requests flow', async () => {
    expect(await statWith(withA, secretA)).toEqual(info);
  });

  it('no secret on either side: requests flow (auth off)', async () => {
    expect(await statWith(open, null)).toEqual(info);
  });

  it('a different secret: refused with UNAUTHORIZED, on both sides of the mismatch', async () => {
    const err = await statWith(withA, secretB);
    expect(CacheError.is(err, 'UNAUTHORIZED')).toBe(true);
    expect((err as Error).message).toMatch(/cluster secret mismatch/);
  });

  it('a client without a secret cannot talk to a node that has one', async () => {
    const err = await statWith(withA, null);
    expect(CacheError.is(err, 'UNAUTHORIZED')).toBe(true);
    expect((err as Error).message).toMatch(/requires a cluster secret/);
  });

  it('a client with a secret refuses a server that cannot prove one', async () => {
    const err = await statWith(open, secretA);
    expect(CacheError.is(err, 'UNAUTHORIZED')).toBe(true);
    expect((err as Error).message).toMatch(/does not prove the cluster secret/);
  });

  it('a raw client that sends a request instead of AUTH is refused and disconnected', async () => {
    const conn = await rawConnect(withA.address.port);
    const hello = encodeHello({
      minVersion: 1,
      maxVersion: PROTOCOL_VERSION,
      features: 0,
      maxFrameBytes: 16 << 20,
      maxInFlight: 16,
      nodeId: 'raw',
      extensions: [{ tag: EXT_CLIENT_NONCE, value: randomBytes(NONCE_BYTES) }],
    });
    conn.sock.write(rawFrame({ type: FrameType.HELLO, meta: hello }));
    conn.sock.write(
      rawFrame({ type: FrameType.STAT, requestId: 7, meta: encodeObjectName({ container: 'c', key: 'k' }) }),
    );
    await conn.closed;
    const got = conn.received().toString('latin1');
    expect(got).toMatch(/UNAUTHORIZED/);
    // Refused by the addon at the frame's header, before its meta is even read.
    expect(got).toMatch(/frame type 17 before authentication: only HELLO and AUTH/);
    expect(got).not.toMatch(/v1/); // the stat answer never came
  });
});
