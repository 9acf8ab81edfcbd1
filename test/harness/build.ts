/**
 * vitest globalSetup: compile src/ to dist/ once before any test spawns
 * `bin/weightcache.js`, so child processes always run the code under test.
 * (The native addon is built by `npm install`.)
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  const root = resolve(import.meta.dirname, '../..');
  const tsc = resolve(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: root });
}
