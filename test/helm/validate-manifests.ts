/**
 * Validates rendered Kubernetes manifests offline: each object against the
 * Kubernetes OpenAPI schema of its kind (the npm package kubernetes-models,
 * whose ajv validators are generated from the upstream OpenAPI spec: required
 * fields, types, enums, formats), and the chart's CRD objects (ServiceMonitor,
 * PrometheusRule) against the prometheus-operator CRD schemas
 * (@kubernetes-models/prometheus-operator). Those packages are not project
 * dependencies: scripts/check-helm.sh installs them into a cache directory
 * and passes it here, so they are imported by absolute path.
 *
 *   npx tsx test/helm/validate-manifests.ts MODELS_DIR rendered.yaml...
 *
 * Also checked, because the schemas cannot see them: unique kind/name, and
 * that a workload's selector matches its pod template's labels.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    template?: { metadata?: { labels?: Record<string, string> } };
  };
}

type ModelClass = new (data: unknown) => { validate(): void };

/** apiVersion + kind → the model module that validates it. */
function modelFile(modelsDir: string, apiVersion: string, kind: string): string {
  const nm = join(modelsDir, 'node_modules');
  if (apiVersion.startsWith('monitoring.coreos.com/')) {
    return join(nm, '@kubernetes-models/prometheus-operator', apiVersion, `${kind}.js`);
  }
  return join(nm, 'kubernetes-models', apiVersion, `${kind}.js`);
}

export async function validateManifests(
  modelsDir: string,
  yamlText: string,
  source: string,
): Promise<string[]> {
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const doc of parseAllDocuments(yamlText)) {
    if (doc.errors.length > 0) {
      errors.push(`${source}: YAML: ${doc.errors[0]?.message}`);
      continue;
    }
    const obj = doc.toJS() as K8sObject | null;
    if (obj === null) continue;
    const { apiVersion, kind } = obj;
    const name = obj.metadata?.name;
    const id = `${source}: ${kind ?? '?'}/${name ?? '?'}`;
    if (!apiVersion || !kind || !name) {
      errors.push(`${id}: apiVersion, kind and metadata.name are required`);
      continue;
    }
    if (seen.has(`${kind}/${name}`)) errors.push(`${id}: rendered twice`);
    seen.add(`${kind}/${name}`);
    const file = modelFile(modelsDir, apiVersion, kind);
    if (!existsSync(file)) {
      errors.push(
        `${id}: no schema for ${apiVersion} ${kind} (not a Kubernetes or prometheus-operator kind?)`,
      );
      continue;
    }
    const mod = (await import(pathToFileURL(file).href)) as Record<string, ModelClass>;
    const Model = mod[kind];
    if (!Model) {
      errors.push(`${id}: ${file} exports no ${kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (err) {
      errors.push(`${id}: ${(err as Error).message}`);
    }
    // The API server accepts a selector that matches no pod of the template; the controller then never adopts them.
    const selector = obj.spec?.selector?.matchLabels;
    const podLabels = obj.spec?.template?.metadata?.labels;
    if (selector && obj.spec?.template) {
      for (const [k, v] of Object.entries(selector)) {
        if (podLabels?.[k] !== v)
          errors.push(`${id}: selector ${k}=${v} does not match the pod template's labels`);
      }
    }
  }
  return errors;
}

async function main(argv: string[]): Promise<void> {
  const [modelsDir, ...files] = argv;
  if (!modelsDir || files.length === 0) {
    console.error('usage: validate-manifests.ts MODELS_DIR rendered.yaml...');
    process.exit(2);
  }
  let failed = 0;
  for (const file of files) {
    const errors = await validateManifests(modelsDir, readFileSync(file, 'utf8'), file);
    for (const e of errors) console.error(`  ${e}`);
    failed += errors.length;
    if (errors.length === 0) console.log(`  ${file}: every object valid`);
  }
  if (failed > 0) {
    console.error(`${failed} invalid object(s)`);
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
