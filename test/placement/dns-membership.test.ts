/**
 * DNS membership against a real resolver: dnsmasq answering from a hosts file
 * the test rewrites (SIGHUP re-reads it), like a Kubernetes headless Service
 * whose pods come and go.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { Membership } from '../../src/placement/membership.js';
import type { Member } from '../../src/placement/rendezvous.js';
import { until } from '../harness/until.js';
import { DNSMASQ, startDnsmasq } from './dnsmasq.js';
import { captureLog } from './log-capture.js';

// Skip only on a developer machine without dnsmasq; in CI a missing dnsmasq fails.
const run = DNSMASQ !== undefined || process.env.CI !== undefined;
const INTERVAL_MS = 150;

const addresses = (ms: readonly Member[]) => ms.map((m) => m.address);

async function counter(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const got = await metrics.registry.getSingleMetric(name)!.get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((s, v) => s + v.value, 0);
}

describe.skipIf(!run)('DNS membership (dnsmasq)', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function setup(hosts: string[]) {
    const dns = await startDnsmasq(hosts);
    cleanup.push(() => dns.stop());
    const cfg = parseConfig(
      {
        cluster: {
          members: {
            dns: { name: 'peers.test', port: 7420, interval: `${INTERVAL_MS}ms`, servers: [dns.server] },
          },
        },
      },
      'test',
    ).cluster;
    const metrics = new Metrics();
    const captured = captureLog();
    const membership = await Membership.start(cfg, { log: captured.log, metrics });
    cleanup.push(() => membership.close());
    const events: Array<{ now: string[]; added: string[]; removed: string[] }> = [];
    membership.onChange((now, added, removed) =>
      events.push({ now: addresses(now), added: addresses(added), removed: addresses(removed) }),
    );
    return { dns, metrics, membership, events, lines: captured.lines };
  }

  it('follows added and removed A and AAAA records, with events, logs and metrics', async () => {
    const { dns, metrics, membership, events, lines } = await setup([
      '127.0.0.12 peers.test',
      '127.0.0.11 peers.test',
    ]);
    expect(addresses(membership.members())).toEqual(['127.0.0.11:7420', '127.0.0.12:7420']);
    expect(events).toEqual([]);

    await dns.setHosts([
      '127.0.0.11 peers.test',
      '127.0.0.12 peers.test',
      '127.0.0.13 peers.test',
      '::1 peers.test',
    ]);
    await until(() => events.length >= 1, { what: 'two members added', timeoutMs: 10_000 });
    expect(events[0]).toEqual({
      now: ['127.0.0.11:7420', '127.0.0.12:7420', '127.0.0.13:7420', '[::1]:7420'],
      added: ['127.0.0.13:7420', '[::1]:7420'],
      removed: [],
    });

    await dns.setHosts(['127.0.0.12 peers.test', '127.0.0.13 peers.test', '::1 peers.test']);
    await until(() => events.length >= 2, { what: 'a member removed', timeoutMs: 10_000 });
    expect(events[1]).toEqual({
      now: ['127.0.0.12:7420', '127.0.0.13:7420', '[::1]:7420'],
      added: [],
      removed: ['127.0.0.11:7420'],
    });
    expect(events).toHaveLength(2);
    expect(addresses(membership.members())).toEqual(events[1]!.now);

    expect(await counter(metrics, 'weightcache_membership_changes_total', { change: 'added' })).toBe(2);
    expect(await counter(metrics, 'weightcache_membership_changes_total', { change: 'removed' })).toBe(1);
    expect(await counter(metrics, 'weightcache_members')).toBe(3);
    const changes = lines.filter((l) => l.msg === 'membership: members changed');
    expect(changes.map((l) => [l.added, l.removed])).toEqual([
      [['127.0.0.13:7420', '[::1]:7420'], []],
      [[], ['127.0.0.11:7420']],
    ]);
  });

  it('keeps the last members when the name disappears or the server dies, warning once per streak', async () => {
    const { dns, metrics, membership, events, lines } = await setup([
      '127.0.0.11 peers.test',
      '127.0.0.12 peers.test',
    ]);
    const before = addresses(membership.members());
    const warnings = () => lines.filter((l) => String(l.msg).startsWith('DNS membership: resolution failed'));

    // The name has no records at all (NXDOMAIN): an empty answer is not "no cluster".
    await dns.setHosts(['127.0.0.99 other.test']);
    const kept = () => counter(metrics, 'weightcache_membership_dns_kept_total');
    await until(async () => (await kept()) >= 3, {
      what: 'three refreshes that kept the list',
      timeoutMs: 10_000,
    });
    expect(addresses(membership.members())).toEqual(before);
    expect(warnings()).toHaveLength(1);

    // Recovers, then the server is killed: queries fail, the list stays.
    await dns.setHosts(['127.0.0.11 peers.test', '127.0.0.12 peers.test', '127.0.0.13 peers.test']);
    await until(() => events.length >= 1, { what: 'member added after recovery', timeoutMs: 10_000 });
    expect(lines.some((l) => l.msg === 'DNS membership: resolution works again')).toBe(true);
    const kept0 = await kept();
    await dns.kill();
    await until(async () => (await kept()) >= kept0 + 3, {
      what: 'three failed refreshes',
      timeoutMs: 10_000,
    });
    expect(addresses(membership.members())).toEqual([
      '127.0.0.11:7420',
      '127.0.0.12:7420',
      '127.0.0.13:7420',
    ]);
    expect(events).toHaveLength(1);
    expect(warnings()).toHaveLength(2);
    expect(
      await counter(metrics, 'weightcache_membership_dns_resolutions_total', { result: 'error' }),
    ).toBeGreaterThan(0);
  });

  it('bounds the list at 1024 members, keeping the same ones in every process', async () => {
    const ips = Array.from({ length: 1100 }, (_, i) => `127.0.${Math.floor(i / 200)}.${(i % 200) + 1}`);
    const { membership, lines } = await setup(ips.map((ip) => `${ip} peers.test`));
    const expected = ips
      .map((ip) => `${ip}:7420`)
      .sort()
      .slice(0, 1024);
    expect(addresses(membership.members())).toEqual(expected);
    expect(lines.some((l) => l.msg === 'DNS membership: too many members; cut' && l.got === 1100)).toBe(true);
  });

  it('stops querying after close()', async () => {
    const { metrics, membership } = await setup(['127.0.0.11 peers.test']);
    const resolutions = () => counter(metrics, 'weightcache_membership_dns_resolutions_total');
    await until(async () => (await resolutions()) >= 2, {
      what: 'a refresh after the first',
      timeoutMs: 10_000,
    });
    membership.close();
    const n = await resolutions();
    await new Promise((r) => setTimeout(r, INTERVAL_MS * 4));
    expect(await resolutions()).toBe(n);
    expect(addresses(membership.members())).toEqual(['127.0.0.11:7420']);
  });
});
