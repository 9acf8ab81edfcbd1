/**
 * A node in front of an HTTP origin that fails: a fault-injecting proxy
 * between them answers a fraction of the origin requests 503, or delays every
 * one by 2 s. Two readers run through every condition: a hit reader (the C
 * client, closed loop, ranges of objects read once before: DRAM hits) and a
 * miss reader (open loop at a fixed rate, each read a chunk never read
 * before, so each is an origin read). Conditions are interleaved over rounds
 * so machine drift spreads over all of them.
 *
 * What a user relies on: hits do not care how the origin is doing (their p99
 * stays within 10 % of the p99 under a healthy origin), a failed miss is a
 * clean error with a stable code, and no error is cached: once the origin is
 * healthy again every range that failed is served, byte-exact.
 */
import { join } from 'node:path';
import { buildRangeClient, type CheckedResult, startCheckedClient } from '../../loadtest/client/clients.js';
import { startWeightcacheProcess } from '../../loadtest/peers/weightcache.js';
import { startFaultProxy } from '../../test/harness/fault-proxy.js';
import { startHttpOriginServer } from '../../test/harness/http-origin-server.js';
import type { Ctx } from '../ctx.js';
import { CONTAINER, Dataset } from '../data.js';
import { RangeReader, type ReadOutcome } from '../http-reader.js';
import { Latencies, sleep } from '../latency.js';
import type { OriginFaultsScenario } from '../scenario.js';

interface Sample {
  readonly hits: CheckedResult;
  readonly misses: ReadOutcome[];
}

