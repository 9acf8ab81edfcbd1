import { afterEach, describe, expect, it } from 'vitest';
import { rank } from '../../src/placement/rendezvous.js';
import { replaceAtOrigin, seedOrigin, startMember, startSidecar } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import type { NodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { DNSMASQ, type Dnsmasq, startDnsmasq } from '../placement/dnsmasq.js';

// Skip only on a developer machine without dnsmasq; in CI a missing dnsmasq fails.
const run = DNSMASQ !== undefined || process.env.CI !== undefined;
const TERM_MS = 2000;
const LAG_MS = 1000;

const running: NodeProcess[] = [];
let dns: Dnsmasq | undefined;
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await dns?.stop();
  dns = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!run)('coherence across a DNS membership change', () => {
  it('a node joins: grants pause for membershipLag, the new home waits out its predecessor, nothing old is read after the answer', async () => {
    const port = await freePort();
    const ips = ['127.0.0.111', '127.0.0.112', '127.0.0.113'];
    const addr = (ip: string) => `${ip}:${port}`;
    // A key whose home is the joining member in the 3-member view (and so was another before).
    const three = ips.map((ip) => ({ address: addr(ip), weight: 1 }));
    const key = Array.from({ length: 1000 }, (_, i) => `w/f${i}.bin`).find(
      (k) => rank(`models/${k}`, three)[0]!.address === addr(ips[2]!),
    )!;
    const v = (n: number) => Buffer.alloc(300 * 1024, n);
    const root = seedOrigin({ [key]: v(1) });
    dns = await startDnsmasq(ips.slice(0, 2).map((ip) => `${ip} wc.test`));
    const common = {
      origin: { type: 'fs', fs: { root } },
      cache: { chunkSize: '256KiB' },
      leases: { term: `${TERM_MS}ms`, margin: '200ms', membershipLag: `${LAG_MS}ms` },
    };
    const members = { dns: { name: 'wc.test', port, interval: '200ms', servers: [dns.server] } };
    const tuning = { peerTimeout: '1s', peerBackoff: '300ms', peerBackoffMax: '1s' };
    const member = (ip: string) =>
      startMember({
        root,
        self: addr(ip),
        members,
        config: { leases: common.leases, cluster: tuning },
        running,
      });
    const [a, b] = [await member(ips[0]!), await member(ips[1]!)];
    const sc = await startSidecar({
      root,
      members,
      config: { leases: common.leases, cluster: tuning },
      running,
    });
    await sleep(LAG_MS + 200); // past the start-up pause

    const read = async (): Promise<number> => {
      const r = await get(sc.url, `/v1/objects/models/${key}`);
      expect(r.status).toBe(200);
      expect(r.body.equals(v(r.body[0]!))).toBe(true); // one version's bytes
      return r.body[0]!;
    };
    expect(await read()).toBe(1); // a lease from the old home (a or b)
    const oldGrants =
      (await a.metric('weightcache_lease_grants_total', { result: 'ok' })) +
      (await b.metric('weightcache_lease_grants_total', { result: 'ok' }));
    expect(oldGrants).toBeGreaterThanOrEqual(1);

    // C joins: the record first (as a headless Service would list a new pod), then the process.
    await dns.setHosts(ips.map((ip) => `${ip} wc.test`));
    const c = await member(ips[2]!);
    await sleep(400); // every process sees three members

    // Within membershipLag, the new home grants nothing: the sidecar reads the origin for it.
    expect(await read()).toBe(1);
    expect(await c.metric('weightcache_lease_grants_total', { result: 'refused' })).toBeGreaterThanOrEqual(1);
    expect(
      await sc.metric('weightcache_lease_origin_fallbacks_total', { reason: 'refused' }),
    ).toBeGreaterThanOrEqual(1);

    // A new version, invalidated through an old member: forwarded to the new home, which
    // cannot know what its predecessor granted, so it answers only after waiting that out.
    replaceAtOrigin(root, key, v(2));
    const t0 = performance.now();
    const res = await fetch(`${a.url}/v1/invalidate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ container: 'models', key }),
    });
    const ms = performance.now() - t0;
    expect(res.status, await res.clone().text()).toBe(200);
    expect(ms).toBeGreaterThanOrEqual(TERM_MS - 200); // (1 + ρ)·term after its re-resolve
    expect(await read()).toBe(2);
    await sleep(LAG_MS);
    expect(await read()).toBe(2); // and from a lease of the new home, once grants resume
    expect(await c.metric('weightcache_lease_grants_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
    for (const p of [a, b, c, sc]) expect(await p.metric('weightcache_stale_reads_total')).toBe(0);
  }, 60_000);
});
