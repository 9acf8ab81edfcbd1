/**
 * Constants of wire protocol v1 (docs/wire-protocol.md). The C++ side has the
 * same numbers in addon/src/frame.h; test/transport/raw-frame.ts builds frames
 * byte by byte from this file to check the two agree.
 */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 32;
export const MAX_META_BYTES = 64 * 1024;

export const FrameType = {
  HELLO: 0x01,
  ERROR: 0x02,
  AUTH: 0x03,
  PING: 0x04,
  CANCEL: 0x05,
  READ_CHUNK: 0x10,
  STAT: 0x11,
  LEASE_GRANT: 0x20,
  LEASE_RENEW: 0x21,
  LEASE_REVOKE: 0x22,
  LEASE_ACK: 0x23,
  INVALIDATE: 0x24,
  READ_CHUNK_RDMA: 0x40,
} as const;

export const FLAG_RESPONSE = 1;

/** Defaults; every one is overridable per server or client. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_MAX_CONNECTIONS = 1024;
