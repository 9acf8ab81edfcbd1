import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { Membership } from '../../src/placement/membership.js';
import { captureLog } from './log-capture.js';

const cluster = (members: unknown) =>
  parseConfig({ cluster: { members: Array.isArray(members) ? { static: members } : members } }, 'test')
    .cluster;

describe('static membership', () => {
  it('takes "host:port" strings and { address, weight } objects, sorted by address', async () => {
    const metrics = new Metrics();
    const m = await Membership.start(
      cluster(['10.0.0.2:7420', { address: '10.0.0.1:7420', weight: 2 }, '[fd00::5]:7420']),
      { log: captureLog().log, metrics },
    );
    expect(m.members()).toEqual([
      { address: '10.0.0.1:7420', weight: 2 },
      { address: '10.0.0.2:7420', weight: 1 },
      { address: '[fd00::5]:7420', weight: 1 },
    ]);
    expect((await metrics.registry.getSingleMetric('weightcache_members')!.get()).values[0]!.value).toBe(3);
    m.close();
  });

  it('resolves hostnames once, to IPs', async () => {
    const m = await Membership.start(cluster(['localhost:7421']), { log: captureLog().log });
    expect(m.members()).toEqual([{ address: '127.0.0.1:7421', weight: 1 }]);
    m.close();
  });

  it('rejects two entries that resolve to the same member, naming both', async () => {
    const err = await Membership.start(cluster(['localhost:7420', '127.0.0.1:7420']), {
      log: captureLog().log,
    }).catch((e: unknown) => e);
    expect(CacheError.is(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/"localhost:7420" and "127.0.0.1:7420" are the same member/);
  });

  it('rejects a hostname that does not resolve', async () => {
    const err = await Membership.start(cluster(['no-such-host.invalid:7420']), {
      log: captureLog().log,
    }).catch((e: unknown) => e);
    expect(CacheError.is(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/cannot resolve "no-such-host.invalid"/);
  });

  it('has no members without cluster.members', async () => {
    const m = await Membership.start(cluster(null), { log: captureLog().log });
    expect(m.members()).toEqual([]);
    m.close();
  });

  it('two memberships on one registry share the metrics instead of failing to register', async () => {
    const metrics = new Metrics();
    const a = await Membership.start(cluster(['10.0.0.1:1']), { log: captureLog().log, metrics });
    const b = await Membership.start(cluster(['10.0.0.1:1']), { log: captureLog().log, metrics });
    a.close();
    b.close();
  });
});

describe('cluster config', () => {
  const bad: Array<[unknown, RegExp]> = [
    [['10.0.0.1'], /cluster\.members\.static\.0: expected "host:port"/],
    [['10.0.0.1:0'], /port 1-65535/],
    [['10.0.0.1:70000'], /port 1-65535/],
    [['a b:1'], /expected "host:port"/],
    [['10.0.0.1:7420', '10.0.0.1:7420'], /duplicate member "10\.0\.0\.1:7420"/],
    [[{ address: '10.0.0.1:7420', weight: 0 }], /static\.0\.weight/],
    [[{ address: '10.0.0.1:7420', weight: -2 }], /static\.0\.weight/],
    [[{ address: '10.0.0.1:7420', wieght: 2 }], /wieght/],
    [[], /static: list at least one member/],
    [{ static: ['a:1'], dns: { name: 'x.test', port: 1 } }, /exactly one of static or dns/],
    [{}, /exactly one of static or dns/],
    [{ dns: { name: 'x.test', port: 7420, servers: ['dns.example:53'] } }, /servers\.0: expected an IP/],
    [{ dns: { name: 'x.test', port: 7420, interval: '5ms' } }, /interval: must be between 100ms and 1h/],
    [{ dns: { name: 'x.test' } }, /dns\.port/],
  ];
  it.each(bad)('rejects %j', (members, message) => {
    expect(() => cluster(members)).toThrow(message);
  });

  it('defaults peerBackoff to 5s and requires peerBackoffMax >= peerBackoff', () => {
    const c = parseConfig({}, 'test').cluster;
    expect([c.peerBackoff, c.peerBackoffMax]).toEqual([5000, 60_000]);
    expect(() => parseConfig({ cluster: { peerBackoff: '2m' } }, 'test')).toThrow(/peerBackoffMax/);
  });
});

describe('cluster.self', () => {
  it('is resolved like a member, so it compares equal to its entry', async () => {
    const captured = captureLog();
    const cfg = parseConfig(
      { cluster: { self: 'localhost:7420', members: { static: ['127.0.0.1:7420', '10.0.0.2:7420'] } } },
      'test',
    ).cluster;
    const m = await Membership.start(cfg, { log: captured.log });
    expect(m.self).toBe('127.0.0.1:7420');
    expect(captured.lines.some((l) => l.level === 40)).toBe(false);
    m.close();
  });

  it('warns when self is not among the members, and is undefined when unset', async () => {
    const captured = captureLog();
    const cfg = parseConfig(
      { cluster: { self: '10.0.0.9:7420', members: { static: ['10.0.0.2:7420'] } } },
      'test',
    );
    const m = await Membership.start(cfg.cluster, { log: captured.log });
    expect(captured.lines.some((l) => l.msg === 'membership: cluster.self is not among the members')).toBe(
      true,
    );
    m.close();
    const n = await Membership.start(cluster(['10.0.0.2:7420']), { log: captureLog().log });
    expect(n.self).toBeUndefined();
    n.close();
  });

  it('rejects a self that is not host:port', async () => {
    const cfg = parseConfig({ cluster: { self: 'nohost' } }, 'test').cluster;
    await expect(Membership.start(cfg, { log: captureLog().log })).rejects.toThrow(/cluster\.self: "nohost"/);
  });
});
