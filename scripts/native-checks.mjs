#!/usr/bin/env node
// The checks of the native code that parses input (docs/native-checks.md):
//
//   node scripts/native-checks.mjs build <asan|unit|fuzz>...   build only
//   node scripts/native-checks.mjs unit                 C++ unit tests, plain, under ASan+UBSan (and TSan for the store)
//   node scripts/native-checks.mjs asan [vitest args]   the addon's JS tests against an ASan+UBSan addon
//   node scripts/native-checks.mjs fuzz [--seconds N] [--json] [--update-corpus] [target...]
//
// npm test runs all three through test/native/*.test.ts. The addon build
// (npm install) needs only g++; these checks also use g++ (ASan, UBSan) and,
// for the libFuzzer targets, clang (installed by scripts/install-test-deps.sh).
// Outputs go to addon/build-checks/ (objects cached by content, so a second
// run only links or does nothing).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const addon = join(root, 'addon');
const out = join(addon, 'build-checks');

// ---- what is checked ---------------------------------------------------------------------------
// What store/range.cc links with: the store, its NVMe view and the per-thread disk reader.
const RANGE = [
  'src/store/arena.cc',
  'src/store/store.cc',
  'src/store/range.cc',
  'src/store/nvme_index.cc',
  'src/store/disk_reads.cc',
  'src/nvme/chunk_reader.cc',
  'src/nvme/chunk_format.cc',
  'src/io/loop.cc',
  'src/io/uring.cc',
  'src/buffer_pool.cc',
  'src/crc32c.cc',
];
// The HTTP fast path with its front doors (addon/src/http/, addon/src/http/doors/), tokens and the
// store it reads: what its unit drivers and fuzz targets link.
const FAST_PATH = [
  'src/auth/sha256.cc',
  'src/auth/token_table.cc',
  'src/store/bindings.cc',
  ...RANGE,
  'src/http/fastpath.cc',
  'src/http/fast_fields.cc',
  'src/http/doors/read_plan.cc',
  'src/http/doors/hub.cc',
  'src/http/doors/s3.cc',
  'src/http/doors/azure.cc',
  'src/http/doors/azure_auth.cc',
  'src/http/doors/sigv4.cc',
  'src/http/doors/routes.cc',
  'src/http/rfc9110.cc',
  'src/http/parser.cc',
  'src/http/errors.cc',
];
// C++ unit-test drivers (addon/test/): each exits non-zero on a failure.
const UNIT = {
  // The DRAM chunk store: arena accounting, references, eviction, several threads at once.
  store_test: ['test/store_test.cc', ...RANGE],
  // The fill path's file jobs: versioned reads and atomic writes, direct and buffered; the pool's bound.
  fill_test: ['test/fill_test.cc', 'src/fill/file_jobs.cc'],
  // The NVMe tier: CRC32C paths and combine, the v2 chunk file codec, both io::Loop
  // backends, the block reader on damaged and truncated files, the directory lock.
  nvme_test: [
    'test/nvme_test.cc',
    'src/crc32c.cc',
    'src/buffer_pool.cc',
    'src/io/loop.cc',
    'src/io/uring.cc',
    'src/nvme/chunk_format.cc',
    'src/nvme/chunk_reader.cc',
    'src/nvme/dir_lock.cc',
  ],
  // The fast paths' store-level range read from NVMe: verified blocks, failures never served, bounds.
  disk_reads_test: ['test/disk_reads_test.cc', ...RANGE],
  fastpath_test: ['test/fastpath_test.cc', ...FAST_PATH],
  // The front doors on the fast path: the Hub door's request mapping, its revision table, whole answers.
  doors_test: ['test/doors_test.cc', ...FAST_PATH],
  // The Azure Blob door on the fast path: its request mapping, fields and whole answers (auth off).
  azure_door_test: ['test/azure_door_test.cc', ...FAST_PATH],
  // Azure SAS on the native side: SDK-made SAS verified, each failure left to JavaScript, the hook with auth.
  azure_auth_test: ['test/azure_auth_test.cc', ...FAST_PATH],
  // SigV4 on the native side: HMAC vectors, the canonical request as src/s3/sigv4.ts builds it, and
  // every reason a signed S3 read goes to JavaScript.
  sigv4_test: [
    'test/sigv4_test.cc',
    'src/auth/sha256.cc',
    'src/auth/token_table.cc',
    'src/http/doors/sigv4.cc',
    'src/http/fast_fields.cc',
    'src/http/rfc9110.cc',
    'src/http/parser.cc',
    'src/http/errors.cc',
  ],
  http_parser_test: [
    'test/http_parser_test.cc',
    'src/http/parser.cc',
    'src/http/body.cc',
    'src/http/replay.cc',
    'src/http/errors.cc',
  ],
  // The native RESP door's request parser: every case whole, split and byte by byte.
  resp_parser_test: [
    'test/resp_parser_test.cc',
    'src/resp/parser.cc',
    'src/resp/inline.cc',
    'src/resp/replay.cc',
  ],
  // The native RESP door's fast path: Redis's integer and range rules, replies, grants, references.
  resp_fastpath_test: [
    'test/resp_fastpath_test.cc',
    'src/resp/fastpath.cc',
    'src/store/bindings.cc',
    ...RANGE,
  ],
  // The transport's native chunk service: READ_CHUNK metas, what is answered from the store, references.
  chunk_serve_test: [
    'test/chunk_serve_test.cc',
    'src/transport/chunk_serve.cc',
    'src/store/bindings.cc',
    ...RANGE,
  ],
};
// Unit drivers run once more under ThreadSanitizer: the store is read from several threads at once.
const TSAN_UNIT = ['store_test', 'fastpath_test', 'fill_test'];
// libFuzzer targets (addon/fuzz/), each with a seed corpus in addon/fuzz/corpus/<name>/.
const FUZZ = {
  // The NVMe chunk file header decoder: what is on disk is input too.
  chunk_header_fuzzer: {
    sources: ['fuzz/chunk_header_fuzzer.cc', 'src/nvme/chunk_format.cc', 'src/crc32c.cc'],
    maxLen: 20000,
  },
  frame_fuzzer: {
    sources: ['fuzz/frame_fuzzer.cc', 'src/transport/frame.cc', 'src/crc32c.cc'],
    maxLen: 70000,
  },
  http_parser_fuzzer: {
    sources: [
      'fuzz/http_parser_fuzzer.cc',
      'src/http/parser.cc',
      'src/http/body.cc',
      'src/http/replay.cc',
      'src/http/errors.cc',
    ],
    maxLen: 8192,
    dict: 'fuzz/http_parser_fuzzer.dict',
  },
  // The fast path: what a client's target, Range, If-* and Authorization make it answer.
  fastpath_fuzzer: {
    sources: ['fuzz/fastpath_fuzzer.cc', ...FAST_PATH],
    maxLen: 8192,
  },
  // The front doors on the fast path: a Hub download's target, fields and token, mapped and answered.
  door_fastpath_fuzzer: {
    sources: ['fuzz/door_fastpath_fuzzer.cc', ...FAST_PATH],
    maxLen: 8192,
    dict: 'fuzz/door_fastpath_fuzzer.dict',
  },
  // Azure SAS on the native side: a SAS query and blob name verified against one token, the SAS time form.
  azure_auth_fuzzer: {
    sources: [
      'fuzz/azure_auth_fuzzer.cc',
      'src/auth/sha256.cc',
      'src/auth/token_table.cc',
      'src/http/doors/azure.cc',
      'src/http/doors/azure_auth.cc',
      'src/http/doors/sigv4.cc',
      'src/http/fast_fields.cc',
      'src/http/rfc9110.cc',
      'src/http/parser.cc',
      'src/http/errors.cc',
    ],
    maxLen: 2048,
    dict: 'fuzz/azure_auth_fuzzer.dict',
  },
  // SigV4 on the native side: a signed S3 request's query, Authorization, dates and headers.
  sigv4_fuzzer: {
    sources: [
      'fuzz/sigv4_fuzzer.cc',
      'src/auth/sha256.cc',
      'src/auth/token_table.cc',
      'src/http/doors/sigv4.cc',
      'src/http/fast_fields.cc',
      'src/http/rfc9110.cc',
      'src/http/parser.cc',
      'src/http/errors.cc',
    ],
    maxLen: 4096,
    dict: 'fuzz/sigv4_fuzzer.dict',
  },
  // The native RESP door's request parser: every byte a Redis client sends (docs/resp.md).
  resp_parser_fuzzer: {
    sources: ['fuzz/resp_parser_fuzzer.cc', 'src/resp/parser.cc', 'src/resp/inline.cc', 'src/resp/replay.cc'],
    maxLen: 4096,
    dict: 'fuzz/resp_parser_fuzzer.dict',
  },
  // The native RESP door's fast path: what a command's name, key and GETRANGE indexes make it answer.
  resp_fastpath_fuzzer: {
    sources: ['fuzz/resp_fastpath_fuzzer.cc', 'src/resp/fastpath.cc', 'src/store/bindings.cc', ...RANGE],
    maxLen: 256,
  },
  // The transport's native chunk service: what a peer's READ_CHUNK meta makes the I/O thread answer.
  read_chunk_fuzzer: {
    sources: ['fuzz/read_chunk_fuzzer.cc', 'src/transport/chunk_serve.cc', 'src/store/bindings.cc', ...RANGE],
    maxLen: 1024,
  },
  // Every message the kernel writes to /dev/fuse, and the READDIR packer (docs/mount.md).
  fuse_request_fuzzer: {
    sources: ['fuzz/fuse_request_fuzzer.cc', 'src/fuse/request.cc', 'src/fuse/reply.cc'],
    maxLen: 70000,
  },
};
// The vitest files that exercise the addon, run again against the ASan+UBSan build.
const ASAN_TESTS = [
  'test/transport',
  'test/chunk',
  'test/store',
  'test/tier/chunk-file.test.ts',
  'test/tier/nvme-range.test.ts',
  'test/http/native-parser.test.ts',
  'test/http/native-door.test.ts',
  // The FUSE workers' READs from the chunk store (skips without /dev/fuse and root).
  'test/mount/native-read.test.ts',
  'test/http/fast-path.test.ts',
  // Misses parked on the I/O thread while JavaScript fills them.
  'test/http/fast-path-parked.test.ts',
  // The front doors' reads on the fast path, and the Hub revisions JavaScript hands the addon.
  'test/http/door-fast-path.test.ts',
  'test/hub/native-revisions.test.ts',
  'test/resp/native-parser.test.ts',
  'test/resp/native-door.test.ts',
  'test/resp/fast-path.test.ts',
  // The transport's READ_CHUNK hits answered on its I/O thread from the store (real node processes).
  'test/cluster/native-reads.test.ts',
];

