/**
 * Every libFuzzer target (addon/fuzz/, built with clang and ASan+UBSan) runs
 * for a bounded time from its committed seed corpus: any crash, sanitizer
 * report, leak, timeout or broken invariant fails the test, and the runner
 * prints how to reproduce it. WEIGHTCACHE_FUZZ_SECONDS sets the time per
 * target (default 30); `npm run fuzz -- --seconds 600` runs longer by hand.
 */
import { describe, expect, it } from 'vitest';
import { nativeChecks } from './run-checks.js';

const seconds = Number(process.env.WEIGHTCACHE_FUZZ_SECONDS ?? 30);

interface FuzzResult {
  target: string;
  passed: boolean;
  runs: number;
  execPerSec: number;
  newUnits: number;
  wallMs: number;
}

describe('fuzz targets', () => {
  it(`run ${seconds} s each without a finding`, async () => {
    const { code, output } = await nativeChecks(['fuzz', '--seconds', String(seconds), '--json']);
    const last = output.trim().split('\n').pop() ?? '';
    expect(code, output).toBe(0);
    const report = JSON.parse(last) as { buildMs: number; results: FuzzResult[] };
    expect(report.results.map((r) => r.target).sort()).toEqual([
      'azure_auth_fuzzer',
      'chunk_header_fuzzer',
      'door_fastpath_fuzzer',
      'fastpath_fuzzer',
      'frame_fuzzer',
      'fuse_request_fuzzer',
      'http_parser_fuzzer',
      'read_chunk_fuzzer',
      'resp_fastpath_fuzzer',
      'resp_parser_fuzzer',
      'sigv4_fuzzer',
    ]);
    for (const r of report.results) {
      expect(r.passed, JSON.stringify(r)).toBe(true);
      expect(r.runs).toBeGreaterThan(1000);
    }
    console.log(
      'fuzz:',
      report.results.map((r) => `${r.target} ${r.runs} runs (${r.execPerSec}/s)`).join(', '),
      `build ${report.buildMs} ms`,
    );
  }, 1_800_000);
});
