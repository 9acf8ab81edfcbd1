/**
 * Hostile clients against one node with every lock on (read tokens scoped to
 * a container, admin tokens, the cluster secret on the transport, RESP on),
 * while well-behaved clients keep reading through every door (hostile/readers.ts).
 * Each attack (hostile/attacks.ts) runs for a while from its own source
 * address and is then reset; per attack the scenario reports what the honest
 * clients saw (share of reads served, p99), the node's RSS growth per hostile
 * connection, whether it crashed, and whether it answers again right after
 * the attacker left (no hang). A node that crashed is started again for the
 * next attack, and the crash is counted.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { rssBytes } from '../../loadtest/cpu.js';
import { startWeightcacheProcess, type WeightcacheProcess } from '../../loadtest/peers/weightcache.js';
import { freePort } from '../../loadtest/ports.js';
import { start } from '../../loadtest/processes.js';
import type { Ctx } from '../ctx.js';
import { CONTAINER, Dataset } from '../data.js';
import { type AttackOutcome, label, runAttack } from '../hostile/attacks.js';
import { now, READER_KINDS, type ReaderKind, type Sample } from '../hostile/readers.js';
import { resetAll } from '../hostile/sockets.js';
import { RangeReader } from '../http-reader.js';
import { Latencies, sleep } from '../latency.js';
import type { HostileScenario } from '../scenario.js';

const READER_LABEL: Record<ReaderKind, string> = {
  http: 'http keep-alive reads',
  'http-new': 'http new-connection reads',
  resp: 'resp reads',
  transport: 'transport handshakes',
};
const ATTACKER = '127.0.0.66';
const READER = '127.0.0.2';
const MiB = 2 ** 20;
/** How long a node that does not answer after an attack is waited for before it is restarted. */
const RECOVERY_MS = 60_000;
const REPO = resolve(import.meta.dirname, '..', '..');