// ---- sanitizer settings ------------------------------------------------------------------------
const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
// Leak detection is off for node processes: node does not free everything at
// exit, and in a node process every allocation has node frames in its stack,
// so no suppression separates the addon's leaks from node's. The addon's own
// lifetimes are asserted by its counters in the tests (pinned buffers, queued
// bytes, open connections back to 0); the C++ drivers and fuzzers, which are
// plain C++ processes, run with leak detection on.
function sanitizerEnv(logDir, { leaks }) {
  return {
    ASAN_OPTIONS: [
      `detect_leaks=${leaks ? 1 : 0}`,
      'halt_on_error=1',
      'abort_on_error=1',
      'detect_stack_use_after_return=1',
      'strict_string_checks=1',
      'check_initialization_order=1',
      `log_path=${join(logDir, 'asan')}`,
    ].join(':'),
    UBSAN_OPTIONS: ['halt_on_error=1', 'print_stacktrace=1', `log_path=${join(logDir, 'ubsan')}`].join(':'),
  };
}

// Sanitizer reports written under logDir (one file per reporting process).
function reports(logDir) {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .filter((f) => /^(asan|ubsan|tsan)\./.test(f))
    .map((f) => `${f}:\n${readFileSync(join(logDir, f), 'utf8')}`);
}

