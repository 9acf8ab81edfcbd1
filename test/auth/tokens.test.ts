/**
 * Token files (src/auth/tokens.ts): the bounds a file is held to at start,
 * each refused with the file and line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_CONTAINERS, TokenSet } from '../../src/auth/tokens.js';

function tokensFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'wc-tokens-')), 'tokens');
  writeFileSync(file, text);
  return file;
}

describe('token files', () => {
  it('refuses a token listing more containers than the native doors take, naming the line', () => {
    const many = Array.from({ length: MAX_TOKEN_CONTAINERS + 1 }, (_, i) => `c${i}`).join(',');
    const file = tokensFile(`# readers\nreader-token-0123456789 models\nbig-token-0123456789abc ${many}\n`);
    expect(() => TokenSet.load({ tokensFile: file, adminTokensFile: null })).toThrow(
      new RegExp(
        `tokens:3: a token lists ${MAX_TOKEN_CONTAINERS + 1} containers, more than ${MAX_TOKEN_CONTAINERS}`,
      ),
    );
  });

  it('takes a token with exactly the most containers', () => {
    const most = Array.from({ length: MAX_TOKEN_CONTAINERS }, (_, i) => `c${i}`).join(',');
    const tokens = TokenSet.load({
      tokensFile: tokensFile(`big-token-0123456789abc ${most}\n`),
      adminTokensFile: null,
    });
    expect(tokens?.check('big-token-0123456789abc')?.containers?.size).toBe(MAX_TOKEN_CONTAINERS);
  });
});
