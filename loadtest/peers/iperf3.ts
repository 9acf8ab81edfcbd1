/**
 * iperf3 over loopback: the ceiling for any byte mover on this machine
 * (single stream and parallel streams), measured in the same run as the
 * servers so the figures share the machine's state.
 */
import { freePort, waitForPort } from '../ports.js';
import { start } from '../processes.js';
import { runTimed } from '../timed.js';

export interface IperfResult {
  readonly gbps: number;
  readonly clientCores: number;
  readonly serverCores: number;
}

interface IperfJson {
  end?: { sum_received?: { bits_per_second?: number } };
  error?: string;
}

export async function startIperfServer() {
  const port = await freePort();
  const p = start('iperf3 -s', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)]);
  await waitForPort(port, 'iperf3 server', p.exited);
  return { port, pid: p.pid, stop: () => p.stop() };
}

/** One client run of `seconds` with `streams` parallel TCP streams; GB/s received. */
export async function runIperf(
  port: number,
  streams: number,
  seconds: number,
): Promise<{ gbps: number; cores: number }> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-P', String(streams), '-J'];
  const t = await runTimed('iperf3', args, seconds * 1000 + 30_000);
  const j = JSON.parse(t.stdout) as IperfJson;
  const bps = j.end?.sum_received?.bits_per_second;
  if (!bps) throw new Error(`iperf3: ${j.error ?? 'no sum_received in its JSON'}`);
  return { gbps: bps / 8 / 1e9, cores: t.cores };
}