// ---- building ----------------------------------------------------------------------------------
const jobs = Math.max(1, Number(process.env.WEIGHTCACHE_NATIVE_JOBS ?? 2));

function headersDigest() {
  // Every header under addon/src: an object is rebuilt when any of them changes (simple, and safe).
  const h = createHash('sha256');
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(h|hpp|inc)$/.test(e.name)) h.update(p).update(readFileSync(p));
    }
  };
  walk(join(addon, 'src'));
  return h.digest('hex');
}

function run(cmd, args, opts = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
    });
    child.stderr.on('data', (d) => {
      text += d;
    });
    child.on('close', (code, signal) => resolvePromise({ code, signal, text }));
  });
}

async function pool(tasks) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

// Compiles each source (cached by the hash of compiler, flags, source and headers) and links `output`.
async function buildBinary({ cxx, cflags, ldflags, sources, output }) {
  const objDir = join(dirname(output), 'obj');
  mkdirSync(objDir, { recursive: true });
  const headers = headersDigest();
  const objects = [];
  const tasks = [];
  for (const src of sources) {
    const path = join(addon, src);
    const key = createHash('sha256')
      .update(JSON.stringify([cxx, cflags, src, headers]))
      .update(readFileSync(path))
      .digest('hex')
      .slice(0, 24);
    const obj = join(objDir, `${src.replace(/[/.]/g, '_')}-${key}.o`);
    objects.push(obj);
    if (existsSync(obj)) continue;
    tasks.push(async () => {
      const tmp = `${obj}.${process.pid}.tmp`;
      const r = await run(cxx, [...cflags, '-c', path, '-o', tmp]);
      if (r.code !== 0)
        throw new Error(`compiling ${src} failed:\n${cxx} ${cflags.join(' ')} -c ${path}\n${r.text}`);
      renameSync(tmp, obj); // atomic: a concurrent build never sees half an object
      return src;
    });
  }
  const compiled = await pool(tasks);
  const linkKey = createHash('sha256')
    .update(JSON.stringify([cxx, ldflags, objects]))
    .digest('hex');
  const stamp = `${output}.stamp`;
  if (
    compiled.length === 0 &&
    existsSync(output) &&
    existsSync(stamp) &&
    readFileSync(stamp, 'utf8') === linkKey
  ) {
    return { output, compiled: [] };
  }
  const tmp = `${output}.${process.pid}.tmp`;
  const r = await run(cxx, [...objects, ...ldflags, '-o', tmp]);
  if (r.code !== 0) throw new Error(`linking ${relative(root, output)} failed:\n${r.text}`);
  renameSync(tmp, output);
  writeFileSync(stamp, linkKey);
  return { output, compiled };
}

