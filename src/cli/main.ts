/**
 * The `weightcache` program: one binary, verbs per role (node, sidecar, and the
 * operator verbs; README.md). Errors print one line naming what was wrong and exit non-zero.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { CacheError } from '../errors/cache-error.js';
import { VERSION } from '../node/version.js';

// Each verb loads only its own code: a `pull` on a GPU host should not pay for
// importing the node stack (Azure SDK, tiers, transport) before it starts.
const runNode: typeof import('./node.js').runNode = async (...a) => (await import('./node.js')).runNode(...a);
const runPull: typeof import('./pull.js').runPull = async (...a) => (await import('./pull.js')).runPull(...a);
const runPrefetch: typeof import('./prefetch.js').runPrefetch = async (...a) =>
  (await import('./prefetch.js')).runPrefetch(...a);
const runStatus: typeof import('./status.js').runStatus = async (...a) =>
  (await import('./status.js')).runStatus(...a);
const runInvalidate: typeof import('./invalidate.js').runInvalidate = async (...a) =>
  (await import('./invalidate.js')).runInvalidate(...a);

const collect = (v: string, all: string[]) => [...all, v];

interface TokenFlags {
  token?: string;
  tokenFile?: string;
}

/** --token, or the first field of the first line of --token-file (a mounted Secret, or a tokens-file line with scopes). */
function tokenOf(o: TokenFlags): string | undefined {
  if (o.token) return o.token;
  if (!o.tokenFile) return undefined;
  try {
    return readFileSync(o.tokenFile, 'utf8').trim().split(/\s+/)[0] || undefined;
  } catch (err) {
    throw new CacheError('BAD_REQUEST', `--token-file ${o.tokenFile}: ${(err as Error).message}`);
  }
}

interface PullFlags extends TokenFlags {
  to: string;
  from: string;
  concurrency: number;
  retries: number;
  force: boolean;
  quiet: boolean;
}

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
    .option('--insecure', 'allow listening beyond loopback without authentication (auth.insecure)', false)
    .action((o: { config?: string; set: string[]; seedDemo: boolean; insecure: boolean }) =>
      runNode({ ...o, set: o.insecure ? [...o.set, 'auth.insecure=true'] : o.set }),
    );

  program
    .command('sidecar')
    .description(
      "run a GPU host's sidecar: reads chunks from their owners, keeps a small local tier, serves loopback and a unix socket",
    )
    .option('-c, --config <file>', 'YAML config file (default: $WEIGHTCACHE_CONFIG)')
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [])
    .option('--insecure', 'allow listening beyond loopback without authentication (auth.insecure)', false)
    .action((o: { config?: string; set: string[]; insecure: boolean }) =>
      runNode(
        { ...o, set: o.insecure ? [...o.set, 'auth.insecure=true'] : o.set, seedDemo: false },
        'sidecar',
      ),
    );

  program
    .command('status')
    .description("print a node's status (tiers, origin, readiness)")
    .option('--url <url>', 'node or sidecar HTTP address', 'http://127.0.0.1:8420')
    .option('--json', 'print the raw JSON', false)
    .option('--timeout <ms>', 'request timeout in milliseconds', (v) => Number(v), 5000)
    .option('--token <token>', 'bearer token, where the node has auth')
    .option('--token-file <file>', 'read the bearer token from a file')
    .action((o: { url: string; json: boolean; timeout: number } & TokenFlags) =>
      runStatus({ url: o.url, json: o.json, timeoutMs: o.timeout, token: tokenOf(o) }),
    );

  program
    .command('pull')
    .description(
      'materialise a model directory through a node or sidecar: pinned, verified, atomic, resumable',
    )
    .argument('<container/prefix>', 'the model, e.g. demo/tiny-llama')
    .requiredOption('--to <dir>', 'target directory (appears only once complete)')
    .option('--from <url>', 'node or sidecar HTTP address', 'http://127.0.0.1:8420')
    .option('--concurrency <n>', 'chunk reads in flight', (v) => Number(v), 8)
    .option('--retries <n>', 'retries per chunk on 502/503/504, resets, bad checksums', (v) => Number(v), 4)
    .option('--force', 'replace DIR if it exists', false)
    .option('-q, --quiet', 'no progress, no summary', false)
    .option('--token <token>', 'bearer token, where the node or sidecar has auth')
    .option('--token-file <file>', 'read the bearer token from a file (e.g. a mounted Secret)')
    .action((target: string, o: PullFlags) =>
      runPull({
        target,
        to: o.to,
        from: o.from,
        concurrency: o.concurrency,
        attempts: o.retries + 1,
        force: o.force,
        quiet: o.quiet,
        token: tokenOf(o),
      }),
    );

  program
    .command('prefetch')
    .description('warm a model in the cache (POST /v1/prefetch) and follow the job')
    .argument('<container/prefix>', 'the model, e.g. demo/tiny-llama')
    .option('--url <url>', 'node HTTP address', 'http://127.0.0.1:8420')
    .option('--no-wait', 'print the job id and return without following it')
    .option('-q, --quiet', 'no progress', false)
    .option('--token <token>', 'admin bearer token, where the node has auth')
    .option('--token-file <file>', 'read the bearer token from a file (e.g. a mounted Secret)')
    .action((target: string, o: { url: string; wait: boolean; quiet: boolean } & TokenFlags) =>
      runPrefetch({ target, url: o.url, wait: o.wait, quiet: o.quiet, pollMs: 500, token: tokenOf(o) }),
    );

  program
    .command('invalidate')
    .description(
      'make the cluster re-resolve a name (POST /v1/invalidate); returns once no new read anywhere gets the old version',
    )
    .argument(
      '<container/key>',
      'the object, e.g. models/llama/config.json (with --prefix: container/prefix)',
    )
    .option(
      '--prefix',
      'invalidate every name under a key prefix (container/ alone: the whole container)',
      false,
    )
    .option('--url <url>', 'node HTTP address', 'http://127.0.0.1:8420')
    .option('--node <url>', 'the same as --url')
    .option('--json', "print the node's answer as JSON", false)
    .option(
      '--timeout <ms>',
      'give up after this long (0: wait; it takes at most about one lease term)',
      (v) => Number(v),
      0,
    )
    .option('--token <token>', 'admin bearer token, where the node has auth')
    .option('--token-file <file>', 'read the bearer token from a file (e.g. a mounted Secret)')
    .action(
      (
        target: string,
        o: { prefix: boolean; url: string; node?: string; json: boolean; timeout: number } & TokenFlags,
      ) =>
        runInvalidate({
          target,
          prefix: o.prefix,
          url: o.node ?? o.url,
          json: o.json,
          timeoutMs: o.timeout,
          token: tokenOf(o),
        }),
    );

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const msg = err instanceof CacheError ? `${err.code}: ${err.message}` : (err as Error).message;
    process.stderr.write(`weightcache: ${msg}\n`);
    process.exit(err instanceof CacheError && err.code === 'CONFIG_INVALID' ? 78 : 1);
  }
}
