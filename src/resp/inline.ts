/**
 * Inline commands (`PING\r\n`, what telnet and redis-benchmark's PING_INLINE
 * send): one line split into arguments the way Redis's sdssplitargs() does —
 * spaces separate, "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes,
 * 'single quotes' take only \', and a closing quote must be followed by a
 * space or the end. Anything else is an unbalanced-quotes protocol error.
 */

const SPACE = new Set([0x20, 0x0a, 0x0d, 0x09, 0x0b, 0x0c, 0x00]);

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 0x0a, 114: 0x0d, 116: 0x09, 98: 0x08, 97: 0x07 };

/** Splits one inline line (without its newline). Returns null on unbalanced quotes. */
export function splitInline(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && SPACE.has(line[i]!)) i++;
    if (i >= n) return args;
    const cur: number[] = [];
    let inDq = false;
    let inSq = false;
    for (;;) {
      const c = line[i];
      if (inDq) {
        if (c === undefined) return null; // closing quote missing
        const n1 = line[i + 1];
        const n2 = line[i + 2];
        const n3 = line[i + 3];
        if (
          c === 0x5c &&
          n1 === 0x78 &&
          n2 !== undefined &&
          n3 !== undefined &&
          hexVal(n2) >= 0 &&
          hexVal(n3) >= 0
        ) {
          cur.push(hexVal(n2) * 16 + hexVal(n3));
          i += 3;
        } else if (c === 0x5c && n1 !== undefined) {
          cur.push(ESCAPES[n1] ?? n1);
          i += 1;
        } else if (c === 0x22) {
          // The closing quote must be followed by a space or nothing.
          if (n1 !== undefined && !SPACE.has(n1)) return null;
          i += 1;
          break;
        } else {
          cur.push(c);
        }
      } else if (inSq) {
        if (c === undefined) return null;
        const n1 = line[i + 1];
        if (c === 0x5c && n1 === 0x27) {
          cur.push(0x27);
          i += 1;
        } else if (c === 0x27) {
          if (n1 !== undefined && !SPACE.has(n1)) return null;
          i += 1;
          break;
        } else {
          cur.push(c);
        }
      } else {
        if (c === undefined || SPACE.has(c)) break;
        if (c === 0x22) inDq = true;
        else if (c === 0x27) inSq = true;
        else cur.push(c);
      }
      i++;
    }
    args.push(Buffer.from(cur));
  }
}
