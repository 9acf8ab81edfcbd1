/**
 * Human units in config: sizes ("4MiB", "1GiB", "512KiB", "10GB", or a plain
 * byte count) and durations ("30s", "250ms", "5m", "1h", or plain ms). Units
 * are explicit in the text so "maxBytes: 50" is never mistaken for 50 GiB.
 */
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const QUANTITY_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

/** Bytes from a number or a string like "4MiB". Throws with the reason. */
export function parseSize(value: unknown): number {
  return parseQuantity(value, SIZE_UNITS, 'size', 'B', 'e.g. 4MiB, 512KiB, 50GiB');
}

/** Milliseconds from a number or a string like "30s". Throws with the reason. */
export function parseDuration(value: unknown): number {
  return parseQuantity(value, DURATION_UNITS, 'duration', 'ms', 'e.g. 250ms, 30s, 5m');
}

function parseQuantity(
  value: unknown,
  units: Record<string, number>,
  what: string,
  bare: string,
  example: string,
): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${what} must be a non-negative number`);
    return Math.round(value);
  }
  if (typeof value !== 'string') throw new Error(`${what} must be a number or a string (${example})`);
  const m = QUANTITY_RE.exec(value);
  if (!m) throw new Error(`${JSON.stringify(value)} is not a ${what} (${example})`);
  const unit = (m[2] ?? '').toLowerCase() || bare.toLowerCase();
  const scale = units[unit];
  if (scale === undefined) {
    throw new Error(`unknown unit ${JSON.stringify(m[2])} in ${JSON.stringify(value)} (${example})`);
  }
  const n = Math.round(Number(m[1]) * scale);
  if (!Number.isSafeInteger(n)) throw new Error(`${JSON.stringify(value)} is too large`);
  return n;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)}${units[i]}`;
}
