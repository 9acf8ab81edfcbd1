/**
 * The system under test: one `weightcache node` process from the compiled
 * build (bin/weightcache.js → dist/), with its own YAML config in a temp dir,
 * a high loopback port, stopped by PID (SIGTERM: drain, then exit).
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { stringify } from 'yaml';
import { keyIdOf } from '../../src/auth/tokens.js';
import { presignedQuery } from '../../src/s3/sigv4.js';
import { freePort, waitForHttp } from '../ports.js';
import { start } from '../processes.js';
import type { Server } from './server.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const BIN = join(REPO, 'bin', 'weightcache.js');

export interface WeightcacheOptions {
  readonly workDir: string;
  /** Origin section of the config, e.g. { type: 'fs', fs: { root } }. */
  readonly origin: Record<string, unknown>;
  readonly dramBytes: number;
  readonly nvmeBytes: number;
  /** Reuse an NVMe dir (warm restart); default `{workDir}/chunks`. */
  readonly nvmeDir?: string;
  readonly chunkBytes?: number;
  readonly name?: string;
  /** http.door and http.threads; default the config's (the JavaScript door). */
  readonly door?: {
    readonly door: 'js' | 'native';
    readonly threads?: number | undefined;
    /** Read through the S3 door (its GetObject, auth off) instead of /v1/objects. */
    readonly via?: 'objects' | 's3' | 's3-signed' | 'azure' | 'azure-sas' | undefined;
  };
  /** Serve the HTTP port with TLS (http.tls) from these PEM files. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface WeightcacheServer extends Server {
  readonly configFile: string;
  readonly dramBytes: number;
  /** Parsed /metrics: sample name with labels → value. */
  metrics(): Promise<Map<string, number>>;
}

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(suffix))
      newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/**
 * The node runs from dist/: compile it if it is missing or older than src/.
 * Returns a reason when the build cannot be had (the scenario then reports
 * "not available" instead of measuring a stale binary).
 */
export function ensureBuild(): string | null {
  const main = join(REPO, 'dist', 'src', 'cli', 'main.js');
  const addon = join(REPO, 'addon', 'build', 'Release', 'weightcache.node');
  if (!existsSync(addon)) {
    const r = spawnSync('node', ['scripts/build-addon.mjs'], { cwd: REPO, stdio: 'inherit' });
    if (r.status !== 0) return 'the native addon does not build (node scripts/build-addon.mjs)';
  }
  const stale =
    !existsSync(main) ||
    newestMtime(join(REPO, 'src'), '.ts') > newestMtime(join(REPO, 'dist', 'src'), '.js');
  if (stale) {
    process.stderr.write('loadtest: compiling src/ → dist/ (tsc -p tsconfig.build.json)\n');
    // tsc emits even with type errors elsewhere in the tree; only a missing entry point is fatal.
    spawnSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: REPO,
      stdio: 'ignore',
    });
  }
  if (!existsSync(main)) return 'dist/src/cli/main.js missing after tsc -p tsconfig.build.json';
  if (!existsSync(join(REPO, 'dist', 'src', 'node', 'node.js')))
    return 'src/node/node.ts (startNode) is not built';
  return null;
}

/**
 * Starts the node; one retry, because dist/ is shared with colleagues whose
 * `npm run build` may be rewriting it at that very moment.
 */
export async function startWeightcache(opts: WeightcacheOptions): Promise<WeightcacheServer> {
  try {
    return await startOnce(opts);
  } catch {
    await new Promise((r) => setTimeout(r, 3000));
    return await startOnce(opts);
  }
}

/** The token a signed-S3 node holds (its key id is the access key id, the token the secret). */
const SIGNING_TOKEN = 'loadtest-signed-s3-token-0123456789abcdef';

