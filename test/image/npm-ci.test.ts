/**
 * `npm ci` accepts the lock file: it refuses a package-lock.json that is out of
 * sync with package.json or lacks a package the tree needs (biome's optional
 * platform packages were once missing), and the Dockerfile and fresh clones
 * install with it. A dry run on a copy of the two files checks exactly that in
 * seconds, installing nothing (`--prefer-offline`: the npm cache `npm install`
 * filled answers; only a missing entry would go to the registry).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

it('npm ci accepts package-lock.json as it is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-npm-ci-'));
  try {
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
    const r = spawnSync(
      'npm',
      [
        'ci',
        '--dry-run',
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 120_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.error, out).toBeUndefined();
    expect(
      r.status,
      `npm ci refuses the lock file; run \`npm install\` and commit package-lock.json:\n${out}`,
    ).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);
