/**
 * Where an operator verb (`status`, `pull`, `prefetch`, `invalidate`) finds
 * its node and which bearer token it sends, from the same flags on every verb:
 *
 *   --url URL           the node's (or sidecar's) HTTP address
 *   --config FILE       the node's own config file (default $WEIGHTCACHE_CONFIG):
 *                       its http.listen gives the address, its auth token files
 *                       the token, read with the node's own loader (src/config/)
 *   --token, --token-file  the token itself
 *
 * An explicit --url or token wins over what the config says; with neither
 * --url nor a config the address is the default http://127.0.0.1:8420.
 */
import { readFileSync } from 'node:fs';
import { allows, TokenSet } from '../auth/tokens.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CacheError } from '../errors/cache-error.js';

export const DEFAULT_NODE_URL = 'http://127.0.0.1:8420';

export interface NodeFlags {
  readonly url?: string;
  readonly config?: string;
  readonly token?: string;
  readonly tokenFile?: string;
}

/** What the verb needs the token for: the admin right, or reading a container (or anything, for status). */
export type TokenNeed = { readonly admin: true } | { readonly admin: false; readonly container?: string };

export interface NodeTarget {
  readonly url: string;
  readonly token: string | undefined;
}

export function resolveNode(
  flags: NodeFlags,
  need: TokenNeed,
  env: Record<string, string | undefined> = process.env,
): NodeTarget {
  const file = flags.config ?? (env.WEIGHTCACHE_CONFIG || undefined);
  const via = flags.config ? `--config ${file}` : `WEIGHTCACHE_CONFIG=${file}`;
  const config = file === undefined ? undefined : readNodeConfig(file, via, env);
  const url = flags.url ?? (config ? urlOf(config, via) : DEFAULT_NODE_URL);
  checkUrl(url, flags.url !== undefined ? '--url' : via);
  const token = flagToken(flags) ?? (config ? configToken(config, need, via) : undefined);
  return { url: url.replace(/\/+$/, ''), token };
}

function readNodeConfig(file: string, via: string, env: Record<string, string | undefined>): Config {
  try {
    return loadConfig({ file, env });
  } catch (err) {
    // CONFIG_INVALID keeps the loader's exit status (78) and its message, which names the key.
    throw new CacheError(
      CacheError.is(err) ? err.code : 'CONFIG_INVALID',
      `${via}: ${(err as Error).message}`,
    );
  }
}

/** The address the node listens on, as a URL this host can reach. */
function urlOf(config: Config, via: string): string {
  const { host, port } = config.http.listen;
  if (port === 0) {
    throw new CacheError(
      'BAD_REQUEST',
      `${via}: http.listen has port 0 (the node picks one at start): pass --url with the port it logged`,
    );
  }
  // A wildcard listener is reached on loopback from the same host.
  const reach = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const h = reach.includes(':') ? `[${reach}]` : reach;
  return `${config.http.tls ? 'https' : 'http'}://${h}:${port}`;
}

function checkUrl(url: string, from: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CacheError(
      'BAD_REQUEST',
      `${from}: not a URL: ${JSON.stringify(url)} (expected e.g. ${DEFAULT_NODE_URL})`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new CacheError('BAD_REQUEST', `${from}: ${JSON.stringify(url)} is not an http:// or https:// URL`);
  }
}

/** --token, or the first field of the first line of --token-file (a mounted Secret, or a tokens-file line with scopes). */
function flagToken(o: NodeFlags): string | undefined {
  if (o.token) return o.token;
  if (!o.tokenFile) return undefined;
  let text: string;
  try {
    text = readFileSync(o.tokenFile, 'utf8');
  } catch (err) {
    throw new CacheError('BAD_REQUEST', `--token-file ${o.tokenFile}: ${(err as Error).message}`);
  }
  const token = text.trim().split(/\s+/)[0];
  if (!token) throw new CacheError('BAD_REQUEST', `--token-file ${o.tokenFile}: the file is empty`);
  return token;
}

/**
 * A token from the node's token files that grants what the verb needs: an
 * admin token for admin verbs; for reads a read token whose scope covers the
 * container (else an admin token, which reads everything). No auth configured:
 * no token.
 */
function configToken(config: Config, need: TokenNeed, via: string): string | undefined {
  const { tokensFile, adminTokensFile } = config.auth;
  let tokens: TokenSet | null;
  try {
    tokens = TokenSet.load({ tokensFile, adminTokensFile });
  } catch (err) {
    throw new CacheError('CONFIG_INVALID', `${via}: ${(err as Error).message}`);
  }
  if (!tokens) return undefined;
  const keys = tokens.signingKeys();
  const admin = keys.find((k) => k.grant.admin)?.secret;
  if (need.admin) {
    if (admin) return admin;
    throw new CacheError(
      'BAD_REQUEST',
      `${via}: this verb needs an admin token and auth.adminTokensFile is not set (pass --token or --token-file)`,
    );
  }
  const reader = keys.find(
    (k) => !k.grant.admin && (need.container === undefined || allows(k.grant, need.container)),
  )?.secret;
  if (reader ?? admin) return reader ?? admin;
  throw new CacheError(
    'BAD_REQUEST',
    `${via}: no token in ${tokensFile} may read container ${need.container} (pass --token or --token-file)`,
  );
}
