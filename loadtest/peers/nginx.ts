/**
 * nginx serving a directory with sendfile: the peer a user would put in front
 * of checkpoint files on local disk. Its own config in a temp dir, a high
 * loopback port, stopped by PID.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from '../ports.js';
import { start } from '../processes.js';
import type { Server } from './server.js';

export interface NginxOptions {
  readonly root: string;
  readonly workDir: string;
  readonly workers?: number;
  /** Serve HTTPS with this certificate (TLS 1.2/1.3 with OpenSSL's defaults; no kTLS, see docs/performance.md). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export async function startNginx(opts: NginxOptions): Promise<Server> {
  const port = await freePort();
  const conf = join(opts.workDir, 'nginx.conf');
  const t = (name: string) => join(opts.workDir, name);
  // tcp_nopush off: Debian's default `on` stalls 64 KiB responses by ~44 ms
  // at times (measured), which would be a tuning artefact, not nginx's speed.
  // `user root`: the runner is root and the fixture lives in a temp dir.
  writeFileSync(
    conf,
    `daemon off;
master_process on;
user root;
worker_processes ${opts.workers ?? 'auto'};
pid ${t('nginx.pid')};
error_log ${t('nginx-error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush off;
  tcp_nodelay on;
  keepalive_timeout 120s;
  keepalive_requests 10000000;
  default_type application/octet-stream;
  client_body_temp_path ${t('nginx-body')};
  proxy_temp_path ${t('nginx-proxy')};
  fastcgi_temp_path ${t('nginx-fastcgi')};
  uwsgi_temp_path ${t('nginx-uwsgi')};
  scgi_temp_path ${t('nginx-scgi')};
  server {
    listen 127.0.0.1:${port}${opts.tls ? ' ssl' : ''};
${opts.tls ? `    ssl_certificate ${opts.tls.cert};\n    ssl_certificate_key ${opts.tls.key};\n` : ''}    root ${opts.root};
    location / { }
  }
}
`,
  );
  const p = start('nginx', 'nginx', ['-p', opts.workDir, '-c', conf, '-e', t('nginx-error.log')], {
    stopSignal: 'SIGQUIT',
  });
  await waitForPort(port, 'nginx', p.exited).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.tail()}`);
  });
  return {
    name: opts.tls ? 'nginx (TLS)' : 'nginx (sendfile)',
    port,
    pids: [p.pid],
    pathPrefix: '',
    tls: opts.tls !== undefined,
    stop: () => p.stop(),
  };
}
