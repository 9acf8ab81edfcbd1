/**
 * Constants of wire protocol v1 (docs/wire-protocol.md). The C++ side has the
 * same numbers in addon/src/transport/frame.h; test/transport/raw-frame.ts builds frames
 * byte by byte from this file to check the two agree.
 */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 32;
export const MAX_META_BYTES = 64 * 1024;

/**
 * The connection's own types, and the transport's chunk messages. Other parts
 * register their messages' types where they own them (src/coherence/wire.ts:
 * 0x20–0x24); the addon knows only HELLO..CANCEL.
 */
export const FrameType = {
  HELLO: 0x01,
  ERROR: 0x02,
  AUTH: 0x03,
  PING: 0x04,
  CANCEL: 0x05,
  READ_CHUNK: 0x10,
  STAT: 0x11,
  READ_CHUNK_RDMA: 0x40,
} as const;

export const FLAG_RESPONSE = 1;

/**
 * HELLO feature bits this build announces (bit 0 is AUTH_REQUIRED, auth.ts).
 * A message gains an optional field only towards a peer whose HELLO announced
 * the field's bit, so an older peer never receives bytes its strict decoders
 * would refuse; older peers ignore bits they do not know.
 *
 * FEATURE_CONTENT_MD5 (bit 1): the peer decodes the object's Content-MD5 at
 * the end of a STAT answer and of an `ok` LEASE_GRANT/LEASE_RENEW answer
 * (docs/wire-protocol.md, "Feature bits").
 *
 * FEATURE_STAND_IN (bit 2): the peer decodes READ_CHUNK's STAND_IN flag and
 * its report of members found down (messages.ts, READ_STAND_IN); a peer
 * without it is asked local-only, as before the flag existed.
 */
export const FEATURE_CONTENT_MD5 = 1 << 1;
export const FEATURE_STAND_IN = 1 << 2;
export const FEATURES = FEATURE_CONTENT_MD5 | FEATURE_STAND_IN;

/**
 * A request back to the connecting side that names no timeout of its own (every caller in
 * this codebase does: a home's LEASE_REVOKE waits a lease term).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Defaults; every one is overridable per server or client. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** Before authentication (docs/wire-protocol.md): the time to complete the handshake... */
export const DEFAULT_PREAUTH_TIMEOUT_MS = 5000;
/** ...connections still in the handshake at once (the rest of maxConnections is for peers)... */
export const DEFAULT_MAX_UNAUTHENTICATED = 256;
/** ...and of those, from one address (IPv6: one /64). */
export const DEFAULT_MAX_UNAUTHENTICATED_PER_ADDRESS = 16;
/** A handshake frame (HELLO, AUTH) carries at most this much meta and no payload (addon/src/transport/frame.h). */
export const HANDSHAKE_MAX_META_BYTES = 4096;
