/**
 * The Helm chart, rendered by the real (pinned) helm: every value set's node
 * and sidecar config must load with the project's own schema, with the pod's
 * environment applied exactly as the process applies it (WEIGHTCACHE_* names
 * → keys, values parsed as YAML), and the wiring the docs promise must hold.
 * scripts/check-helm.sh (lint + schema validation of every object) runs here too.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startNodeProcess } from '../harness/node-process.js';
import { configJsonSchema, mountKeysJsonSchema, valuesSchemaFile } from './values-schema.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const chart = join(root, 'helm/weightcache');
const script = join(root, 'scripts/check-helm.sh');
const NAMESPACE = 'cache';
const POD_IP = '10.1.2.3';
// What the Secret would hold; only its shape matters to the schema.
const AZURE_CS =
  'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net';

/** The pinned helm: found, built (in CI, where a missing helm must fail), or absent (skip). */
function findHelm(): string | undefined {
  try {
    return execFileSync('bash', [script, '--find-helm'], { encoding: 'utf8' }).trim();
  } catch {
    if (!process.env.CI) return undefined;
    return execFileSync('bash', [script, '--ensure-helm'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .at(-1);
  }
}

const helm = findHelm();
const valueSets = [
  'default',
  ...readdirSync(join(chart, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => join(chart, 'ci', f)),
];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
  readinessProbe?: { httpGet?: { path: string; port: string }; exec?: { command: string[] } };
  livenessProbe?: { httpGet?: { path: string; port: string }; exec?: { command: string[] } };
}
interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; secret?: { secretName: string } }>;
}
// biome-ignore lint/suspicious/noExplicitAny: rendered objects are checked field by field below
type K8s = { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };

function render(values: string, extra: string[] = []): K8s[] {
  const args = [
    'template',
    'weightcache',
    chart,
    '--namespace',
    NAMESPACE,
    '--kube-version',
    '1.33.0',
    ...extra,
  ];
  if (values !== 'default') args.push('-f', values);
  const text = execFileSync(helm!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8s | null)
    .filter((d): d is K8s => d !== null);
}

