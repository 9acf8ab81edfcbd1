/** `weightcache status`: a node's /v1/status, as JSON or a short summary. */
import { formatBytes } from '../config/units.js';

interface TierStats {
  usedBytes: number;
  capacityBytes: number;
  entries: number;
}

export async function runStatus(opts: {
  url: string;
  json: boolean;
  timeoutMs: number;
  token?: string;
}): Promise<void> {
  const url = `${opts.url.replace(/\/$/, '')}/v1/status`;
  let res: Response;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(opts.timeoutMs),
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    });
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(body)}`);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return;
  }
  const tiers = body.tiers as Record<string, TierStats>;
  const origin = body.origin as { type: string; id: string };
  const lines = [
    `weightcache ${body.version} — ${body.ready ? 'ready' : 'NOT ready'}, up ${body.uptimeSeconds}s`,
    `origin: ${origin.type} (${origin.id})`,
    ...Object.entries(tiers).map(
      ([name, t]) =>
        `${name.padEnd(5)} ${formatBytes(t.usedBytes)} of ${formatBytes(t.capacityBytes)} in ${t.entries} chunks`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
