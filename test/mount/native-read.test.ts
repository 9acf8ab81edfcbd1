/**
 * The mount's native READ path (addon/src/fuse/session.cc, FastRead) in this
 * process, so that the ASan+UBSan run of the addon's tests
 * (scripts/native-checks.mjs asan) covers it: a real node (startNode) with
 * the mount on; reads at odd offsets and lengths across chunk boundaries,
 * with the page cache dropped before each, answered by the FUSE workers from
 * DRAM, byte-equal to the origin; a chunk evicted meanwhile goes to the read
 * path instead. Only asynchronous fs calls and child processes here: this
 * process's JavaScript thread answers the mount's other requests.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningNode, startNode } from '../../src/node/node.js';
import { until } from '../harness/until.js';

const canMount = existsSync('/dev/fuse') && process.getuid?.() === 0;
if (!canMount)
  console.warn('test/mount: skipped: mounting FUSE needs /dev/fuse and root (CAP_SYS_ADMIN) here');
const run = promisify(execFile);
const MiB = 2 ** 20;

describe.skipIf(!canMount)('FUSE mount: READs answered by the workers from DRAM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wc-mount-native-'));
  const mnt = join(dir, 'mnt');
  const data = randomBytes(5 * MiB + 123_457); // 6 chunks of 1 MiB, the last one short
  let node: RunningNode;
  const mounted = join(mnt, 'models', 'm', 'weights.bin');
  const drop = () => run('dd', [`if=${mounted}`, 'iflag=nocache', 'count=0']);

  beforeAll(async () => {
    mkdirSync(join(dir, 'origin', 'models', 'm'), { recursive: true });
    writeFileSync(join(dir, 'origin', 'models', 'm', 'weights.bin'), data);
    // More than the DRAM budget: reading it evicts weights.bin's chunks.
    mkdirSync(join(dir, 'origin', 'models', 'f'), { recursive: true });
    writeFileSync(join(dir, 'origin', 'models', 'f', 'filler.bin'), randomBytes(80 * MiB));
    const config = configSchema.parse({
      http: { listen: '127.0.0.1:0' },
      origin: { type: 'fs', fs: { root: join(dir, 'origin') } },
      cache: { chunkSize: '1MiB', dram: { maxBytes: '64MiB' }, nvme: null },
      log: { level: 'warn' },
      mount: { path: mnt, containers: ['models'], listInterval: '1h' },
    });
    node = await startNode(config, createLogger('warn'));
  });

  afterAll(async () => {
    await node?.close();
  });

  it('reads at odd offsets across chunk boundaries are byte-equal, from the workers', async () => {
    expect((await readFile(mounted)).equals(data)).toBe(true); // the read path fills DRAM
    const before = node.mount!.stats().fastReads;
    const fh = await open(mounted);
    try {
      for (const [offset, length] of [
        [0, data.length],
        [1, 10],
        [MiB - 5, 10], // across the first chunk boundary
        [777_777, 2 * MiB + 3], // three chunks
        [5 * MiB + 100_000, data.length - 5 * MiB - 100_000], // the short last chunk, to the end
        [data.length - 1, 1],
      ] as const) {
        await drop();
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        expect(bytesRead, `${offset}+${length}`).toBe(length);
        expect(buf.equals(data.subarray(offset, offset + length)), `${offset}+${length}`).toBe(true);
      }
      // Past the end: nothing, and no error.
      await drop();
      expect((await fh.read(Buffer.alloc(10), 0, 10, data.length + 5)).bytesRead).toBe(0);
    } finally {
      await fh.close();
    }
    // A worker counts a fast read after writing its reply, which the reader may see first.
    await until(() => node.mount!.stats().fastReads > before, { what: 'fast reads counted' });
  });

  it('a chunk no longer in DRAM is read through the read path instead, bytes still equal', async () => {
    // Fill DRAM with another file's chunks until this one's are evicted (64 MiB budget).
    const fill = join(mnt, 'models', 'f', 'filler.bin');
    expect((await readFile(fill)).length).toBe(80 * MiB);
    const posted = node.mount!.stats().posted;
    await drop();
    expect((await readFile(mounted)).equals(data)).toBe(true);
    expect(node.mount!.stats().posted).toBeGreaterThan(posted); // misses went to JavaScript
  });
});
