/**
 * The addon's JavaScript tests again, against a build of the addon with
 * AddressSanitizer and UndefinedBehaviorSanitizer (scripts/native-checks.mjs
 * asan): every test must pass and no process may write a sanitizer report.
 * The files it runs are listed in scripts/native-checks.mjs (ASAN_TESTS).
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeChecks, root } from './run-checks.js';

describe('the addon under ASan+UBSan', () => {
  it('passes its tests with no sanitizer report', async () => {
    const { code, output } = await nativeChecks(['asan']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/asan: vitest exited 0; 0 sanitizer report\(s\)/);
    expect(output).toMatch(/Test Files +\d+ passed/);
    // The build really is instrumented (and so the run above really was checked).
    const nm = spawnSync(
      'nm',
      ['-D', '--undefined-only', resolve(root, 'addon/build-checks/asan/weightcache.node')],
      {
        encoding: 'utf8',
      },
    );
    expect(nm.stdout).toMatch(/__asan_report_load/);
    expect(nm.stdout).toMatch(/__ubsan_handle_/);
  }, 2_400_000);
});
