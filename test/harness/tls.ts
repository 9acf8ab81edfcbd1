/**
 * A self-signed certificate for 127.0.0.1, made with the system's openssl:
 * what a test needs to start a node with `http.tls` / `resp.tls`.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface CertFiles {
  readonly key: string;
  readonly cert: string;
}

/** Writes key.pem and cert.pem (valid one day, SAN IP:127.0.0.1) into `dir`. */
export function selfSignedCert(dir: string): CertFiles {
  const files = { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') };
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    { stdio: 'ignore' },
  );
  return files;
}
