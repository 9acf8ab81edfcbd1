/**
 * Every configuration key is documented where users look: a row in the table
 * of docs/configuration.md, and config/example.yaml (set, or shown in a comment
 * as the example does for blocks that are off by default). And the docs name no
 * key the schema does not have.
 *
 * Keys come from the schema itself (src/config/schema.ts, through zod's JSON
 * Schema of its input): every path of object properties, not descending into
 * arrays or free-form maps (`origin.http.headers`). A leaf key must be listed;
 * an object key (`cache.nvme`, `http.tls`) may be, and a leaf may instead be
 * named in its parent's row (`http.tls`: "`{ certFile, keyFile }`").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';

const root = join(import.meta.dirname, '../..');

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

/** Every key path of the schema, and whether it is a leaf (no keys below it). */
function schemaKeys(): Map<string, { leaf: boolean }> {
  const json = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const keys = new Map<string, { leaf: boolean }>();
  const walk = (node: JsonSchema, path: string[]): void => {
    for (const branch of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])])
      walk(branch, path);
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const p = [...path, name];
      keys.set(p.join('.'), { leaf: !hasProperties(child) });
      walk(child, p);
    }
  };
  walk(json, []);
  return keys;
}

function hasProperties(node: JsonSchema): boolean {
  if (node.properties && Object.keys(node.properties).length > 0) return true;
  return [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])].some(hasProperties);
}

/** The rows of configuration.md's key table: key → the row's text. */
function documentedKeys(): Map<string, string> {
  const md = readFileSync(join(root, 'docs/configuration.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of md.matchAll(/^\| `([A-Za-z0-9.]+)` \|(.*)$/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

/**
 * The key paths config/example.yaml shows: its YAML keys, the keys of
 * commented-out blocks (`# resp:` / `#   listen: …`, indented as if the `#` and
 * one space were not there), and the keys of flow maps on a key's line, value or
 * comment (`tls: null  # { certFile: …, keyFile: … }`) as that key's children.
 */
function exampleKeys(): Set<string> {
  const text = readFileSync(join(root, 'config/example.yaml'), 'utf8');
  const keys = new Set<string>();
  const stack: Array<{ indent: number; key: string }> = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^(\s*)# ?/, '$1');
    const m = /^(\s*)([A-Za-z][A-Za-z0-9]*):(\s|$)(.*)$/.exec(line);
    if (!m) continue;
    const indent = m[1]!.length;
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
    stack.push({ indent, key: m[2]! });
    const path = stack.map((s) => s.key).join('.');
    keys.add(path);
    for (const k of flowKeys(m[4] ?? '')) keys.add(`${path}.${k}`);
  }
  return keys;
}

/** The keys of the first flow map in `text` (`{ a: 1, b: { c: 2 } }` → a, b), outside quotes. */
function flowKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let token = '';
  for (const ch of text.replace(/"[^"]*"/g, '""')) {
    if (ch === '{') depth++;
    else if (ch === '}') {
      if (--depth === 0) break;
    } else if (depth === 1 && ch === ':' && /^[A-Za-z][A-Za-z0-9]*$/.test(token)) keys.push(token);
    token = /[A-Za-z0-9]/.test(ch) ? token + ch : '';
  }
  return keys;
}

/** `a.b.c` is covered if listed, or if an ancestor's row names the rest of the path. */
function coveredByRow(key: string, rows: Map<string, string>): boolean {
  if (rows.has(key)) return true;
  const parts = key.split('.');
  for (let i = parts.length - 1; i > 0; i--) {
    const row = rows.get(parts.slice(0, i).join('.'));
    if (row && parts.slice(i).every((p) => new RegExp(`\\b${p}\\b`).test(row))) return true;
  }
  return false;
}

const keys = schemaKeys();
const leaves = [...keys].filter(([, k]) => k.leaf).map(([p]) => p);

describe('configuration keys in the docs', () => {
  it('finds the schema keys (sanity: the walk sees nested and nullable blocks)', () => {
    expect(leaves).toEqual(
      expect.arrayContaining([
        'http.listen',
        'resp.maxGetBytes',
        'cache.nvme.dir',
        'cluster.members.dns.servers',
      ]),
    );
    expect(leaves.length).toBeGreaterThan(50);
  });

  it('every schema key has a row in docs/configuration.md', () => {
    const rows = documentedKeys();
    const missing = leaves.filter((k) => !coveredByRow(k, rows));
    expect(
      missing,
      `add a row "| \`key\` | default | meaning |" to docs/configuration.md for: ${missing.join(', ')}`,
    ).toEqual([]);
  });

  it('docs/configuration.md lists no key the schema lacks', () => {
    const unknown = [...documentedKeys().keys()].filter((k) => !keys.has(k));
    expect(
      unknown,
      `docs/configuration.md documents keys that src/config/schema.ts does not have: ${unknown.join(', ')}`,
    ).toEqual([]);
  });

  it('every schema key appears in config/example.yaml', () => {
    const shown = exampleKeys();
    const missing = leaves.filter((k) => !shown.has(k));
    expect(
      missing,
      `add these keys to config/example.yaml (set, or in a commented-out block for a block that is off): ${missing.join(', ')}`,
    ).toEqual([]);
  });

  it('config/example.yaml shows no key the schema lacks', () => {
    // Only keys under a schema block count: the header comment has prose like "Reference:".
    const tops = new Set([...keys.keys()].map((k) => k.split('.')[0]));
    const unknown = [...exampleKeys()].filter((k) => {
      const parts = k.split('.');
      if (!tops.has(parts[0]!) || keys.has(k)) return false;
      // Below a free-form map or an array (headers' names, a static member's fields) anything goes.
      return parts.slice(1).every((_, i) => keys.get(parts.slice(0, i + 1).join('.'))?.leaf !== true);
    });
    expect(
      unknown,
      `config/example.yaml shows keys that src/config/schema.ts does not have: ${unknown.join(', ')}`,
    ).toEqual([]);
  });
});
