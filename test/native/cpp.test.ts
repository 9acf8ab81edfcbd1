/**
 * The C++ unit-test drivers of the native code that parses input
 * (addon/test/*.cc), built plainly and with ASan+UBSan (the store's and the
 * fast path's binding table also with TSan), with leak detection on: any failed case or sanitizer report fails the run.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeChecks, root } from './run-checks.js';

describe('C++ unit tests of the native code', () => {
  it('pass, plainly and under ASan+UBSan (the store under TSan too)', async () => {
    const { code, output } = await nativeChecks(['unit']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/^ok +unit\/http_parser_test .*, 0 failures$/m);
    expect(output).toMatch(/^ok +unit-asan\/http_parser_test .*, 0 failures$/m);
    expect(output).toMatch(/^ok +unit\/resp_parser_test .*, 0 failures$/m);
    expect(output).toMatch(/^ok +unit-asan\/resp_parser_test .*, 0 failures$/m);
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/doors_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/azure_door_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/azure_auth_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/sigv4_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/resp_fastpath_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/chunk_serve_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan', 'unit-tsan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/store_test .*: \\d+ tests, 0 failed checks$`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/nvme_test .*: native NVMe tests passed`, 'm'));
    for (const v of ['unit', 'unit-asan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/disk_reads_test .*: \\d+ checks, 0 failures$`, 'm'));
    for (const v of ['unit', 'unit-asan', 'unit-tsan'])
      expect(output).toMatch(new RegExp(`^ok +${v}/fastpath_test .*: \\d+ checks, 0 failures$`, 'm'));
  }, 1_200_000);

  it('run with a sanitizer that would catch a bug (an out-of-bounds read planted on request)', async () => {
    // The harness itself is checked: the ASan build must really be instrumented and report.
    const bin = resolve(root, 'addon/build-checks/unit-asan/http_parser_test');
    const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(bin, ['--plant-overflow'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('close', (code) => done({ code, stderr }));
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/AddressSanitizer: heap-buffer-overflow/);
  }, 60_000);
});
