/**
 * fio with O_DIRECT on the file system the NVMe tier lives on: the disk
 * ceiling an NVMe-tier hit can approach (no page cache on either side).
 */
import { runTimed } from '../timed.js';

export interface FioJob {
  readonly rw: 'read' | 'randread';
  readonly blockBytes: number;
  readonly iodepth: number;
}

export interface FioResult {
  readonly gbps: number;
  readonly iops: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cores: number;
}

interface FioJson {
  jobs?: {
    read?: { bw_bytes?: number; iops?: number; clat_ns?: { percentile?: Record<string, number> } };
  }[];
}

export async function runFio(file: string, job: FioJob, seconds: number): Promise<FioResult> {
  const args = [
    '--name=ceiling',
    `--filename=${file}`,
    '--readonly',
    `--rw=${job.rw}`,
    `--bs=${job.blockBytes}`,
    '--direct=1',
    '--ioengine=libaio',
    `--iodepth=${job.iodepth}`,
    `--runtime=${seconds}`,
    '--time_based',
    '--ramp_time=500ms',
    '--output-format=json',
  ];
  const t = await runTimed('fio', args, seconds * 1000 + 60_000);
  if (t.exitError) throw new Error(t.exitError);
  // fio may print notices before its JSON.
  const j = JSON.parse(t.stdout.slice(t.stdout.indexOf('{'))) as FioJson;
  const read = j.jobs?.[0]?.read;
  if (!read?.bw_bytes) throw new Error('fio: no read bandwidth in its JSON');
  const pct = read.clat_ns?.percentile ?? {};
  return {
    gbps: read.bw_bytes / 1e9,
    iops: read.iops ?? 0,
    p50Ms: (pct['50.000000'] ?? Number.NaN) / 1e6,
    p99Ms: (pct['99.000000'] ?? Number.NaN) / 1e6,
    cores: t.cores,
  };
}
