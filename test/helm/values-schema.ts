/**
 * The chart's values.schema.json holds the project's config schema under
 * `$defs.config`, generated from src/config/schema.ts, so `helm lint` and
 * `helm install` reject a misspelt config key in values before any pod starts.
 * chart.test.ts fails when the two drift apart; regenerate with
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

function write(): void {
  const values = JSON.parse(readFileSync(valuesSchemaFile, 'utf8'));
  values.$defs = { ...values.$defs, config: configJsonSchema() };
  writeFileSync(valuesSchemaFile, `${JSON.stringify(values, null, 2)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) write();
