#!/usr/bin/env node
// Builds the native addon (addon/) against the headers of the node that runs
// this script. node-gyp would otherwise try to download headers, and this
// workplace (like many air-gapped build farms) has no route to them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(
    `weightcache: no Node headers under ${nodedir}/include/node; install the headers of this node ` +
      `(Debian: nodejs-dev / libnode-dev, or an official tarball) and run npm install again.`,
  );
  process.exit(1);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [gyp, 'rebuild', '--directory', 'addon', `--nodedir=${nodedir}`, '--jobs', '2'];
if (process.env.WEIGHTCACHE_ADDON_DEBUG === '1') args.push('--debug');
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.error('weightcache: building the native addon failed (see node-gyp output above)');
  process.exit(result.status ?? 1);
}
