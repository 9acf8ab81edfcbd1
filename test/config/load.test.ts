import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseDuration, parseSize } from '../../src/config/units.js';

const dir = mkdtempSync(join(tmpdir(), 'wc-config-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('config', () => {
  it('defaults match docs/configuration.md', () => {
    const c = loadConfig({ env: {} });
    expect(c.http.listen).toEqual({ host: '127.0.0.1', port: 8420 });
    expect(c.cache.chunkSize).toBe(4 * 2 ** 20);
    expect(c.cache.dram.maxBytes).toBe(2 ** 30);
    expect(c.cache.nvme).toEqual({
      dir: './var/chunks',
      maxBytes: 50 * 2 ** 30,
      queueDepth: 32,
      openFiles: 256,
      directIo: true,
      io: 'auto',
      ioThreads: 4,
    });
    expect(c.leases.term).toBe(30_000);
    expect(c.origin.type).toBe('fs');
  });

  it('the shipped config files are valid', () => {
    expect(loadConfig({ file: 'config/default.yaml', env: {} }).cache.nvme?.maxBytes).toBe(10 * 2 ** 30);
    expect(loadConfig({ file: 'config/example.yaml', env: {} }).http.listen.port).toBe(8420);
  });

  it('YAML file, then env, then --set', () => {
    const f = file('a.yaml', 'cache:\n  dram: { maxBytes: 256MiB }\nleases: { term: 5s }\n');
    const c = loadConfig({
      file: f,
      env: { WEIGHTCACHE_LEASES_TERM: '7s', WEIGHTCACHE_HTTP_LISTEN: '127.0.0.2:9000' },
      sets: ['cache.chunkSize=1MiB'],
    });
    expect(c.cache.dram.maxBytes).toBe(256 * 2 ** 20);
    expect(c.leases.term).toBe(7000);
    expect(c.http.listen).toEqual({ host: '127.0.0.2', port: 9000 });
    expect(c.cache.chunkSize).toBe(2 ** 20);
  });

  it('checks leases.margin against leases.term', () => {
    const c = loadConfig({ env: {} });
    expect(c.leases).toEqual({ term: 30_000, margin: 1_000, membershipLag: null });
    expect(err(() => loadConfig({ env: {}, sets: ['leases.margin=30s'] }))).toMatch(
      /leases\.margin.*less than leases\.term/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['leases.margin=10ms'] }))).toMatch(
      /leases\.margin.*at least leases\.term \/ 1000/,
    );
    expect(loadConfig({ env: { WEIGHTCACHE_LEASES_MEMBERSHIPLAG: '20s' } }).leases.membershipLag).toBe(
      20_000,
    );
  });

  it('resp.door: native, but not with resp.tls', () => {
    const yaml = (extra: string) =>
      file('resp.yaml', `resp:\n  listen: "127.0.0.1:6380"\n  door: native\n${extra}`);
    const c = loadConfig({ file: yaml(''), env: {} });
    expect(c.resp?.door).toBe('native');
    expect(c.resp?.threads).toBeNull();
    expect(
      err(() => loadConfig({ file: yaml('  tls: { certFile: /c.pem, keyFile: /k.pem }\n'), env: {} })),
    ).toMatch(/resp\.door.*the native door does not serve TLS: use resp\.door: js with resp\.tls/);
    expect(err(() => loadConfig({ file: yaml('  threads: 33\n'), env: {} }))).toMatch(/resp\.threads/);
  });

  it('names the bad key', () => {
    expect(err(() => loadConfig({ env: {}, sets: ['cache.dram.maxBytez=1'] }))).toMatch(
      /unknown key 'cache\.dram\.maxBytez'/,
    );
    expect(err(() => loadConfig({ file: file('b.yaml', 'htp: {}\n'), env: {} }))).toMatch(
      /unknown key 'htp'.*|b\.yaml/s,
    );
    expect(err(() => loadConfig({ env: { WEIGHTCACHE_CACHE_DRAM_MAXBYTEZ: '1' } }))).toMatch(
      /WEIGHTCACHE_CACHE_DRAM_MAXBYTEZ does not name a config key/,
    );
  });

  it('names the bad value', () => {
    expect(err(() => loadConfig({ env: {}, sets: ['http.listen=nohost'] }))).toMatch(
      /http\.listen: expected "host:port"/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['http.listen=1.2.3.4:70000'] }))).toMatch(/http\.listen/);
    expect(err(() => loadConfig({ env: {}, sets: ['cache.dram.maxBytes=lots'] }))).toMatch(
      /cache\.dram\.maxBytes/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['cache.dram.maxBytes=4XB'] }))).toMatch(
      /unknown unit "XB"/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['leases.term=-1s'] }))).toMatch(/leases\.term/);
    expect(err(() => loadConfig({ env: {}, sets: ['cache.chunkSize=3000'] }))).toMatch(
      /cache\.chunkSize: must be a multiple of 4KiB/,
    );
    // A DRAM budget below one chunk is refused at start, naming both keys.
    expect(err(() => loadConfig({ env: {}, sets: ['cache.dram.maxBytes=1MiB'] }))).toMatch(
      /cache\.dram\.maxBytes: 1 ?MiB is less than one chunk \(cache\.chunkSize 4 ?MiB\): raise cache\.dram\.maxBytes or lower cache\.chunkSize/,
    );
    expect(
      loadConfig({ env: {}, sets: ['cache.dram.maxBytes=1MiB', 'cache.chunkSize=1MiB'] }).cache.dram.maxBytes,
    ).toBe(2 ** 20);
    expect(err(() => loadConfig({ env: {}, sets: ['origin.type=ftp'] }))).toMatch(/origin\.type/);
    expect(err(() => loadConfig({ env: {}, sets: ['origin.type=azure'] }))).toMatch(/origin\.azure/);
    expect(err(() => loadConfig({ env: {}, sets: ['origin.type=s3'] }))).toMatch(
      /origin\.s3\.endpoint is not set/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['s3.path=/v1'] }))).toMatch(/s3\.path/);
    expect(err(() => loadConfig({ env: {}, sets: ['hub.path=/s3'] }))).toMatch(/must differ/);
  });

  it('bad files and bad --set syntax', () => {
    expect(err(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }))).toMatch(
      /cannot read config file/,
    );
    expect(err(() => loadConfig({ file: file('c.yaml', 'a: [\n'), env: {} }))).toMatch(/not valid YAML/);
    expect(err(() => loadConfig({ file: file('d.yaml', '- 1\n'), env: {} }))).toMatch(/must hold a mapping/);
    expect(err(() => loadConfig({ env: {}, sets: ['noequals'] }))).toMatch(/expected key\.path=value/);
    expect(err(() => loadConfig({ env: {}, sets: ['__proto__.x=1'] }))).toMatch(/bad config key path/);
  });

  it('every key can come from the environment, also inside blocks that default to null', () => {
    const c = loadConfig({
      env: {
        WEIGHTCACHE_RESP_LISTEN: '127.0.0.1:7000',
        WEIGHTCACHE_RESP_MAXCLIENTS: '5',
        WEIGHTCACHE_HTTP_TLS_CERTFILE: '/c.pem',
        WEIGHTCACHE_HTTP_TLS_KEYFILE: '/k.pem',
        WEIGHTCACHE_CLUSTER_MEMBERS_DNS_NAME: 'svc.cache',
        WEIGHTCACHE_CLUSTER_MEMBERS_DNS_PORT: '7420',
        WEIGHTCACHE_ADDON_PATH: '/not/a/key/but/allowed',
      },
    });
    expect(c.resp).toMatchObject({ listen: { host: '127.0.0.1', port: 7000 }, maxClients: 5 });
    expect(c.http.tls).toEqual({ certFile: '/c.pem', keyFile: '/k.pem' });
    expect(c.cluster.members).toMatchObject({ dns: { name: 'svc.cache', port: 7420 } });
    expect(
      loadConfig({ env: { WEIGHTCACHE_TRANSPORT: '{listen: "127.0.0.1:7421"}' } }).transport?.listen.port,
    ).toBe(7421);
  });

  it('names where a bad value came from', () => {
    expect(err(() => loadConfig({ env: { WEIGHTCACHE_CACHE_DRAM_MAXBYTES: 'abc' } }))).toMatch(
      /\(environment: WEIGHTCACHE_CACHE_DRAM_MAXBYTES\):\n {2}- cache\.dram\.maxBytes: "abc" is not a size/,
    );
    expect(err(() => loadConfig({ env: {}, sets: ['leases.term=soon'] }))).toMatch(/\(--set leases\.term\)/);
  });

  it('units', () => {
    expect(parseSize('4MiB')).toBe(4 * 2 ** 20);
    expect(parseSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('10GB')).toBe(1e10);
    expect(parseSize(4096)).toBe(4096);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5m')).toBe(300_000);
    expect(() => parseSize('9'.repeat(30))).toThrow(/too large/);
  });
});
