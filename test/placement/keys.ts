/** Chunk keys shaped like the read path's (src/chunk/name.ts chunkKey): a JSON tuple, ~100 bytes. */
export function chunkKeys(n: number, model = 'llama-3-70b'): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = `${model}/model-${String(i % 61).padStart(5, '0')}-of-00061.safetensors`;
    out.push(JSON.stringify(['azure', 'models', file, '"0x8DC5A1B2C3D4E5F"', 4_993_127_680, 4_194_304, i]));
  }
  return out;
}
