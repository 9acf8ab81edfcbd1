/**
 * Installs the Debian tools the load test drives (nginx, varnish, wrk, ...).
 *
 * The image ships none of them and nothing installed by hand survives a new
 * machine, so the runner installs what it needs itself. Idempotent: a tool
 * already on PATH costs one `command -v`; `apt-get update` runs at most once
 * per process and only when something is missing.
 */
import { spawnSync } from 'node:child_process';

/** command on PATH → Debian package that provides it. */
export const DEBIAN_TOOLS: Readonly<Record<string, string>> = {
  nginx: 'nginx',
  varnishd: 'varnish',
  wrk: 'wrk',
  iperf3: 'iperf3',
  fio: 'fio',
  'redis-server': 'redis-server',
  gcc: 'gcc',
};

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

let updated = false;

/**
 * Makes every command in `cmds` available. Returns, per command that is still
 * missing afterwards, the reason (so a scenario can report "not available").
 */
export function ensureTools(cmds: readonly string[]): Map<string, string> {
  const missing = cmds.filter((c) => !hasCommand(c));
  const failed = new Map<string, string>();
  if (missing.length === 0) return failed;
  const pkgs = [...new Set(missing.map((c) => DEBIAN_TOOLS[c] ?? c))];
  if (process.getuid?.() !== 0) {
    for (const c of missing)
      failed.set(c, `${c} not installed and not root (apt-get install -y ${pkgs.join(' ')})`);
    return failed;
  }
  // Package maintainer scripts would start nginx/varnish/redis as system
  // services on their default ports; policy-rc.d exit 101 forbids that, so the
  // only instances running are the ones this runner starts and stops by PID.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const noStart =
    'printf "#!/bin/sh\\nexit 101\\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d';
  const hadPolicy = spawnSync('test', ['-e', '/usr/sbin/policy-rc.d']).status === 0;
  if (!hadPolicy) spawnSync('sh', ['-c', noStart], { stdio: 'inherit' });
  try {
    if (!updated) {
      process.stderr.write(`loadtest: apt-get update (to install ${pkgs.join(' ')})\n`);
      spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
      updated = true;
    }
    const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    if (r.status !== 0) process.stderr.write(`loadtest: apt-get install exited ${r.status}\n`);
  } finally {
    if (!hadPolicy) spawnSync('rm', ['-f', '/usr/sbin/policy-rc.d']);
  }
  for (const c of missing) {
    if (!hasCommand(c))
      failed.set(c, `${c} could not be installed (apt-get install ${DEBIAN_TOOLS[c] ?? c})`);
  }
  return failed;
}
