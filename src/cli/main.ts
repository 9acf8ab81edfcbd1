/**
 * The `weightcache` program: one binary, verbs per role (node, sidecar, and the
 * operator verbs; README.md). Errors print one line naming what was wrong and exit non-zero.
 */
import { Command, InvalidArgumentError } from 'commander';
import { CacheError } from '../errors/cache-error.js';
import { VERSION } from '../node/version.js';
import { DEFAULT_NODE_URL, type NodeFlags, resolveNode } from './node-flags.js';

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

/** The flags every operator verb takes to find its node (src/cli/node-flags.ts). */
function nodeFlags(cmd: Command, tokenWhat: string): Command {
  return cmd
    .option('--url <url>', `node or sidecar HTTP address (default: from --config, else ${DEFAULT_NODE_URL})`)
    .option(
      '-c, --config <file>',
      "the node's config file: its address and tokens (default: $WEIGHTCACHE_CONFIG)",
    )
    .option('--token <token>', `${tokenWhat}, where the node has auth`)
    .option('--token-file <file>', 'read the bearer token from a file (e.g. a mounted Secret)');
}

/** An old spelling of --url (`pull --from`, `invalidate --node`): the same, and both given must agree. */
function withAlias(o: NodeFlags, alias: string | undefined, flag: string): NodeFlags {
  if (alias === undefined) return o;
  if (o.url !== undefined && o.url !== alias) {
    throw new CacheError('BAD_REQUEST', `--url ${o.url} and ${flag} ${alias} disagree: pass one`);
  }
  return { ...o, url: alias };
}

/** A number flag, refused with its name when it is not one. */
function numberFlag(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be a number, got ${JSON.stringify(v)}`);
    return n;
  };
}

interface PullFlags extends NodeFlags {
  to: string;
  from?: string;
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
    .command('mount')
    .argument('<dir>', 'where to mount (created if missing; a stale mount there is replaced)')
    .description(
      'run a node (or, with --sidecar, a sidecar) that also serves a read-only FUSE mount at DIR: mount.path=DIR (docs/mount.md)',
    )
    .option('-c, --config <file>', 'YAML config file, with mount.containers (default: $WEIGHTCACHE_CONFIG)')
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [])
    .option('--sidecar', 'run as a sidecar (reads through the cluster) instead of a node', false)
    .option('--insecure', 'allow listening beyond loopback without authentication (auth.insecure)', false)
    .action((dir: string, o: { config?: string; set: string[]; sidecar: boolean; insecure: boolean }) =>
      runNode(
        {
          config: o.config,
          set: [...o.set, `mount.path=${dir}`, ...(o.insecure ? ['auth.insecure=true'] : [])],
          seedDemo: false,
        },
        o.sidecar ? 'sidecar' : 'node',
      ),
    );

  nodeFlags(
    program.command('status').description("print a node's status (tiers, origin, readiness)"),
    'bearer token',
  )
    .option('--json', 'print the raw JSON', false)
    .option('--timeout <ms>', 'request timeout in milliseconds', numberFlag('--timeout'), 5000)
    .action((o: { json: boolean; timeout: number } & NodeFlags) =>
      runStatus({ ...resolveNode(o, { admin: false }), json: o.json, timeoutMs: o.timeout }),
    );

  nodeFlags(
    program
      .command('pull')
      .description(
        'materialise a model directory through a node or sidecar: pinned, verified, atomic, resumable',
      )
      .argument('<container/prefix>', 'the model, e.g. demo/tiny-llama')
      .requiredOption('--to <dir>', 'target directory (appears only once complete)')
      .option('--from <url>', 'the same as --url'),
    'bearer token',
  )
    .option('--concurrency <n>', 'chunk reads in flight', numberFlag('--concurrency'), 8)
    .option(
      '--retries <n>',
      'retries per chunk on 502/503/504, resets, bad checksums',
      numberFlag('--retries'),
      4,
    )
    .option('--force', 'replace DIR if it exists', false)
    .option('-q, --quiet', 'no progress, no summary', false)
    .action((target: string, o: PullFlags) => {
      const node = resolveNode(withAlias(o, o.from, '--from'), {
        admin: false,
        container: target.split('/')[0],
      });
      return runPull({
        target,
        to: o.to,
        from: node.url,
        concurrency: o.concurrency,
        attempts: o.retries + 1,
        force: o.force,
        quiet: o.quiet,
        token: node.token,
      });
    });

  nodeFlags(
    program
      .command('prefetch')
      .description('warm a model in the cache (POST /v1/prefetch) and follow the job')
      .argument('<container/prefix>', 'the model, e.g. demo/tiny-llama'),
    'admin bearer token',
  )
    .option('--no-wait', 'print the job id and return without following it')
    .option('-q, --quiet', 'no progress', false)
    .action((target: string, o: { wait: boolean; quiet: boolean } & NodeFlags) =>
      runPrefetch({ ...resolveNode(o, { admin: true }), target, wait: o.wait, quiet: o.quiet, pollMs: 500 }),
    );

  nodeFlags(
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
      .option('--node <url>', 'the same as --url'),
    'admin bearer token',
  )
    .option('--json', "print the node's answer as JSON", false)
    .option(
      '--timeout <ms>',
      'give up after this long (0: wait; it takes at most about one lease term)',
      numberFlag('--timeout'),
      0,
    )
    .action(
      (target: string, o: { prefix: boolean; node?: string; json: boolean; timeout: number } & NodeFlags) =>
        runInvalidate({
          ...resolveNode(withAlias(o, o.node, '--node'), { admin: true }),
          target,
          prefix: o.prefix,
          json: o.json,
          timeoutMs: o.timeout,
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
