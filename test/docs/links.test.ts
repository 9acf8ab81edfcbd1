/**
 * Every relative link in README.md and docs/*.md resolves: the file (or
 * directory) exists in the repository, and a `#fragment` names a heading of the
 * target page, slugged as GitHub renders it. Links to other sites are not
 * fetched (no network in tests); links inside code are not links.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const pages = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown without fenced code blocks and inline code spans. */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading keeps its text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of md.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

interface Link {
  page: string;
  target: string;
}

function links(page: string): Link[] {
  const md = prose(readFileSync(join(root, page), 'utf8'));
  const found: Link[] = [];
  // [text](target) and ![alt](target), optionally with a "title"; <…> targets too.
  for (const m of md.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    found.push({ page, target: m[1]! });
  }
  // Reference definitions: [label]: target
  for (const m of md.matchAll(/^\s*\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) {
    found.push({ page, target: m[1]! });
  }
  return found;
}

/** Why `link` does not resolve, or null when it does. */
function broken({ page, target }: Link): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // http:, https:, mailto: …
  const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
  const file = pathPart === '' ? join(root, page) : resolve(dirname(join(root, page)), decodeURI(pathPart));
  if (!file.startsWith(`${root}/`) && file !== root) return `${target}: points outside the repository`;
  if (!existsSync(file)) return `${target}: ${relative(root, file)} does not exist`;
  if (fragment === undefined || fragment === '') return null;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return null; // line anchors of code files etc.
  return anchors(readFileSync(file, 'utf8')).has(decodeURIComponent(fragment).toLowerCase())
    ? null
    : `${target}: ${relative(root, file)} has no heading #${fragment}`;
}

describe('documentation links', () => {
  it('finds the pages and their links (sanity)', () => {
    expect(pages).toContain('docs/configuration.md');
    expect(links('README.md').length).toBeGreaterThan(10);
    expect(anchors('## WC.INVALIDATE\n### Configuration (`resp` block)\n## A\n## A\n')).toEqual(
      new Set(['wcinvalidate', 'configuration-resp-block', 'a', 'a-1']),
    );
  });

  it('every relative link in README.md and docs/ resolves, #anchors included', () => {
    const bad = pages.flatMap(links).flatMap((l) => {
      const why = broken(l);
      return why ? [`${l.page}: ${why}`] : [];
    });
    expect(bad, `broken links:\n${bad.join('\n')}`).toEqual([]);
  });
});
