/**
 * The chart's values.schema.json holds the project's config schema under
 * `$defs.config`, generated from src/config/schema.ts, so `helm lint` and
 * `helm install` reject a misspelt config key in values before any pod starts.
 * `$defs.mountKeys` validates `sidecar.mount.config` the same way.
 * chart.test.ts fails when they drift apart; regenerate with
 *   npx tsx test/helm/values-schema.ts --write
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';

export const valuesSchemaFile = fileURLToPath(
  new URL('../../helm/weightcache/values.schema.json', import.meta.url),
);

/** The config schema as JSON Schema, for the input side (sizes and durations are strings or numbers). */
export function configJsonSchema(): Record<string, unknown> {
  const { $schema: _, ...schema } = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return schema;
}

/**
 * `sidecar.mount.config`: the config's mount.* keys the chart does not set itself
 * (path, containers), each optional, so a misspelt one fails `helm install`.
 */
export function mountKeysJsonSchema(): Record<string, unknown> {
  const mount = configSchema.shape.mount.unwrap().unwrap().omit({ path: true, containers: true }).partial();
  const { $schema: _, ...schema } = z.toJSONSchema(mount, { io: 'input', unrepresentable: 'any' });
  return schema;
}

function write(): void {
  const values = JSON.parse(readFileSync(valuesSchemaFile, 'utf8'));
  values.$defs = { ...values.$defs, config: configJsonSchema(), mountKeys: mountKeysJsonSchema() };
  writeFileSync(valuesSchemaFile, `${JSON.stringify(values, null, 2)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) write();
