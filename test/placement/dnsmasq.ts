/**
 * A real DNS server for membership tests: dnsmasq (Debian package
 * dnsmasq-base) on 127.0.0.1 and a free high port, answering only from a
 * hosts file the test writes. `--local=/test/` makes it authoritative for
 * *.test, so a missing record type is NODATA and a missing name NXDOMAIN (as
 * a cluster DNS server answers), instead of REFUSED for lack of upstreams.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';

export const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => {
  try {
    execFileSync(p, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

export interface Dnsmasq {
  /** "127.0.0.1:port", for cluster.members.dns.servers. */
  readonly server: string;
  /** Rewrites the hosts file ("ip name" lines) and sends SIGHUP, which makes dnsmasq re-read it. */
  setHosts(lines: string[]): Promise<void>;
  /** SIGKILL: the server is gone, queries fail. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

export async function startDnsmasq(hosts: string[]): Promise<Dnsmasq> {
  if (!DNSMASQ) throw new Error('dnsmasq not installed (Debian: apt-get install dnsmasq-base)');
  const dir = mkdtempSync(join(tmpdir(), 'wc-dnsmasq-'));
  // dnsmasq started as root drops to "nobody" and must still read the file on SIGHUP.
  chmodSync(dir, 0o755);
  const file = join(dir, 'hosts');
  const write = (lines: string[]) =>
    writeFileSync(file, lines.map((l) => `${l}\n`).join(''), { mode: 0o644 });
  write(hosts);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = spawn(
      DNSMASQ,
      [
        '--no-daemon',
        '--no-resolv',
        '--no-hosts',
        `--addn-hosts=${file}`,
        `--port=${port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--local=/test/',
        `--pid-file=${join(dir, 'pid')}`,
        '--log-facility=-',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const server = `127.0.0.1:${port}`;
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([server]);
    let up = false;
    for (let i = 0; i < 50 && proc.exitCode === null && !up; i++) {
      // Any DNS answer (even NXDOMAIN) means it is listening.
      up = await r.resolve4('probe.test').then(
        () => true,
        (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND' || e.code === 'ENODATA',
      );
      if (!up) await new Promise((res) => setTimeout(res, 50));
    }
    if (!up) {
      proc.kill('SIGKILL');
      await exited(proc);
      // Another process may have taken the port between freePort() and bind: try another.
      if (attempt < 3) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`dnsmasq did not start: ${stderr}`);
    }
    // If the test process ends without stop() (a crash, a timeout), do not leave dnsmasq behind.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    const stop = async () => {
      process.removeListener('exit', reap);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited(proc);
    };
    return {
      server,
      async setHosts(lines) {
        write(lines);
        proc.kill('SIGHUP');
      },
      kill: stop,
      async stop() {
        await stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
