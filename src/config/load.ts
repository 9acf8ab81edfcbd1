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
const NON_CONFIG_ENV = new Set(['WEIGHTCACHE_CONFIG', 'WEIGHTCACHE_ADDON_DEBUG']);
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
  if (opts.file) tree = readYamlFile(opts.file);
  for (const [path, value] of envOverrides(opts.env ?? process.env)) setPath(tree, path, value);
  for (const s of opts.sets ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw configError(`--set ${JSON.stringify(s)}: expected key.path=value`);
    setPath(tree, s.slice(0, eq).split('.'), parseScalar(s.slice(eq + 1)));
  }
  return parseConfig(tree, opts.file ?? 'defaults');
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

/** Every key path of the fully defaulted config, e.g. ['cache','dram','maxBytes']. */
function leafPaths(): string[][] {
  const defaults = configSchema.parse({}) as Tree;
  const extra = [
    ['origin', 'azure', 'connectionString'],
    ['origin', 'http', 'baseUrl'],
    ['origin', 'http', 'headers'],
    ['resp', 'listen'],
    ['transport', 'listen'],
    ['cluster', 'members', 'static'],
  ];
  const out: string[][] = [...extra];
  const walk = (node: unknown, path: string[]) => {
    if (node && typeof node === 'object' && !Array.isArray(node) && !isAddress(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
    } else {
      out.push(path);
    }
  };
  walk(defaults, []);
  return out;
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