function bindingTarget() {
  // binding.gyp is a Python literal: read it with Python (a build requirement anyway).
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))',
      join(addon, 'binding.gyp'),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`reading addon/binding.gyp failed: ${r.stderr}`);
  const target = JSON.parse(r.stdout).targets.find((t) => t.target_name === 'weightcache');
  if (!target) throw new Error('addon/binding.gyp has no target "weightcache"');
  return target;
}

function expandGyp(value) {
  // "<!(command)" is gyp's command expansion; run it the way gyp does, from addon/.
  const m = /^<!\((.*)\)$/.exec(value);
  if (!m) return value;
  const r = spawnSync('sh', ['-c', m[1]], { cwd: addon, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`binding.gyp: '${m[1]}' failed: ${r.stderr}`);
  return r.stdout.trim();
}

// The addon exactly as binding.gyp builds it, with ASan+UBSan and -O1 -g.
async function buildAsanAddon() {
  const t = bindingTarget();
  const nodedir = dirname(dirname(process.execPath));
  const includes = [join(nodedir, 'include', 'node'), ...(t.include_dirs ?? []).map(expandGyp)].map((d) =>
    resolve(addon, d),
  );
  const cflags = [
    ...(t.cflags_cc ?? []).filter((f) => !/^-O/.test(f)),
    '-O1',
    '-g',
    '-fPIC',
    ...SANITIZE,
    ...includes.map((d) => `-I${d}`),
    ...(t.defines ?? []).map((d) => `-D${d}`),
    '-DBUILDING_NODE_EXTENSION',
    '-DNODE_GYP_MODULE_NAME=weightcache',
  ];
  const ldflags = ['-shared', ...SANITIZE, '-pthread', ...(t.libraries ?? [])];
  return buildBinary({
    cxx: 'g++',
    cflags,
    ldflags,
    sources: t.sources,
    output: join(out, 'asan', 'weightcache.node'),
  });
}

async function buildUnit() {
  const base = ['-std=c++20', '-g', '-Wall', '-Wextra', '-pthread', `-I${join(addon, 'src')}`];
  const built = [];
  for (const [name, sources] of Object.entries(UNIT)) {
    built.push(
      await buildBinary({
        cxx: 'g++',
        cflags: [...base, '-O2'],
        ldflags: ['-pthread'],
        sources,
        output: join(out, 'unit', name),
      }),
      await buildBinary({
        cxx: 'g++',
        cflags: [...base, '-O1', ...SANITIZE],
        ldflags: ['-pthread', ...SANITIZE],
        sources,
        output: join(out, 'unit-asan', name),
      }),
    );
    if (TSAN_UNIT.includes(name)) {
      built.push(
        await buildBinary({
          cxx: 'g++',
          cflags: [...base, '-O1', '-fsanitize=thread'],
          ldflags: ['-pthread', '-fsanitize=thread'],
          sources,
          output: join(out, 'unit-tsan', name),
        }),
      );
    }
  }
  return built;
}

function requireClang() {
  const r = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error('the fuzz targets need clang++ with libFuzzer: run `npm run test:deps` (as root) first');
  }
}

