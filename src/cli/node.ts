/** `weightcache node`: run a cache node until SIGTERM/SIGINT, then drain. */
import { loadConfig } from '../config/load.js';
import { seedDemo } from '../demo/seed.js';
import { createLogger } from '../log/logger.js';
import { type Role, startNode } from '../node/node.js';

export interface NodeCommandOptions {
  readonly config?: string;
  readonly set: string[];
  readonly seedDemo: boolean;
}

export async function runNode(opts: NodeCommandOptions, role: Role = 'node'): Promise<void> {
  const config = loadConfig({ file: opts.config ?? process.env.WEIGHTCACHE_CONFIG, sets: opts.set });
  const log = createLogger(config.log.level);
  // Node prints process warnings to stderr as text; a node's stderr carries JSON lines only.
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn({ warning: w.name, err: w }, `process warning: ${w.message}`));
  if (opts.seedDemo) {
    if (config.origin.type !== 'fs') {
      log.warn('--seed-demo only applies to the fs origin; skipped');
    } else {
      const t0 = performance.now();
      const seeded = await seedDemo(config.origin.fs.root);
      log.info(
        {
          dir: seeded.dir,
          files: seeded.files.length,
          bytes: seeded.bytes,
          ms: Math.round(performance.now() - t0),
        },
        seeded.created ? 'demo checkpoint generated' : 'demo checkpoint present',
      );
    }
  }
  const node = await startNode(config, log, role);
  const stop = (signal: string) => {
    log.info({ signal }, 'draining');
    node.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
