/**
 * Cluster-secret authentication on the native transport: mutual
 * challenge–response with HMAC-SHA256; the secret never crosses the wire.
 *
 *   client HELLO   ext CLIENT_NONCE = nc (32 random bytes)
 *   server HELLO   features |= AUTH_REQUIRED, ext SERVER_NONCE = ns,
 *                  ext SERVER_PROOF = HMAC(secret, "wc-server" ‖ nc ‖ ns)
 *   client         verifies SERVER_PROOF (the server knows the secret), then
 *   client AUTH    meta = HMAC(secret, "wc-client" ‖ ns ‖ nc)
 *   server         verifies, answers AUTH (empty) or ERROR UNAUTHORIZED + close
 *
 * Both nonces enter both proofs, so neither side can replay a proof from
 * another connection, and the labels keep a server proof from ever being
 * valid as a client proof. A side with a secret refuses a peer without one
 * (and the reverse): mismatched configurations never talk.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const AUTH_REQUIRED = 1; // HELLO feature bit 0
export const EXT_CLIENT_NONCE = 1;
export const EXT_SERVER_NONCE = 2;
export const EXT_SERVER_PROOF = 3;
export const NONCE_BYTES = 32;

export function nonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function serverProof(secret: Buffer, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return createHmac('sha256', secret).update('wc-server').update(clientNonce).update(serverNonce).digest();
}

export function clientProof(secret: Buffer, serverNonce: Buffer, clientNonce: Buffer): Buffer {
  return createHmac('sha256', secret).update('wc-client').update(serverNonce).update(clientNonce).digest();
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(got: Buffer | undefined, want: Buffer): boolean {
  return got !== undefined && got.length === want.length && timingSafeEqual(got, want);
}

export function extension(exts: readonly { tag: number; value: Buffer }[], tag: number): Buffer | undefined {
  return exts.find((e) => e.tag === tag)?.value;
}