async function buildFuzz(names) {
  requireClang();
  const flags = [
    '-std=c++20',
    '-g',
    '-O1',
    '-fsanitize=fuzzer,address,undefined',
    '-fno-sanitize-recover=all',
  ];
  const built = [];
  for (const name of names) {
    const f = FUZZ[name];
    if (!f) throw new Error(`no fuzz target '${name}' (known: ${Object.keys(FUZZ).join(', ')})`);
    built.push(
      await buildBinary({
        cxx: 'clang++',
        cflags: [...flags, `-I${join(addon, 'src')}`],
        ldflags: flags,
        sources: f.sources,
        output: join(out, 'fuzz', name),
      }),
    );
  }
  return built;
}

// ---- running -----------------------------------------------------------------------------------
async function unit() {
  await buildUnit();
  let ok = true;
  for (const name of Object.keys(UNIT)) {
    const variants = ['unit', 'unit-asan', ...(TSAN_UNIT.includes(name) ? ['unit-tsan'] : [])];
    for (const variant of variants) {
      const logDir = mkdtempSync(join(tmpdir(), 'wc-unit-'));
      const started = Date.now();
      const r = await run(join(out, variant, name), [], {
        env: {
          ...process.env,
          ...sanitizerEnv(logDir, { leaks: true }),
          TSAN_OPTIONS: `halt_on_error=1:log_path=${join(logDir, 'tsan')}`,
        },
      });
      const found = reports(logDir);
      rmSync(logDir, { recursive: true, force: true });
      const passed = r.code === 0 && found.length === 0;
      ok &&= passed;
      const last = r.text.trim().split('\n').pop();
      console.log(`${passed ? 'ok  ' : 'FAIL'} ${variant}/${name} (${Date.now() - started} ms): ${last}`);
      if (!passed) console.log(r.text + found.join('\n'));
    }
  }
  return ok;
}

