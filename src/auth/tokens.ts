/**
 * Bearer tokens for HTTP and RESP, from files (a Kubernetes Secret mounted as
 * a file). One token per line, optionally followed by the containers it may
 * read: `TOKEN` (all containers) or `TOKEN models,datasets`. Blank lines and
 * `#` comments (whole lines, or after white space) are ignored.
 *
 * Lookups compare SHA-256 digests of the presented token against every known
 * token with timingSafeEqual, always visiting every entry, so the time taken
 * says nothing about how much of a token was right or which one matched.
 *
 * The S3 and Azure doors authenticate by HMAC signatures, which can only be
 * checked with the secret itself: for them a token is also a signing secret
 * (the S3 secret access key, the Azure account key's bytes), found by its
 * public key id (S3) or tried in turn (Azure names no key).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CacheError } from '../errors/cache-error.js';

export const MIN_TOKEN_LENGTH = 16;
export const MAX_TOKENS = 10_000;
/** Containers one token may list (the native doors copy a grant to their threads, bounded alike). */
export const MAX_TOKEN_CONTAINERS = 10_000;

export interface Grant {
  /** null: every container. */
  readonly containers: ReadonlySet<string> | null;
  readonly admin: boolean;
}

interface Entry {
  readonly digest: Buffer;
  readonly grant: Grant;
  /** The token itself: the HMAC key of S3 and Azure signatures. */
  readonly secret: string;
}

/** A token as a signing secret, for the doors that verify HMAC signatures. */
export interface SigningKey {
  readonly secret: string;
  readonly grant: Grant;
}

export class TokenSet {
  private readonly byKeyId: ReadonlyMap<string, Entry>;

  private constructor(private readonly entries: readonly Entry[]) {
    this.byKeyId = new Map(entries.map((e) => [keyIdOf(e.secret), e]));
  }

  /** Reads the token files; an absent file name contributes nothing. */
  static load(files: { tokensFile: string | null; adminTokensFile: string | null }): TokenSet | null {
    if (!files.tokensFile && !files.adminTokensFile) return null;
    const entries: Entry[] = [];
    if (files.tokensFile) entries.push(...parse(files.tokensFile, false));
    if (files.adminTokensFile) entries.push(...parse(files.adminTokensFile, true));
    if (entries.length === 0) {
      throw new CacheError(
        'CONFIG_INVALID',
        'auth: the token files hold no tokens; remove the keys to disable auth',
      );
    }
    return new TokenSet(entries);
  }

  static of(tokens: ReadonlyArray<{ token: string; admin?: boolean; containers?: string[] }>): TokenSet {
    return new TokenSet(
      tokens.map((t) => ({
        digest: digest(t.token),
        secret: t.token,
        grant: { admin: t.admin ?? false, containers: t.containers ? new Set(t.containers) : null },
      })),
    );
  }

  /** The grant of a presented token, or undefined. Constant time in the token's content. */
  check(token: string): Grant | undefined {
    const d = digest(token);
    let found: Grant | undefined;
    for (const e of this.entries) {
      // No early exit: every entry is compared whatever matched.
      if (timingSafeEqual(d, e.digest) && !found) found = e.grant;
    }
    return found;
  }

  /** The token whose public key id (keyIdOf) this is: the S3 door's access key id. */
  signingKey(keyId: string): SigningKey | undefined {
    return this.byKeyId.get(keyId);
  }

  /** Every token as a signing secret: Azure's SharedKey and SAS name no key, so each is tried. */
  signingKeys(): readonly SigningKey[] {
    return this.entries;
  }

  /**
   * Each token's digest and grant, for the native door's fast path, which
   * compares digests the same way (addon/src/auth/token_table.h), with the
   * token itself as the secret of signed S3 reads it verifies
   * (addon/src/http/doors/sigv4.h). The addon keeps them in memory only.
   */
  grants(): Array<{ digest: Buffer; admin: boolean; containers: string[] | null; secret: string }> {
    return this.entries.map((e) => ({
      digest: e.digest,
      admin: e.grant.admin,
      containers: e.grant.containers ? [...e.grant.containers] : null,
      secret: e.secret,
    }));
  }

  /** Plain token values for the RESP door's AUTH (it checks through check() too). */
  get size(): number {
    return this.entries.length;
  }
}

export function allows(grant: Grant, container: string): boolean {
  return grant.admin || grant.containers === null || grant.containers.has(container);
}

/**
 * A token's public key id: the first 20 hex digits of its SHA-256
 * (`printf %s "$TOKEN" | sha256sum | cut -c1-20`). It names the token where a
 * protocol sends a key id in the clear (S3's access key id, also inside
 * presigned URLs) without giving the token away.
 */
export function keyIdOf(token: string): string {
  return digest(token).toString('hex').slice(0, 20);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function parse(file: string, admin: boolean): Entry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CacheError('CONFIG_INVALID', `auth: cannot read token file ${file}: ${(err as Error).message}`);
  }
  const out: Entry[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    // A '#' at the start of a line or after white space starts a comment (tokens never contain white space).
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const [token = '', scope, ...extra] = line.split(/\s+/);
    if (extra.length > 0) {
      throw new CacheError(
        'CONFIG_INVALID',
        `auth: ${file}:${i + 1}: expected "TOKEN [container,container]"`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new CacheError(
        'CONFIG_INVALID',
        `auth: ${file}:${i + 1}: token shorter than ${MIN_TOKEN_LENGTH} characters (use e.g. openssl rand -hex 32)`,
      );
    }
    const containers = scope ? new Set(scope.split(',').filter(Boolean)) : null;
    if (containers && containers.size > MAX_TOKEN_CONTAINERS) {
      throw new CacheError(
        'CONFIG_INVALID',
        `auth: ${file}:${i + 1}: a token lists ${containers.size} containers, more than ${MAX_TOKEN_CONTAINERS}`,
      );
    }
    out.push({
      digest: digest(token),
      secret: token,
      grant: { admin, containers: admin ? null : containers },
    });
    if (out.length > MAX_TOKENS)
      throw new CacheError('CONFIG_INVALID', `auth: ${file} has more than ${MAX_TOKENS} tokens`);
  }
  return out;
}

/** The cluster secret for the transport: the file's content, trimmed, at least 32 bytes. */
export function loadClusterSecret(file: string | null): Buffer | null {
  if (!file) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new CacheError(
      'CONFIG_INVALID',
      `auth: cannot read cluster secret file ${file}: ${(err as Error).message}`,
    );
  }
  if (Buffer.byteLength(text) < 32) {
    throw new CacheError(
      'CONFIG_INVALID',
      `auth: the cluster secret in ${file} is shorter than 32 bytes (use e.g. openssl rand -hex 32)`,
    );
  }
  return Buffer.from(text);
}
