/**
 * Generates the demo checkpoint `npm start` serves: a small but real
 * Hugging Face-style model directory (config.json, tokenizer_config.json,
 * model.safetensors.index.json and two safetensors shards) under
 * {root}/demo/tiny-llama/. Deterministic bytes (seeded PRNG), written to temp
 * names and renamed, and skipped when a previous run already finished it.
 */
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DEMO_CONTAINER = 'demo';
export const DEMO_PREFIX = 'tiny-llama';
// Outside every container, so it never shows up in a listing or manifest.
const DONE_MARKER = '.weightcache-demo-seeded-v1';

interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/** A llama-like layout: 2 shards of ~96 MiB each in bf16. */
function layout(): Tensor[][] {
  const hidden = 2048;
  const inter = 5632;
  const vocab = 8192;
  const layer = (i: number): Tensor[] => [
    { name: `model.layers.${i}.self_attn.q_proj.weight`, shape: [hidden, hidden] },
    { name: `model.layers.${i}.self_attn.k_proj.weight`, shape: [256, hidden] },
    { name: `model.layers.${i}.self_attn.v_proj.weight`, shape: [256, hidden] },
    { name: `model.layers.${i}.self_attn.o_proj.weight`, shape: [hidden, hidden] },
    { name: `model.layers.${i}.mlp.gate_proj.weight`, shape: [inter, hidden] },
    { name: `model.layers.${i}.input_layernorm.weight`, shape: [hidden] },
  ];
  return [
    [{ name: 'model.embed_tokens.weight', shape: [vocab, hidden] }, ...layer(0), ...layer(1)],
    [
      ...layer(2),
      ...layer(3),
      { name: 'model.norm.weight', shape: [hidden] },
      { name: 'lm_head.weight', shape: [vocab, hidden] },
    ],
  ];
}

export interface SeedResult {
  readonly dir: string;
  readonly files: string[];
  readonly bytes: number;
  readonly created: boolean;
}

export async function seedDemo(originRoot: string): Promise<SeedResult> {
  const dir = join(originRoot, DEMO_CONTAINER, DEMO_PREFIX);
  const shards = layout();
  const shardNames = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
  const files = ['config.json', 'tokenizer_config.json', 'model.safetensors.index.json', ...shardNames];
  if (await exists(join(originRoot, DONE_MARKER))) {
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(dir, f))).size;
    return { dir, files, bytes, created: false };
  }
  await mkdir(dir, { recursive: true });
  let bytes = 0;
  const weightMap: Record<string, string> = {};
  for (const [i, tensors] of shards.entries()) {
    bytes += await writeShard(join(dir, shardNames[i]!), tensors, i + 1);
    for (const t of tensors) weightMap[t.name] = shardNames[i]!;
  }
  const small: Record<string, unknown> = {
    'config.json': {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 4,
      num_attention_heads: 16,
      num_key_value_heads: 2,
      vocab_size: 8192,
      torch_dtype: 'bfloat16',
      _note: 'weightcache demo checkpoint: random weights, for exercising the cache only',
    },
    'tokenizer_config.json': { model_max_length: 2048, tokenizer_class: 'LlamaTokenizer' },
    'model.safetensors.index.json': { metadata: { total_size: bytes }, weight_map: weightMap },
  };
  for (const [f, json] of Object.entries(small)) {
    const text = `${JSON.stringify(json, null, 2)}\n`;
    await atomicWrite(join(dir, f), Buffer.from(text));
    bytes += Buffer.byteLength(text);
  }
  await writeFile(join(originRoot, DONE_MARKER), '');
  return { dir, files, bytes, created: true };
}

/** safetensors: u64 LE header length, JSON header, then the tensors' bytes. */
async function writeShard(path: string, tensors: Tensor[], seed: number): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // data starts 8-byte aligned, as the format recommends
  const prefix = Buffer.alloc(8 + json.length);
  prefix.writeBigUInt64LE(BigInt(json.length), 0);
  prefix.write(json, 8, 'utf8');
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(prefix);
    const rng = xorshift(seed);
    const block = Buffer.allocUnsafe(4 * 2 ** 20);
    for (let left = offset; left > 0; left -= block.length) {
      const n = Math.min(block.length, left);
      fillBf16(block, n, rng);
      await fh.write(block, 0, n);
    }
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  return prefix.length + offset;
}

/** Small random bf16 values (|x| < 2^-6), two per 32-bit draw. */
function fillBf16(buf: Buffer, n: number, next: () => number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = (next() & 0x807f807f) | 0x3c003c00;
  for (let i = words.length * 4; i < n; i++) buf[i] = next() & 0xff;
}

function xorshift(seed: number): () => number {
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

async function atomicWrite(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
