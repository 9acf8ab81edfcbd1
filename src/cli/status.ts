/** `weightcache status`: a node's /v1/status, as JSON or a short summary. */
import { formatBytes } from '../config/units.js';
import { CacheError } from '../errors/cache-error.js';
import { answerError } from './node-client.js';

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
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError'
        ? `no answer within ${opts.timeoutMs} ms`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new CacheError('PEER_UNAVAILABLE', `cannot reach ${url}: ${why}`, { cause: err });
  }
  const text = await res.text();
  if (!res.ok) throw answerError(res.status, text, `GET ${url}`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CacheError(
      'INTERNAL',
      `${url} answered 200 with a body that is not JSON (is it a weightcache node?): ${text.slice(0, 200)}`,
    );
  }
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