export async function runHostile(s: HostileScenario, ctx: Ctx): Promise<void> {
  // The attacker holds up to 10,001 connections at once, and the node (which inherits the
  // limit) the same number: both need the descriptors.
  const most = Math.max(...s.attacks.map((a) => ('connections' in a ? a.connections : 0)));
  const limit = openFilesLimit();
  if (limit < most + 2000) {
    throw new Error(`hostile-clients needs \`ulimit -n\` of at least ${most + 2000} (it is ${limit})`);
  }
  const data = new Dataset(join(ctx.workDir, 'origin'));
  const key = 'hostile/data.bin';
  data.random(key, s.fileBytes);
  // A sparse object for the huge-range attacks: a GiB that costs no disk.
  const bigKey = 'hostile/big.bin';
  mkdirSync(dirname(data.pathOf(bigKey)), { recursive: true });
  const fd = openSync(data.pathOf(bigKey), 'w');
  ftruncateSync(fd, s.bigFileBytes);
  closeSync(fd);

  const tokens = {
    read: randomBytes(16).toString('hex'),
    other: randomBytes(16).toString('hex'),
    admin: randomBytes(16).toString('hex'),
  };
  // The node reads the file as text: the secret is the hex string's bytes.
  const secret = Buffer.from(randomBytes(32).toString('hex'));
  const file = (name: string, text: string | Buffer) => {
    const p = join(ctx.workDir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const ports = { http: await freePort(), resp: await freePort(), transport: await freePort() };
  const config = {
    http: { listen: `127.0.0.1:${ports.http}` },
    resp: { listen: `127.0.0.1:${ports.resp}` },
    transport: { listen: `127.0.0.1:${ports.transport}` },
    origin: { type: 'fs', fs: { root: data.root } },
    cache: {
      chunkSize: s.chunkBytes,
      dram: { maxBytes: s.dramBytes },
      nvme: { dir: join(ctx.workDir, 'chunks'), maxBytes: '4GiB' },
    },
    auth: {
      tokensFile: file('tokens', `${tokens.read} ${CONTAINER}\n${tokens.other} other\n`),
      adminTokensFile: file('admin-tokens', `${tokens.admin}\n`),
      clusterSecretFile: file('cluster-secret', secret),
    },
  };
  let node: WeightcacheProcess = await startWeightcacheProcess({
    role: 'node',
    workDir: ctx.workDir,
    config,
  });
  const warm = new RangeReader(node.url, {
    connections: 4,
    timeoutMs: 60_000,
    headers: { authorization: `Bearer ${tokens.read}` },
  });
  const w = await warm.read(data.urlPath(key), 0, s.fileBytes - 1, data.get(key));
  await warm.close();
  if (!w.ok) throw new Error(`warming: ${w.status} ${w.code ?? ''}`);

  const samples: Sample[] = [];
  const readerProc = start(
    'readers',
    process.execPath,
    [
      join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
      join(REPO, 'chaos', 'hostile', 'reader-process.ts'),
      JSON.stringify({
        httpPort: ports.http,
        respPort: ports.resp,
        transportPort: ports.transport,
        token: tokens.read,
        secretHex: secret.toString('hex'),
        root: data.root,
        key,
        rangeBytes: s.readerRangeBytes,
        timeoutMs: s.readerTimeoutMs,
        localAddress: READER,
      }),
    ],
    { cwd: REPO, killAfterMs: 10_000 },
  );
  let pending = '';
  readerProc.child.stdout?.on('data', (b: Buffer) => {
    pending += b.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('{')) samples.push(JSON.parse(l) as Sample);
  });
  const f = ctx.figures;
  const window = (c: string, from: number, to: number, suffix = '') => {
    for (const kind of READER_KINDS) {
      const xs = samples.filter((x) => x.kind === kind && x.t >= from && x.t < to);
      if (xs.length === 0) {
        // A window shorter than the reader's pace (the admin probes take well under a second):
        // nothing of this kind started, so there is nothing to hold to the goal.
        ctx.notes.push(`${c}${suffix}: no ${READER_LABEL[kind]} started in its ${Math.round(to - from)} ms`);
        continue;
      }
      const lat = new Latencies();
      for (const x of xs) lat.push(x.ms);
      f.add(
        c,
        `${READER_LABEL[kind]} ok${suffix} (%)`,
        '%',
        (100 * xs.filter((x) => x.ok).length) / xs.length,
      );
      f.add(c, `${READER_LABEL[kind]} p99${suffix}`, 'ms', lat.percentile(0.99));
      const wrong = xs.reduce((n, x) => n + x.wrong, 0);
      if (wrong > 0) f.add(c, 'wrong bytes', 'bytes', wrong);
      noteErrors(ctx, `${c}${suffix}`, kind, xs);
    }
  };

  try {
    // The readers' process takes a while to start on a loaded machine: wait for a sample of each kind.
    for (let i = 0; READER_KINDS.some((k) => !samples.some((x) => x.kind === k)); i++) {
      if (i > 1200) throw new Error(`the readers did not start: ${readerProc.tail().slice(-500)}`);
      await sleep(100);
    }
    const t0 = now();
    ctx.log(`baseline: ${s.baselineS} s of reading, no attack`);
    await sleep(s.baselineS * 1000);
    window('no attack', t0, now());
    const holdMs = Math.max(2000, s.attackS * 1000 * ctx.scale);
    for (const a of s.attacks) {
      const c = label(a);
      ctx.log(c);
      const rssBefore = rssBytes(node.pid) ?? 0;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, rssBytes(node.pid) ?? 0);
      }, 100);
      const from = now();
      let out: AttackOutcome | undefined;
      try {
        out = await runAttack(a, {
          ...ports,
          from: ATTACKER,
          holdMs,
          tokens,
          key,
          size: s.fileBytes,
          bigKey,
          bigSize: s.bigFileBytes,
          urlPath: (k) => data.urlPath(k),
        });
      } catch (err) {
        ctx.notes.push(`${c}: the attack itself failed: ${(err as Error).message.slice(0, 200)}`);
      }
      clearInterval(sampler);
      rssPeak = Math.max(rssPeak, rssBytes(node.pid) ?? 0);
      const to = now();
      const crashed = !node.running();
      if (out) resetAll(out.sockets);
      // No hang: right after the attacker left, a new client is answered within hangAfterMs.
      // A node still busy with what the attacker left behind is given up to RECOVERY_MS more
      // (the figure says how long it took), then restarted, so the next attack meets a fresh node.
      const answerMs = crashed
        ? Number.NaN
        : await firstAnswer(ports.http, tokens.read, data.urlPath(key), RECOVERY_MS);
      const hung = !crashed && !(answerMs <= s.hangAfterMs);
      // Samples are keyed by when a read started and arrive when it ends: wait until every
      // read started before a window's end has ended (each gives up after readerTimeoutMs),
      // or a read still stuck when the window is cut would go uncounted.
      const after = to + 3000;
      const settled = after + s.readerTimeoutMs + 1000;
      if (now() < settled) await sleep(settled - now());
      window(c, from, to);
      window(c, to, after, ', 3 s after the attacker left');
      const conns = out?.connections ?? 0;
      f.add(c, 'hostile connections', 'count', conns);
      if (out?.refused) f.add(c, 'hostile connections refused', 'count', out.refused);
      if (out?.closedByNode != null)
        f.add(c, 'hostile connections closed by the node', 'count', out.closedByNode);
      for (const [metric, unit, value] of out?.figures ?? []) f.add(c, metric, unit, value);
      for (const n of out?.notes ?? []) ctx.notes.push(`${c}: ${n}`);
      f.add(c, 'RSS growth', 'MiB', (rssPeak - rssBefore) / MiB);
      // Per connection only where the connections were held open together (not sequential requests).
      if (out && out.sockets.length > 0)
        f.add(c, 'RSS growth per hostile connection', 'MiB', (rssPeak - rssBefore) / MiB / conns);
      f.add(c, 'node crashed', 'count', crashed ? 1 : 0);
      f.add(c, 'node hung after the attacker left', 'count', hung ? 1 : 0);
      f.add(c, 'answers again after the attacker left', 'ms', answerMs);
      if (crashed || Number.isNaN(answerMs)) {
        ctx.notes.push(
          crashed
            ? `${c}: the node exited (${node.tail().split('\n').slice(-2).join(' | ').slice(0, 300)}); restarted`
            : `${c}: the node did not answer a new client within ${RECOVERY_MS / 1000} s after the attacker left; restarted (SIGKILL)`,
        );
        await node.kill();
        node = await startWeightcacheProcess({ role: 'node', workDir: ctx.workDir, config });
      }
    }
  } finally {
    await readerProc.stop();
    await node.stop();
  }
}

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

/** Time until a new connection gets a 206 (ms), polling; NaN if none within `withinMs`. */
async function firstAnswer(port: number, token: string, path: string, withinMs: number): Promise<number> {
  const t0 = now();
  while (now() - t0 < withinMs) {
    const left = withinMs - (now() - t0);
    const ok = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: { authorization: `Bearer ${token}`, range: 'bytes=0-0', connection: 'close' },
      signal: AbortSignal.timeout(Math.max(100, Math.round(left))),
    })
      .then(async (r) => {
        await r.arrayBuffer();
        return r.status === 206;
      })
      .catch(() => false);
    if (ok) return now() - t0;
    await sleep(100);
  }
  return Number.NaN;
}

function noteErrors(ctx: Ctx, c: string, kind: ReaderKind, xs: readonly Sample[]): void {
  const errs = new Map<string, number>();
  for (const x of xs) if (!x.ok) errs.set(x.error ?? '?', (errs.get(x.error ?? '?') ?? 0) + 1);
  if (errs.size > 0)
    ctx.notes.push(
      `${c}: ${READER_LABEL[kind]} failed: ${[...errs].map(([e, n]) => `${e}: ${n}`).join(', ')}`,
    );
}