/** A presigned SigV4 GET for `path` on 127.0.0.1:port, valid an hour (Range is not signed: any range goes). */
function presigned(port: number, path: string): string {
  const q = presignedQuery({
    method: 'GET',
    host: `127.0.0.1:${port}`,
    uri: path,
    query: [],
    region: 'us-east-1',
    service: 's3',
    credentials: { accessKeyId: keyIdOf(SIGNING_TOKEN), secretAccessKey: SIGNING_TOKEN },
    now: new Date(),
    expiresSeconds: 3600,
  });
  return `${path}?${q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
}

/** The Azure account the loadtest reads through (`/azure/{account}/{container}/{blob}`). */
const AZURE_ACCOUNT = 'bench';

/**
 * A container SAS (sr=c, sp=r) for `path` (`/azure/{account}/{container}/…`), signed with the
 * signing token as the account key, valid an hour: the string-to-sign of src/azure-blob/shared-key.ts.
 */
function azureSas(path: string): string {
  const container = path.split('/')[3] ?? '';
  const se = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const p: Array<[string, string]> = [
    ['sv', '2025-01-05'],
    ['sp', 'r'],
    ['se', se],
    ['sr', 'c'],
  ];
  const toSign = [
    'r',
    '',
    se,
    `/blob/${AZURE_ACCOUNT}/${container}`,
    '',
    '',
    '',
    '2025-01-05',
    'c',
    '',
    '',
    '',
    '',
    '',
    '',
    '',
  ];
  p.push(['sig', createHmac('sha256', SIGNING_TOKEN).update(toSign.join('\n')).digest('base64')]);
  return `${path}?${p.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
}

async function startOnce(opts: WeightcacheOptions): Promise<WeightcacheServer> {
  const via = opts.door?.via;
  const slug = (opts.name ?? 'weightcache').replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '');
  let auth: Record<string, unknown> | undefined;
  if (via === 's3-signed' || via === 'azure-sas') {
    // Auth on: every S3 / Azure request must be signed; /metrics stays open for the runner's counters.
    const tokensFile = join(opts.workDir, `${slug}-tokens`);
    writeFileSync(tokensFile, `${SIGNING_TOKEN}\n`, { mode: 0o600 });
    auth = { tokensFile, openMetrics: true };
  }
  const p = await startWeightcacheProcess({
    role: 'node',
    workDir: opts.workDir,
    // Its files ({slug}.yaml, .log) by a plain name; the server keeps the display name.
    name: (opts.name ?? 'weightcache').replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, ''),
    ca: opts.tls?.cert,
    config: {
      // metricsCache 0: the runner reads counters right before and after each run.
      http: {
        metricsCache: 0,
        ...(opts.door ? { door: opts.door.door } : {}),
        ...(opts.door?.threads ? { threads: opts.door.threads } : {}),
        ...(opts.tls ? { tls: { certFile: opts.tls.cert, keyFile: opts.tls.key } } : {}),
      },
      origin: opts.origin,
      ...(via === 's3' || via === 's3-signed' ? { s3: {} } : {}),
      ...(auth ? { auth } : {}),
      cache: {
        chunkSize: opts.chunkBytes ?? 4 * 2 ** 20,
        dram: { maxBytes: opts.dramBytes },
        nvme: { dir: opts.nvmeDir ?? join(opts.workDir, 'chunks'), maxBytes: opts.nvmeBytes },
      },
    },
  });
  return {
    name: opts.name ?? 'weightcache',
    port: p.port,
    pids: [p.pid],
    pathPrefix:
      via === 's3' || via === 's3-signed'
        ? '/s3'
        : via === 'azure' || via === 'azure-sas'
          ? `/azure/${AZURE_ACCOUNT}`
          : '/v1/objects',
    ...(via === 's3-signed' ? { target: (path: string) => presigned(p.port, path) } : {}),
    ...(via === 'azure-sas' ? { target: azureSas } : {}),
    tls: opts.tls !== undefined,
    configFile: p.configFile,
    dramBytes: opts.dramBytes,
    stop: () => p.stop(),
    lastLog: () => p.tail().split('\n').slice(-2).join(' | ').slice(0, 500),
    metrics: () => p.metrics(),
  };
}

export interface ProcessOptions {
  readonly role: 'node' | 'sidecar';
  /** Holds `{name}.yaml` and `{name}.log`. */
  readonly workDir: string;
  /** File names and log label; default the role. */
  readonly name?: string;
  /** The whole config; `http.listen` defaults to a free loopback port, `log.level` to warn. */
  readonly config: Record<string, unknown>;
  readonly readyTimeoutMs?: number;
  /** The HTTP port speaks TLS with this self-signed certificate (PEM path): trusted for readiness and /metrics. */
  readonly ca?: string | undefined;
}

