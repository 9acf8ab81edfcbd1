/**
 * A small but real safetensors checkpoint for the mount tests: config.json,
 * model.safetensors.index.json and shards whose tensors span several cache
 * chunks, written with the format's own layout (8-byte little-endian header
 * length, JSON header, then the tensors' bytes).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function safetensors(tensors: ReadonlyArray<{ name: string; shape: number[] }>): Buffer {
  const header: Record<string, unknown> = {};
  const datas: Buffer[] = [];
  let at = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + n] };
    const data = randomBytes(n);
    // Finite floats only (random bits can be NaN, which never compare equal): clear each exponent's top bit.
    for (let i = 3; i < n; i += 4) data[i] = data[i]! & 0xbf;
    datas.push(data);
    at += n;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...datas]);
}

/** Writes a model directory under `dir`; returns the relative paths written. */
export function writeCheckpoint(dir: string, shards = 2): string[] {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Buffer> = {};
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const name = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const tensors = [
      { name: `layers.${s}.attn.weight`, shape: [512, 1024] }, // 2 MiB: crosses 1 MiB chunks
      { name: `layers.${s}.mlp.weight`, shape: [300, 1000] },
      { name: `layers.${s}.norm.weight`, shape: [1000] },
    ];
    for (const t of tensors) weightMap[t.name] = name;
    files[name] = safetensors(tensors);
  }
  files['config.json'] = Buffer.from(JSON.stringify({ model_type: 'llama', hidden_size: 1024 }));
  files['model.safetensors.index.json'] = Buffer.from(
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  files['tokenizer/vocab.txt'] = Buffer.from('a\nb\nc\n');
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), data);
  }
  return Object.keys(files);
}
