/**
 * Builds frames byte by byte, independently of the addon's encoder, so tests
 * can send what a buggy or hostile peer would: wrong versions, bad checksums,
 * oversized lengths, truncations.
 */
import { crc32c } from '../../src/chunk/checksum.js';
import { encodeHello } from '../../src/transport/messages.js';
import { FrameType, HEADER_BYTES, PROTOCOL_VERSION } from '../../src/transport/protocol.js';

export interface RawFrame {
  type: number;
  version?: number;
  flags?: number;
  requestId?: number;
  meta?: Buffer;
  payload?: Buffer;
  /** Overrides the declared payload length (to lie about it). */
  payloadLength?: number;
  breakHeaderCrc?: boolean;
}

export function rawFrame(f: RawFrame): Buffer {
  const meta = f.meta ?? Buffer.alloc(0);
  const payload = f.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(HEADER_BYTES);
  h[0] = 0x57;
  h[1] = 0x43;
  h[2] = f.version ?? PROTOCOL_VERSION;
  h[3] = f.type;
  h.writeUInt16LE(f.flags ?? 0, 4);
  h.writeUInt32LE(f.requestId ?? 0, 8);
  h.writeUInt32LE(meta.length, 12);
  h.writeBigUInt64LE(BigInt(f.payloadLength ?? payload.length), 16);
  h.writeUInt32LE(payload.length ? crc32c(payload) : 0, 24);
  let crc = crc32c(meta, crc32c(h.subarray(0, 28)));
  if (f.breakHeaderCrc) crc ^= 1;
  h.writeUInt32LE(crc >>> 0, 28);
  return Buffer.concat([h, meta, payload]);
}

export function helloFrame(minVersion = 1, maxVersion = PROTOCOL_VERSION, version = maxVersion): Buffer {
  const meta = encodeHello({
    minVersion,
    maxVersion,
    features: 0,
    maxFrameBytes: 16 << 20,
    maxInFlight: 256,
    nodeId: 'raw-test',
    extensions: [],
  });
  return rawFrame({ type: FrameType.HELLO, version, meta });
}