async function asan(vitestArgs) {
  const { output } = await buildAsanAddon();
  const libasan = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
  if (!libasan.startsWith('/')) throw new Error('g++ -print-file-name=libasan.so found no ASan runtime');
  const logDir = mkdtempSync(join(tmpdir(), 'wc-asan-'));
  const files = vitestArgs.length > 0 ? vitestArgs : ASAN_TESTS;
  const env = {
    ...process.env,
    // The runtime must come first in a process whose executable (node) is not instrumented.
    LD_PRELOAD: libasan,
    WEIGHTCACHE_ADDON_PATH: output,
    ...sanitizerEnv(logDir, { leaks: false }),
  };
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const config = join(root, 'test', 'native', 'asan.vitest.config.ts');
  console.log(`asan: ${files.join(' ')} against ${relative(root, output)} (reports: ${logDir})`);
  const child = spawn(process.execPath, [vitest, 'run', '--config', config, ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  const code = await new Promise((r) => child.on('close', (c, s) => r(c ?? (s ? 128 : 1))));
  const found = reports(logDir);
  rmSync(logDir, { recursive: true, force: true });
  for (const f of found) console.log(f);
  console.log(
    `asan: vitest exited ${code}; ${found.length} sanitizer report(s)${found.length ? ' (above)' : ''}`,
  );
  return code === 0 && found.length === 0;
}

function parseStats(text) {
  const stat = (k) => Number(new RegExp(`stat::${k}:\\s*(\\d+)`).exec(text)?.[1] ?? NaN);
  return {
    runs: stat('number_of_executed_units'),
    execPerSec: stat('average_exec_per_sec'),
    newUnits: stat('new_units_added'),
  };
}

async function fuzz(args) {
  let seconds = 30;
  let json = false;
  let update = false;
  const names = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--json') json = true;
    else if (args[i] === '--update-corpus') update = true;
    else names.push(args[i]);
  }
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const targets = names.length > 0 ? names : Object.keys(FUZZ);
  const buildStarted = Date.now();
  await buildFuzz(targets);
  const buildMs = Date.now() - buildStarted;
  let ok = true;
  const results = [];
  for (const name of targets) {
    const f = FUZZ[name];
    const work = mkdtempSync(join(tmpdir(), `wc-fuzz-${name}-`));
    const fresh = join(work, 'corpus'); // new inputs land here, never in the repository
    mkdirSync(fresh);
    const seeds = join(addon, 'fuzz', 'corpus', name);
    const logDir = join(work, 'logs');
    mkdirSync(logDir);
    const fargs = [
      `-max_total_time=${seconds}`,
      `-max_len=${f.maxLen}`,
      '-timeout=10',
      '-rss_limit_mb=2048',
      '-print_final_stats=1',
      `-artifact_prefix=${work}/`,
      ...(f.dict ? [`-dict=${join(addon, f.dict)}`] : []),
      fresh,
      seeds,
    ];
    const started = Date.now();
    const r = await run(join(out, 'fuzz', name), fargs, {
      env: { ...process.env, ...sanitizerEnv(logDir, { leaks: true }) },
    });
    const wallMs = Date.now() - started;
    const crashes = readdirSync(work).filter((x) => /^(crash|leak|timeout|oom|slow-unit)-/.test(x));
    const found = reports(logDir);
    const stats = parseStats(r.text);
    const passed = r.code === 0 && crashes.length === 0 && found.length === 0 && stats.runs > 0;
    ok &&= passed;
    results.push({
      target: name,
      passed,
      seconds,
      wallMs,
      ...stats,
      crashes: crashes.map((c) => join(work, c)),
    });
    if (!passed) {
      console.log(`FAIL ${name}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; reproduce with`);
      console.log(`  ${join(out, 'fuzz', name)} ${crashes.map((c) => join(work, c)).join(' ')}`);
      console.log(r.text.split('\n').slice(-80).join('\n') + found.join('\n'));
    } else {
      if (update) {
        // Keep what the run found, minimised against the committed seeds.
        const m = await run(join(out, 'fuzz', name), ['-merge=1', `-max_len=${f.maxLen}`, seeds, fresh]);
        console.log(`${name}: ${m.text.trim().split('\n').pop()}`);
      }
      rmSync(work, { recursive: true, force: true });
    }
    if (!json) {
      console.log(
        `${passed ? 'ok  ' : 'FAIL'} ${name}: ${stats.runs} runs in ${seconds} s (${stats.execPerSec} exec/s), ${stats.newUnits} new inputs`,
      );
    }
  }
  if (json) console.log(JSON.stringify({ buildMs, results }));
  return ok;
}

// ---- main --------------------------------------------------------------------------------------
const [cmd, ...rest] = process.argv.slice(2);
try {
  let ok = true;
  if (cmd === 'build') {
    for (const what of rest.length > 0 ? rest : ['asan', 'unit', 'fuzz']) {
      if (what === 'asan') console.log(relative(root, (await buildAsanAddon()).output));
      else if (what === 'unit') for (const b of await buildUnit()) console.log(relative(root, b.output));
      else if (what === 'fuzz')
        for (const b of await buildFuzz(Object.keys(FUZZ))) console.log(relative(root, b.output));
      else throw new Error(`build what? asan, unit or fuzz, not '${what}'`);
    }
  } else if (cmd === 'unit') {
    ok = await unit();
  } else if (cmd === 'asan') {
    ok = await asan(rest);
  } else if (cmd === 'fuzz') {
    ok = await fuzz(rest);
  } else {
    console.error(
      'usage: native-checks.mjs build <asan|unit|fuzz>... | unit | asan [files] | fuzz [--seconds N] [target...]',
    );
    process.exit(2);
  }
  process.exit(ok ? 0 : 1);
} catch (err) {
  console.error(`native-checks: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