/** A running `weightcache node|sidecar`, started through processes.ts (stopped by PID whatever happens). */
export interface WeightcacheProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly configFile: string;
  readonly exited: Promise<number | null>;
  /** False once the process has exited (crashed, or stopped). */
  running(): boolean;
  /** SIGTERM (drain), SIGKILL after 15 s. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  tail(): string;
  /** Parsed /metrics: sample name with labels → value. */
  metrics(): Promise<Map<string, number>>;
}

/**
 * WEIGHTCACHE_DOORS=native or js (the chaos runner's `--doors`): every
 * process serves HTTP and RESP through those doors (`http.door`,
 * `resp.door`), except where the config names a door or TLS (TLS listeners
 * stay on the JavaScript doors).
 */
function withDoors(config: Record<string, unknown>, door: 'js' | 'native'): Record<string, unknown> {
  const http = (config.http ?? {}) as Record<string, unknown>;
  const resp = config.resp as Record<string, unknown> | undefined;
  return {
    ...config,
    http: http.door || http.tls ? http : { ...http, door },
    ...(resp && !resp.door && !resp.tls ? { resp: { ...resp, door } } : {}),
  };
}

/**
 * Starts one weightcache process from bin/weightcache.js with `config` and
 * waits for /readyz. The one place the load test and the reliability suite
 * (chaos/) start the system under test.
 */
export async function startWeightcacheProcess(o: ProcessOptions): Promise<WeightcacheProcess> {
  const name = o.name ?? o.role;
  const doors = process.env.WEIGHTCACHE_DOORS;
  const given = doors === 'native' || doors === 'js' ? withDoors(o.config, doors) : o.config;
  const http = (given.http ?? {}) as Record<string, unknown>;
  const listen = typeof http.listen === 'string' ? http.listen : `127.0.0.1:${await freePort()}`;
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^0\.0\.0\.0$/, '127.0.0.1');
  const config = { log: { level: 'warn' }, ...given, http: { ...http, listen } };
  const configFile = join(o.workDir, `${name}.yaml`);
  writeFileSync(configFile, stringify(config));
  const p = start(name, process.execPath, [BIN, o.role, '--config', configFile], {
    cwd: REPO,
    env: childEnv(),
    logFile: join(o.workDir, `${name}.log`),
    killAfterMs: 15_000,
  });
  const url = `${o.ca ? 'https' : 'http'}://${host}:${port}`;
  const agent = o.ca ? new Agent({ connect: { ca: readFileSync(o.ca) } }) : null;
  const get = agent
    ? (u: string) => undiciFetch(u, { dispatcher: agent }) as unknown as Promise<Response>
    : (u: string) => fetch(u);
  // Generous: on a shared machine under load a start can take tens of seconds; a broken one exits.
  await waitForHttp(`${url}/readyz`, `weightcache ${name}`, p.exited, o.readyTimeoutMs ?? 120_000, get).catch(
    async (err: Error) => {
      await p.stop();
      // One line, so it fits a note: the process's last log lines say why.
      const why = p.tail().split('\n').slice(-3).join(' | ').slice(0, 600);
      throw new Error(`${err.message}${why ? `: ${why}` : ''}`);
    },
  );
  return {
    name,
    pid: p.pid,
    port,
    url,
    configFile,
    exited: p.exited,
    running: () => p.child.exitCode === null && p.child.signalCode === null,
    stop: async () => {
      await p.stop();
      await agent?.close();
    },
    kill: () => p.kill(),
    tail: () => p.tail(),
    async metrics() {
      const text = await (await get(`${url}/metrics`)).text();
      return parsePrometheus(text);
    },
  };
}

/**
 * WEIGHTCACHE_* variables are config overrides to a weightcache process, and
 * an unknown one stops it at start: the runner's own (WEIGHTCACHE_LOADTEST_DIR)
 * must not reach it.
 */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEIGHTCACHE_')));
}

/** Prometheus text → "name{labels}" → value (labels exactly as exposed). */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const v = Number(line.slice(sp + 1));
    if (!Number.isNaN(v)) out.set(line.slice(0, sp), v);
  }
  return out;
}

/** Sum of every sample of `name` whose label text contains `labelPart` (e.g. 'source="nvme"'). */
export function metricSum(m: Map<string, number>, name: string, labelPart = ''): number {
  let sum = 0;
  for (const [k, v] of m) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n === name && k.includes(labelPart)) sum += v;
  }
  return sum;
}
