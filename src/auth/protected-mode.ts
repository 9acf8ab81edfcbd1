/**
 * Protected mode, as Redis has it: a process that listens beyond loopback
 * with no authentication configured would serve model weights (and, on the
 * transport, accept any peer) to the whole network. It refuses to start
 * unless the operator says so explicitly (auth.insecure / --insecure).
 */
import { isIP } from 'node:net';
import { CacheError } from '../errors/cache-error.js';

export interface Door {
  readonly name: string; // 'http.listen', 'resp.listen', 'transport.listen'
  readonly host: string;
  readonly authenticated: boolean;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host.startsWith('::ffff:127.');
  return false;
}

export function checkProtectedMode(doors: readonly Door[], insecure: boolean): void {
  const open = doors.filter((d) => !d.authenticated && !isLoopback(d.host));
  if (open.length === 0 || insecure) return;
  const list = open.map((d) => `${d.name} (${d.host})`).join(', ');
  throw new CacheError(
    'CONFIG_INVALID',
    `protected mode: ${list} ${open.length === 1 ? 'listens' : 'listen'} beyond loopback with no authentication. Configure ` +
      'auth.tokensFile (HTTP, RESP) and auth.clusterSecretFile (transport), bind to 127.0.0.1, ' +
      'or, if the network is otherwise protected, set auth.insecure: true (or pass --insecure).',
  );
}
