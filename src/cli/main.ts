/**
 * The `weightcache` program: one binary, verbs per role (DESIGN.md
 * "Processes"). Errors print one line naming what was wrong and exit non-zero.
 */
import { Command } from 'commander';
import { CacheError } from '../errors/cache-error.js';
import { VERSION } from '../node/version.js';
import { runNode } from './node.js';
import { runStatus } from './status.js';

const collect = (v: string, all: string[]) => [...all, v];

export async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('weightcache')
    .description('Distributed read cache for LLM inference checkpoints')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('node')
    .description('run a cache node (HTTP range reads over DRAM and NVMe tiers in front of an origin)')
    .option('-c, --config <file>', 'YAML config file (default: $WEIGHTCACHE_CONFIG, else built-in defaults)')
    .option(
      '--set <key=value>',
      'override a config key, e.g. --set cache.dram.maxBytes=2GiB (repeatable)',
      collect,
      [],
    )
    .option('--seed-demo', 'generate the demo checkpoint under the fs origin root first', false)
    .action((o: { config?: string; set: string[]; seedDemo: boolean }) => runNode(o));

  program
    .command('status')
    .description("print a node's status (tiers, origin, readiness)")
    .option('--url <url>', 'node or sidecar HTTP address', 'http://127.0.0.1:8420')
    .option('--json', 'print the raw JSON', false)
    .option('--timeout <ms>', 'request timeout in milliseconds', (v) => Number(v), 5000)
    .action((o: { url: string; json: boolean; timeout: number }) =>
      runStatus({ url: o.url, json: o.json, timeoutMs: o.timeout }),
    );

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const msg = err instanceof CacheError ? `${err.code}: ${err.message}` : (err as Error).message;
    process.stderr.write(`weightcache: ${msg}\n`);
    process.exit(err instanceof CacheError && err.code === 'CONFIG_INVALID' ? 78 : 1);
  }
}
