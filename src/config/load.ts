/**
 * Configuration comes from, lowest to highest precedence: the schema's
 * defaults, one YAML file, WEIGHTCACHE_* environment variables, then
 * `--set key.path=value` flags. Whatever the source, a bad key or value stops
 * start-up with a message that names the key and the source it came from.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ZodError } from 'zod';
import { CacheError } from '../errors/cache-error.js';
import { type Config, configSchema } from './schema.js';

type Tree = Record<string, unknown>;

/** Environment variables with the prefix that are not config keys. */
const NON_CONFIG_ENV = new Set(['WEIGHTCACHE_CONFIG', 'WEIGHTCACHE_ADDON_DEBUG', 'WEIGHTCACHE_ADDON_PATH']);
const ENV_PREFIX = 'WEIGHTCACHE_';

export interface LoadOptions {
  readonly file?: string;
  /** Defaults to process.env. */
  readonly env?: Record<string, string | undefined>;
  /** `key.path=value` overrides, values parsed as YAML scalars/flows. */
  readonly sets?: readonly string[];
}

export function loadConfig(opts: LoadOptions = {}): Config {
  let tree: Tree = {};
  const sources: string[] = [];
  if (opts.file) {
    tree = readYamlFile(opts.file);
    sources.push(opts.file);
  }
  const env = envOverrides(opts.env ?? process.env);
  for (const [path, value] of env) setPath(tree, path, value);
  if (env.length > 0)
    sources.push(`environment: ${env.map(([p]) => `WEIGHTCACHE_${p.join('_').toUpperCase()}`).join(', ')}`);
  for (const s of opts.sets ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw configError(`--set ${JSON.stringify(s)}: expected key.path=value`);
    setPath(tree, s.slice(0, eq).split('.'), parseScalar(s.slice(eq + 1)));
  }
  if (opts.sets?.length) sources.push(`--set ${opts.sets.map((x) => x.split('=')[0]).join(', ')}`);
  return parseConfig(tree, sources.length ? sources.join('; ') : 'defaults');
}

/** Validates an already-parsed tree (used by loadConfig and by tests of rendered configs). */
export function parseConfig(tree: unknown, source: string): Config {
  const result = configSchema.safeParse(tree ?? {});
  if (!result.success) throw configError(`invalid configuration (${source}):\n${describe(result.error)}`);
  return result.data;
}

function readYamlFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw configError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw configError(`config file ${file} must hold a mapping`);
  return doc as Tree;
}

/**
 * WEIGHTCACHE_CACHE_DRAM_MAXBYTES=2GiB → cache.dram.maxBytes. Names are
 * matched case-insensitively against the schema's key paths, so camelCase
 * keys need no separator; an unknown WEIGHTCACHE_* name is an error rather
 * than a silently ignored typo.
 */
function envOverrides(env: Record<string, string | undefined>): Array<[string[], unknown]> {
  const paths = new Map(leafPaths().map((p) => [p.join('_').toUpperCase(), p]));
  const out: Array<[string[], unknown]> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || NON_CONFIG_ENV.has(name) || value === undefined) continue;
    const path = paths.get(name.slice(ENV_PREFIX.length));
    if (!path) {
      throw configError(
        `environment variable ${name} does not name a config key (e.g. WEIGHTCACHE_HTTP_LISTEN)`,
      );
    }
    out.push([path, parseScalar(value)]);
  }
  return out;
}

/**
 * A config with every optional block filled in: its key paths, together with
 * the defaulted config's, are every key a variable may name (leaves and the
 * blocks that hold them, so a whole block can be set as a YAML flow mapping).
 */
const MAXIMAL = {
  http: { tls: { certFile: 'x', keyFile: 'x' } },
  resp: { tls: { certFile: 'x', keyFile: 'x' } },
  transport: {},
  origin: { azure: { connectionString: 'x' }, http: { baseUrl: 'http://x', headers: {} } },
  cluster: { members: { dns: { name: 'x', port: 1, servers: ['127.0.0.1'] } } },
};

/** Every key path a WEIGHTCACHE_* variable may name, e.g. ['cache','dram','maxBytes']. */
function leafPaths(): string[][] {
  const out = new Map<string, string[]>();
  const walk = (node: unknown, path: string[]) => {
    if (path.length > 0) out.set(path.join('.'), path);
    if (node && typeof node === 'object' && !Array.isArray(node) && !isAddress(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
    }
  };
  walk(configSchema.parse({}), []);
  walk(configSchema.parse(MAXIMAL), []);
  for (const p of [
    ['cluster', 'members', 'static'],
    ['origin', 's3'],
  ])
    out.set(p.join('.'), p);
  return [...out.values()];
}

function isAddress(v: object): boolean {
  return 'host' in v && 'port' in v;
}

function parseScalar(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const [i, key] of path.entries()) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype' || key === '') {
      throw configError(`bad config key path ${JSON.stringify(path.join('.'))}`);
    }
    if (i === path.length - 1) {
      node[key] = value;
    } else {
      const next = node[key];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
      node = node[key] as Tree;
    }
  }
}

function describe(error: ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.') || '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (path === '(top level)' ? k : `${path}.${k}`));
        return `  - unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
      }
      return `  - ${path}: ${issue.message}`;
    })
    .join('\n');
}

function configError(message: string): CacheError {
  return new CacheError('CONFIG_INVALID', message);
}
