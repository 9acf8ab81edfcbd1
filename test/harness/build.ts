/**
 * vitest globalSetup: compile src/ to dist/ once before any test spawns
 * `bin/weightcache.js`, so child processes always run the code under test.
 * (The native addon is built by `npm install`.)
 *
 * Type errors do not stop the build here: tsc still emits, and `npm test`
 * runs `npm run typecheck` before vitest, so they fail the suite there —
 * once, with tsc's own report, instead of failing every test file.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  const root = resolve(import.meta.dirname, '../..');
  const tsc = resolve(root, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`build: tsc reported errors (dist/ was still emitted):\n${r.stdout}${r.stderr}\n`);
  }
}
