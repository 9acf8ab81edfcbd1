import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * Reads a whole HTTP response and throws the bytes away (warming a cache in
 * front of it). `ca`: an https URL whose self-signed certificate is this PEM file.
 */
export async function drainUrl(url: string, ca?: string): Promise<number> {
  const agent = ca ? new Agent({ connect: { ca: readFileSync(ca) } }) : undefined;
  try {
    const res = await undiciFetch(url, agent ? { dispatcher: agent } : {});
    if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
    let n = 0;
    for await (const chunk of res.body) n += (chunk as Uint8Array).byteLength;
    return n;
  } finally {
    await agent?.close();
  }
}
