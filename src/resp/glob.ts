/**
 * Redis's glob (stringmatchlen) for SCAN MATCH: `*`, `?`, `[abc]`, `[^a]`,
 * `[a-z]`, `\x` escapes. Iterative with backtracking to the last `*`, so a
 * hostile pattern like `a*a*a*a*…b` costs O(pattern × key), not exponential.
 * Patterns and keys are compared as strings (keys are UTF-8 names).
 */

/** The literal text before the first glob metacharacter (escapes resolved). */
export function literalPrefix(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' || c === '?' || c === '[') return out;
    if (c === '\\' && i + 1 < pattern.length) {
      out += pattern[++i];
      continue;
    }
    out += c;
  }
  return out;
}

function classMatch(p: string, pi: number, c: string): { matched: boolean; end: number } {
  let i = pi + 1;
  const not = p[i] === '^';
  if (not) i++;
  let matched = false;
  for (;;) {
    if (i >= p.length) {
      i = p.length - 1; // unterminated class: Redis treats the end as closing it
      break;
    }
    if (p[i] === '\\' && i + 1 < p.length) {
      i++;
      if (p[i] === c) matched = true;
    } else if (p[i] === ']') {
      break;
    } else if (p[i + 1] === '-' && i + 2 < p.length && p[i + 2] !== ']') {
      let lo = p[i]!;
      let hi = p[i + 2]!;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (c >= lo && c <= hi) matched = true;
      i += 2;
    } else if (p[i] === c) {
      matched = true;
    }
    i++;
  }
  return { matched: not ? !matched : matched, end: i + 1 };
}

export function globMatch(pattern: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = pattern[pi];
    if (pc === '*') {
      while (pattern[pi] === '*') pi++;
      if (pi === pattern.length) return true;
      starP = pi;
      starS = si;
      continue;
    }
    let ok = false;
    let nextP = pi + 1;
    if (pc === '?') ok = true;
    else if (pc === '[') {
      const r = classMatch(pattern, pi, s[si]!);
      ok = r.matched;
      nextP = r.end;
    } else if (pc === '\\' && pi + 1 < pattern.length) {
      ok = pattern[pi + 1] === s[si];
      nextP = pi + 2;
    } else if (pc !== undefined) {
      ok = pc === s[si];
    }
    if (ok) {
      pi = nextP;
      si++;
    } else if (starP >= 0) {
      pi = starP;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}