const one = (objs: K8s[], kind: string) => {
  const found = objs.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

const tmp = mkdtempSync(join(tmpdir(), 'wc-helm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Loads a rendered config file the way the container does: `--config FILE`
 * plus the container's WEIGHTCACHE_* environment (Secrets and the downward
 * API filled in with stand-ins).
 */
function loadAsPod(configText: string, container: Container, label: string): Config {
  const file = join(tmp, `${label}.yaml`);
  writeFileSync(file, configText);
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (!e.name.startsWith('WEIGHTCACHE_')) continue;
    // With hostNetwork the pod IP is the host IP: one stand-in for both.
    if (e.value !== undefined)
      env[e.name] = e.value.replaceAll('$(POD_IP)', POD_IP).replaceAll('$(HOST_IP)', POD_IP);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = AZURE_CS;
    else throw new Error(`${label}: ${e.name} has neither a value nor a Secret`);
  }
  return loadConfig({ file, env });
}

const bytes = (q: string) => {
  const m = /^(\d+)(Gi|Mi)$/.exec(q)!;
  return Number(m[1]) * (m[2] === 'Gi' ? 2 ** 30 : 2 ** 20);
};

describe.skipIf(!helm)('helm chart', () => {
  beforeAll(() => {
    if (!helm) throw new Error('unreachable');
  });

  it('values.schema.json holds the current config schema (else: npx tsx test/helm/values-schema.ts --write)', () => {
    const values = JSON.parse(readFileSync(valuesSchemaFile, 'utf8'));
    expect(values.$defs.config).toEqual(configJsonSchema());
    expect(values.$defs.mountKeys).toEqual(mountKeysJsonSchema());
  });

  it('sidecar.mount exposes the FUSE mount to the host: privileged, Bidirectional hostPath, the config loads', () => {
    const objs = render(join(chart, 'ci', 'sidecar-mount-values.yaml'));
    const ds = one(objs, 'DaemonSet');
    const spec = ds.spec.template.spec;
    const sidecar = spec.containers[0];
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'weightcache')!;
    const c = loadAsPod(cm.data!['sidecar.yaml']!, sidecar, 'mount-sidecar');
    // The FUSE mount sits one level inside the propagated volume: a stale mount left by a crash
    // is then below the hostPath, which kubelet can still bind into the restarted sidecar.
    expect(c.mount).toMatchObject({
      path: '/var/lib/weightcache/mount/fs',
      containers: ['models'],
      modelDepth: 2,
      listInterval: 30_000,
      readAhead: 4 * 2 ** 20,
      allowOther: true,
    });
    const vm = sidecar.volumeMounts.find((m: { name: string }) => m.name === 'mount');
    expect(vm).toEqual({
      name: 'mount',
      mountPath: '/var/lib/weightcache/mount',
      mountPropagation: 'Bidirectional',
    });
    expect(c.mount!.path.startsWith(`${vm.mountPath}/`)).toBe(true);
    expect(spec.volumes.find((v: { name: string }) => v.name === 'mount')).toEqual({
      name: 'mount',
      hostPath: { path: '/var/lib/weightcache/mount', type: 'DirectoryOrCreate' },
    });
    // mount(2) of FUSE: root with CAP_SYS_ADMIN and /dev/fuse; Bidirectional: a privileged container.
    expect(sidecar.securityContext).toMatchObject({ privileged: true, runAsUser: 0, runAsNonRoot: false });
    // Without the mount, none of it.
    const plain = one(render('default', ['--set', 'sidecar.enabled=true']), 'DaemonSet');
    const plainSidecar = plain.spec.template.spec.containers[0];
    expect(plainSidecar.securityContext.privileged).toBeUndefined();
    expect(plainSidecar.volumeMounts.some((m: { name: string }) => m.name === 'mount')).toBe(false);
  });

  it('sidecar.mount: a misspelt mount key or no containers fails the render, saying what', () => {
    const fails = (extra: string[]) => {
      try {
        render(join(chart, 'ci', 'sidecar-mount-values.yaml'), extra);
      } catch (err) {
        return String((err as { stderr?: string }).stderr);
      }
      return '';
    };
    expect(fails(['--set', 'sidecar.mount.config.listIntervl=3s'])).toMatch(/listIntervl/);
    expect(fails(['--set', 'sidecar.mount.containers=null'])).toMatch(/sidecar\.mount\.containers/);
    expect(fails(['--set', 'sidecar.mount.hostPath=relative/dir'])).toMatch(/hostPath/);
  });

  for (const values of valueSets) {
    const name = basename(values, '.yaml');
    describe(name, () => {
      const objs = render(values);
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'weightcache')!;
      const sts = one(objs, 'StatefulSet');
      const podSpec = sts.spec.template.spec as PodSpec;
      const node = podSpec.containers.find((c) => c.name === 'weightcache')!;
      const v = parseYaml(readFileSync(join(chart, 'values.yaml'), 'utf8'));
      const over = values === 'default' ? {} : parseYaml(readFileSync(values, 'utf8'));
      const memLimit: string = over.node?.resources?.limits?.memory ?? v.node.resources.limits.memory;
      const headless = `weightcache-headless.${NAMESPACE}.svc.cluster.local`;
      const authOn: boolean = over.auth?.enabled ?? v.auth.enabled;

      it('node config loads with the project schema, as the pod runs it', () => {
        expect(node.args?.slice(0, 3)).toEqual(['node', '--config', '/etc/weightcache/node.yaml']);
        const c = loadAsPod(cm.data!['node.yaml']!, node, `${name}-node`);
        expect(c.http.listen).toEqual({ host: '0.0.0.0', port: 8420 });
        expect(c.transport?.listen).toEqual({ host: '0.0.0.0', port: 7420 });
        expect(c.cluster.self).toBe(`${POD_IP}:7420`);
        expect(c.cluster.members).toEqual({ dns: { name: headless, port: 7420, interval: 10_000 } });
        // DRAM budget: floor(limits.memory × node.dramFraction).
        expect(c.cache.dram.maxBytes).toBe(Math.floor(bytes(memLimit) * v.node.dramFraction));
        expect(c.cache.nvme?.dir).toBe('/var/lib/weightcache/chunks');
        const mounts = node.volumeMounts!.map((m) => m.mountPath);
        expect(mounts).toContain('/var/lib/weightcache/chunks');
        if (c.origin.type === 'fs') expect(mounts).toContain(c.origin.fs.root);
        // SIGKILL must come after the drain: preStop sleep + shutdownGrace < grace period.
        expect(podSpec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
          Math.max(c.http.shutdownGrace, c.resp?.shutdownGrace ?? 0),
        );
        expect(node.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
        expect(node.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      });

      it('the ConfigMap alone parses with the project schema, short only of the Secret it names', () => {
        const tree = parseYaml(cm.data!['node.yaml']!);
        if (tree.origin?.type === 'azure') {
          // The connection string arrives as WEIGHTCACHE_ORIGIN_AZURE_CONNECTIONSTRING; nothing else is missing.
          expect(() => parseConfig(tree, 'node.yaml')).toThrow(/origin\.azure: origin\.type is azure/);
          expect(() => parseConfig(tree, 'node.yaml')).not.toThrow(/unknown key|cache\.|cluster\.|http\./);
        } else {
          expect(parseConfig(tree, 'node.yaml').cluster.members).toBeTruthy();
        }
      });

      it('a real node starts from the rendered config and drains on SIGTERM', async () => {
        const tree = parseYaml(cm.data!['node.yaml']!);
        if (tree.origin?.type !== 'fs') return; // Azure: covered by the schema checks above, not started here
        // Only what cannot exist outside a pod changes: ports (0: other tests run beside this one) and dirs.
        const dir = mkdtempSync(join(tmp, `${name}-run-`));
        tree.http.listen = '0.0.0.0:0';
        tree.transport.listen = '0.0.0.0:0';
        tree.origin.fs.root = join(dir, 'origin');
        tree.cache.nvme.dir = join(dir, 'chunks');
        const env = { WEIGHTCACHE_CLUSTER_SELF: '127.0.0.1:7420' };
        // Auth files: what the chart-created Secret holds (or stand-ins for an existing Secret), in temp files.
        const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'weightcache-auth') as
          | (K8s & { stringData?: Record<string, string> })
          | undefined;
        const authFile = (key: string, standIn: string) => {
          const file = join(dir, key);
          writeFileSync(file, secret?.stringData?.[key] ?? standIn);
          return file;
        };
        if (tree.auth?.tokensFile) {
          tree.auth.tokensFile = authFile('tokens', 'reader-token-0123456789abcdef\n');
          tree.auth.adminTokensFile = authFile('admin-tokens', 'admin-token-0123456789abcdef\n');
          tree.auth.clusterSecretFile = authFile(
            'cluster-secret',
            'cluster-secret-0123456789abcdef-0123456789',
          );
        }
        const n = await startNodeProcess({ config: tree, dir, env });
        try {
          expect((await fetch(`${n.url}/readyz`)).status).toBe(200);
          expect((await fetch(`${n.url}/healthz`)).status).toBe(200);
          // With the chart's auth on, reads need a token; probes above did not.
          const read = await fetch(`${n.url}/v1/objects/demo/tiny-llama/config.json`);
          if (authOn) expect(read.status).toBe(401);
          else expect([401, 403]).not.toContain(read.status);
        } finally {
          const t0 = Date.now();
          expect(await n.stop()).toBe(0);
          expect(Date.now() - t0).toBeLessThan(podSpec.terminationGracePeriodSeconds! * 1000);
        }
      });

      it('origin credentials come from a Secret, never the ConfigMap', () => {
        expect(JSON.stringify(cm.data)).not.toMatch(/AccountKey|SharedAccessSignature|connectionString/i);
        const c = loadAsPod(cm.data!['node.yaml']!, node, `${name}-origin`);
        const fromSecret = node.env?.find((e) => e.name === 'WEIGHTCACHE_ORIGIN_AZURE_CONNECTIONSTRING');
        if (c.origin.type === 'azure') {
          expect(fromSecret?.valueFrom?.secretKeyRef?.name).toBeTruthy();
          expect(c.origin.azure?.connectionString).toBe(AZURE_CS);
        } else {
          expect(fromSecret).toBeUndefined();
        }
      });

      it('auth files are set only when mounted from the auth Secret', () => {
        const c = loadAsPod(cm.data!['node.yaml']!, node, `${name}-auth`);
        const mount = node.volumeMounts!.find((m) => m.name === 'auth');
        if (authOn) {
          expect(mount?.mountPath).toBe('/etc/weightcache/auth');
          expect(podSpec.volumes!.find((vol) => vol.name === 'auth')?.secret?.secretName).toBeTruthy();
          expect(c.auth).toMatchObject({
            tokensFile: '/etc/weightcache/auth/tokens',
            adminTokensFile: '/etc/weightcache/auth/admin-tokens',
            clusterSecretFile: '/etc/weightcache/auth/cluster-secret',
          });
        } else {
          expect(mount).toBeUndefined();
          expect(c.auth).toMatchObject({ tokensFile: null, adminTokensFile: null, clusterSecretFile: null });
        }
      });

      it('a ServiceMonitor can scrape: with a scrape token it sends one, else /metrics is opted open', () => {
        const c = loadAsPod(cm.data!['node.yaml']!, node, `${name}-metrics`);
        const monitor = objs.find((o) => o.kind === 'ServiceMonitor');
        const endpoint = (monitor?.spec as { endpoints?: Array<{ authorization?: unknown }> } | undefined)
          ?.endpoints?.[0];
        const needsOptIn = authOn && monitor !== undefined && endpoint?.authorization === undefined;
        expect(c.auth.openMetrics).toBe(needsOptIn);
      });

      const ds = objs.find((o) => o.kind === 'DaemonSet');
      it.runIf(over.sidecar?.enabled)(
        'sidecar config loads, and agrees with the nodes on placement inputs',
        () => {
          const spec = ds!.spec.template.spec as PodSpec;
          const sidecar = spec.containers[0]!;
          expect(sidecar.args).toEqual(['sidecar', '--config', '/etc/weightcache/sidecar.yaml']);
          const s = loadAsPod(cm.data!['sidecar.yaml']!, sidecar, `${name}-sidecar`);
          const n = loadAsPod(cm.data!['node.yaml']!, node, `${name}-node2`);
          // loopback, or (sidecar.listen: hostIP) the host's IP from the downward API.
          const listenHost = over.sidecar?.listen === 'hostIP' ? POD_IP : '127.0.0.1';
          expect(s.http.listen).toEqual({ host: listenHost, port: 8420 });
          expect(s.sidecar.socket).toBe('/run/weightcache/weightcache.sock');
          expect(s.transport).toBeNull();
          // Chunk names contain the origin and the chunk size; owners come from the member list.
          expect(s.origin).toEqual(n.origin);
          expect(s.cache.chunkSize).toBe(n.cache.chunkSize);
          expect(s.cluster.members).toEqual(n.cluster.members);
          // The cluster secret always (to talk to the nodes); tokens only when the HTTP door leaves loopback.
          expect(s.auth.clusterSecretFile).toBe(n.auth.clusterSecretFile);
          expect(s.auth.tokensFile).toBe(over.sidecar?.listen === 'hostIP' ? n.auth.tokensFile : null);
          expect(sidecar.readinessProbe?.exec?.command.join(' ')).toContain(
            '/run/weightcache/weightcache.sock',
          );
          expect(spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(s.http.shutdownGrace);
        },
      );
    });
  }

  it('a ServiceMonitor given a scrape token leaves /metrics closed', () => {
    const objs = render('default', [
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'metrics.serviceMonitor.authorization.credentials.name=weightcache-auth',
      '--set',
      'metrics.serviceMonitor.authorization.credentials.key=metrics-token',
    ]);
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'weightcache')!;
    expect(parseYaml(cm.data!['node.yaml']!).auth.openMetrics).toBeUndefined();
    const open = render('default', ['--set', 'metrics.serviceMonitor.enabled=true']);
    const cm2 = open.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'weightcache')!;
    expect(parseYaml(cm2.data!['node.yaml']!).auth.openMetrics).toBe(true);
  });

  it('a misspelt config key in values fails the render, naming the key', () => {
    let message = '';
    try {
      render('default', ['--set', 'config.cache.dram.maxBytez=1GiB']);
    } catch (err) {
      message = String((err as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/maxBytez/);
  });

  it('auth off without auth.insecure fails the render (the nodes would refuse to start: protected mode)', () => {
    let message = '';
    try {
      render('default', ['--set', 'auth.enabled=false']);
    } catch (err) {
      message = String((err as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/protected mode/);
  });

  it('a grace period that would cut the drain short fails the render', () => {
    let message = '';
    try {
      render('default', ['--set', 'node.terminationGracePeriodSeconds=10']);
    } catch (err) {
      message = String((err as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/must exceed http.shutdownGrace/);
    expect(message).toMatch(/\(10\)/);
  });

  it('scripts/check-helm.sh passes: lint, template and schema validation of every value set', () => {
    execFileSync('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  }, 900_000);
});
