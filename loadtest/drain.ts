/** Reads a whole HTTP response and throws the bytes away (warming a cache in front of it). */
export async function drainUrl(url: string): Promise<number> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  let n = 0;
  for await (const chunk of res.body) n += (chunk as Uint8Array).byteLength;
  return n;
}
