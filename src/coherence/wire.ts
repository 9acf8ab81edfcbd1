/**
 * Coherence's messages on the transport (docs/coherence.md, "Wire messages"):
 * their frame types, the home's and the holder's handlers, registered on the
 * transport's `Messages` (src/transport/rpc.ts), and the requests a holder or
 * a forwarding member sends. The meta layouts are in lease-messages.ts and
 * invalidate-messages.ts; adding a message touches only this folder.
 */
import type { ObjectName } from '../origin/origin.js';
import { FEATURE_CONTENT_MD5 } from '../transport/protocol.js';
import type { Caller, CallOptions, Messages, RequestChannel } from '../transport/rpc.js';
import {
  decodeInvalidate,
  decodeInvalidateAnswer,
  encodeInvalidate,
  encodeInvalidateAnswer,
  type InvalidateAnswer,
} from './invalidate-messages.js';
import type { InvalidationTarget } from './invalidation.js';
import {
  decodeLeaseAck,
  decodeLeaseAckResponse,
  decodeLeaseGrantRequest,
  decodeLeaseGrantResponse,
  decodeLeaseRenewRequest,
  decodeLeaseRevoke,
  encodeLeaseAck,
  encodeLeaseAckResponse,
  encodeLeaseGrantRequest,
  encodeLeaseGrantResponse,
  encodeLeaseRenewRequest,
  encodeLeaseRevokeResponse,
  type LeaseAck,
  type LeaseGrantResponse,
  type LeaseRevoke,
  type LeaseVersion,
} from './lease-messages.js';

/** Frame types of protocol v1 (docs/wire-protocol.md, "Frame types"). */
export const CoherenceFrame = {
  LEASE_GRANT: 0x20,
  LEASE_RENEW: 0x21,
  LEASE_REVOKE: 0x22,
  LEASE_ACK: 0x23,
  INVALIDATE: 0x24,
} as const;

/** A holder's connection, as its home uses it to send LEASE_REVOKE back (one object per connection). */
export type HolderConnection = Caller['channel'];

/** What a home answers on the transport (src/coherence/home.ts implements it). */
export interface LeaseService {
  /** LEASE_GRANT (held undefined) or LEASE_RENEW from holder `holderId` (its HELLO nodeId), on `conn`. */
  lease(
    name: ObjectName,
    holderId: string,
    held: LeaseVersion | undefined,
    signal: AbortSignal,
    conn: HolderConnection,
  ): Promise<LeaseGrantResponse>;
  /** LEASE_ACK: a revocation acknowledged on a new connection, or revokeId 0: a lease released early. */
  ack(ack: LeaseAck, holderId: string): void;
  /** INVALIDATE from a peer: answered when complete here. */
  invalidate(target: InvalidationTarget, signal: AbortSignal): Promise<InvalidateAnswer>;
}

/** The home side: LEASE_GRANT, LEASE_RENEW, LEASE_ACK and INVALIDATE served by `home`. */
export function serveHome(
  messages: Messages,
  home: LeaseService,
  /** An INVALIDATE from another member completed here (before it is answered). */
  onInvalidated?: (target: InvalidationTarget) => void,
): void {
  messages.register(CoherenceFrame.LEASE_GRANT, 'LEASE_GRANT', {
    decode: decodeLeaseGrantRequest,
    serve: async (q, { signal, from }) =>
      encodeLeaseGrantResponse(
        forHolder(await home.lease(q, from.nodeId, undefined, signal, from.channel), from.features),
      ),
  });
  messages.register(CoherenceFrame.LEASE_RENEW, 'LEASE_RENEW', {
    decode: decodeLeaseRenewRequest,
    serve: async (q, { signal, from }) =>
      encodeLeaseGrantResponse(
        forHolder(await home.lease(q, from.nodeId, q.held, signal, from.channel), from.features),
      ),
  });
  messages.register(CoherenceFrame.LEASE_ACK, 'LEASE_ACK', {
    decode: decodeLeaseAck,
    serve: async (q, { from }) => {
      home.ack(q, from.nodeId);
      return encodeLeaseAckResponse();
    },
  });
  messages.register(CoherenceFrame.INVALIDATE, 'INVALIDATE', {
    decode: decodeInvalidate,
    serve: async (q, { signal }) => {
      const answer = await home.invalidate(q, signal);
      onInvalidated?.(q);
      return encodeInvalidateAnswer(answer);
    },
  });
}

/**
 * A lease answer as this holder decodes it: the Content-MD5 field goes only to
 * a holder that announced FEATURE_CONTENT_MD5 in its HELLO (an older one would
 * refuse the byte after homeIncarnation); to one that did, it always goes, null
 * when the origin keeps none.
 */
export function forHolder(a: LeaseGrantResponse, holderFeatures: number): LeaseGrantResponse {
  if (a.status !== 'ok') return a;
  if ((holderFeatures & FEATURE_CONTENT_MD5) !== 0) return { ...a, contentMd5: a.contentMd5 ?? null };
  const { contentMd5: _, ...v1 } = a;
  return v1;
}

/** The holder side: LEASE_REVOKE from a home, on this process's own connection to it. */
export function serveHolder(messages: Messages, onRevoke: (r: LeaseRevoke) => void): void {
  messages.register(CoherenceFrame.LEASE_REVOKE, 'LEASE_REVOKE', {
    decode: decodeLeaseRevoke,
    serve: async (r) => {
      onRevoke(r);
      return encodeLeaseRevokeResponse(); // the response is the acknowledgement
    },
  });
}

/** LEASE_GRANT, or LEASE_RENEW when `held` is given. */
export async function requestLease(
  to: RequestChannel,
  name: ObjectName,
  held: LeaseVersion | undefined,
  opts?: CallOptions,
): Promise<LeaseGrantResponse> {
  const r = held
    ? await to.request(CoherenceFrame.LEASE_RENEW, encodeLeaseRenewRequest({ ...name, held }), opts)
    : await to.request(CoherenceFrame.LEASE_GRANT, encodeLeaseGrantRequest(name), opts);
  return decodeLeaseGrantResponse(r.meta);
}

/** LEASE_ACK: a revocation acknowledged on a new connection, or (revokeId 0) a lease released early. */
export async function requestLeaseAck(to: RequestChannel, ack: LeaseAck, opts?: CallOptions): Promise<void> {
  decodeLeaseAckResponse((await to.request(CoherenceFrame.LEASE_ACK, encodeLeaseAck(ack), opts)).meta);
}

/** INVALIDATE: answered when the invalidation completed at the peer (give it a long `timeoutMs`). */
export async function requestInvalidate(
  to: RequestChannel,
  target: InvalidationTarget,
  opts?: CallOptions,
): Promise<InvalidateAnswer> {
  return decodeInvalidateAnswer(
    (await to.request(CoherenceFrame.INVALIDATE, encodeInvalidate(target), opts)).meta,
  );
}