export async function runOriginFaults(s: OriginFaultsScenario, ctx: Ctx): Promise<void> {
  const bin = buildRangeClient(join(ctx.workDir, 'bin'));
  const data = new Dataset(join(ctx.workDir, 'origin'));
  const origin = await startHttpOriginServer();
  const proxy = await startFaultProxy({ target: origin.baseUrl });
  try {
    const hot = Array.from({ length: s.hotFiles }, (_, i) => `hot/shard-${i}.bin`);
    for (const k of hot) origin.put(CONTAINER, k, data.random(k, s.hotFileBytes));
    const cold = 'cold/shard.bin';
    origin.put(CONTAINER, cold, data.random(cold, s.coldFileBytes));
    const node = await startWeightcacheProcess({
      role: 'node',
      workDir: ctx.workDir,
      config: {
        origin: { type: 'http', timeout: `${s.originTimeoutMs}ms`, http: { baseUrl: proxy.url } },
        cache: {
          chunkSize: s.chunkBytes,
          dram: { maxBytes: s.hotFiles * s.hotFileBytes + s.coldFileBytes + 64 * 2 ** 20 },
          nvme: { dir: join(ctx.workDir, 'chunks'), maxBytes: '4GiB' },
        },
      },
    });
    const reader = new RangeReader(node.url, { connections: 64, timeoutMs: s.originTimeoutMs + 30_000 });
    for (const k of hot) {
      const r = await reader.read(data.urlPath(k), 0, s.hotFileBytes - 1, data.get(k));
      if (!r.ok) throw new Error(`warming ${k}: ${r.status} ${r.code ?? ''}`);
    }
    const coldChunks = Math.floor(s.coldFileBytes / s.chunkBytes);
    let nextCold = 0;
    const missed: number[] = []; // cold chunk indexes read during the phases
    const coldBytes = data.get(cold);

    const phase = async (phaseS: number): Promise<Sample> => {
      const hits = startCheckedClient(bin, {
        port: node.port,
        targets: hot.map((k) => ({ path: data.urlPath(k), size: s.hotFileBytes })),
        rangeMaxBytes: s.hitRangeBytes,
        conns: s.hitConcurrency,
        durationS: phaseS,
        verify: { prefix: `/v1/objects/${CONTAINER}/`, dir: join(data.root, CONTAINER) },
        timeoutS: s.originTimeoutMs / 1000 + 30,
      });
      const misses: Promise<ReadOutcome>[] = [];
      const t0 = performance.now();
      for (let i = 0; performance.now() - t0 < phaseS * 1000; i++) {
        const due = t0 + (i * 1000) / s.missesPerS;
        if (due > performance.now()) await sleep(due - performance.now());
        if (nextCold >= coldChunks) throw new Error('cold object exhausted: raise coldFileBytes');
        const idx = nextCold++;
        missed.push(idx);
        const a = idx * s.chunkBytes;
        const b = a + s.chunkBytes - 1;
        misses.push(reader.read(data.urlPath(cold), a, b, coldBytes.subarray(a, b + 1)));
      }
      return { hits: await hits.done, misses: await Promise.all(misses) };
    };

    const samples = new Map<string, Sample[]>(s.conditions.map((c) => [c.name, []]));
    const phaseS = Math.max(2, s.phaseS * ctx.scale);
    // One uncounted phase on a healthy origin first: the node's JIT and the page cache warm up
    // there, not in round 1's healthy phase, which every fault condition is compared with.
    ctx.log('warm-up: healthy origin, not counted');
    proxy.setFault({ mode: 'ok' });
    await phase(phaseS);
    for (let round = 0; round < s.rounds; round++) {
      for (const c of s.conditions) {
        ctx.log(`round ${round + 1}/${s.rounds}: ${c.name}`);
        proxy.setFault({
          mode: c.errorFraction > 0 ? 'error-status' : 'ok',
          status: c.status,
          probability: c.errorFraction,
          ...(c.delayMs > 0 ? { delayMs: c.delayMs } : {}),
        });
        samples.get(c.name)!.push(await phase(phaseS));
      }
    }
    proxy.setFault({ mode: 'ok' });
    await sleep(500);

    // No cached error: every cold range read during the faults, read again from a healthy origin.
    let cachedErrors = 0;
    let wrongAfter = 0;
    for (let i = 0; i < missed.length; i += 16) {
      const batch = missed.slice(i, i + 16).map((idx) => {
        const a = idx * s.chunkBytes;
        return reader.read(
          data.urlPath(cold),
          a,
          a + s.chunkBytes - 1,
          coldBytes.subarray(a, a + s.chunkBytes),
        );
      });
      for (const r of await Promise.all(batch)) {
        if (!r.ok) cachedErrors++;
        wrongAfter += r.wrong;
      }
    }
    await reader.close();

    const f = ctx.figures;
    const healthy = s.conditions[0]!.name;
    const healthyP99 = samples.get(healthy)!.map((x) => x.hits.p99Ms);
    let wrong = wrongAfter;
    for (const c of s.conditions) {
      const xs = samples.get(c.name)!;
      const hitReads = xs.reduce((n, x) => n + x.hits.requests, 0);
      const hitFailed = xs.reduce((n, x) => n + x.hits.failed, 0);
      wrong += xs.reduce((n, x) => n + x.hits.wrongBytes, 0);
      f.add(c.name, 'hits', 'count', hitReads);
      f.add(c.name, 'hits failed', 'count', hitFailed);
      f.add(c.name, 'hit p99', 'ms', median(xs.map((x) => x.hits.p99Ms)));
      f.add(c.name, 'hit max', 'ms', Math.max(...xs.map((x) => x.hits.maxMs)));
      if (c.name !== healthy) {
        // Per round against that round's healthy phase: the pairs ran minutes apart at most.
        const ratios = xs.map((x, i) => x.hits.p99Ms / healthyP99[i]!);
        f.add(c.name, 'hit p99 vs healthy origin', 'ratio', median(ratios));
      }
      const misses = xs.flatMap((x) => x.misses);
      const lat = new Latencies();
      for (const m of misses) lat.push(m.ms);
      wrong += misses.reduce((n, m) => n + m.wrong, 0);
      f.add(c.name, 'misses', 'count', misses.length);
      f.add(c.name, 'misses served', 'count', misses.filter((m) => m.ok).length);
      f.add(c.name, 'miss p99', 'ms', lat.percentile(0.99));
      const codes = new Map<string, number>();
      for (const m of misses.filter((x) => !x.ok)) {
        const k = m.status ? `${m.status} ${m.code ?? ''}`.trim() : (m.code ?? 'no response');
        codes.set(k, (codes.get(k) ?? 0) + 1);
      }
      for (const [k, n] of codes) f.add(c.name, `misses answered ${k}`, 'count', n);
      const hitKinds = xs.flatMap((x) => Object.entries(x.hits.failures));
      if (hitKinds.length > 0)
        ctx.notes.push(`${c.name}: hit failures: ${hitKinds.map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    }
    f.add(
      'origin healthy again',
      'failed ranges served after the origin healed',
      'count',
      missed.length - cachedErrors,
    );
    f.add('origin healthy again', 'errors cached', 'count', cachedErrors);
    f.add('all', 'wrong bytes', 'bytes', wrong);
    f.add('all', 'origin requests faulted by the proxy', 'count', proxy.requests.faulted);
    await node.stop();
  } finally {
    await proxy.stop();
    await origin.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}
