/** Runs scripts/native-checks.mjs (docs/native-checks.md) as a child process and collects its output. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');

export function nativeChecks(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve(root, 'scripts/native-checks.mjs'), ...args], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    // Colours off: the assertions read the child's report as plain text.
    child.on('close', (code) => done({ code, output: output.replace(/\x1b\[[0-9;]*m/g, '') }));
  });
}
