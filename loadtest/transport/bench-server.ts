/**
 * The serving process of the transport benchmark. Serves every chunk from
 * one 4 MiB and one 64 KiB Buffer (as a DRAM tier would) or from chunk files
 * of the same bytes (as the NVMe tier would, warm in the page cache), with
 * their stored CRC32C, so the figures measure the transport, not the tiers.
 * Key `native-<size>` is the same bytes in a native DRAM store with a version
 * binding, answered on the addon's I/O thread without JavaScript
 * (transport.nativeReads); JavaScript answers it only when that passes.
 * Key `nvme-<size>`, on a second listener (port `nvme`), is the same bytes as
 * a v2 chunk file the native store's NVMe index lists, with a DRAM store too
 * small to hold a chunk: every READ_CHUNK is read from the file and verified
 * block by block on the I/O thread, never promoted (compare with `file`,
 * JavaScript's sendfile of an unverified file).
 * Prints {"listening":port,"nvme":port}; on SIGUSR2 prints {"stats":{...}}
 * (the addon's transport counters, one I/O thread for both listeners).
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../src/chunk/checksum.js';
import type { ChunkName } from '../../src/chunk/name.js';
import { addressOfName, objectIdOf } from '../../src/store/address.js';
import { createNativeStore } from '../../src/store/native.js';
import { encodeChunkHeader } from '../../src/tier/chunk-file.js';
import { binding } from '../../src/transport/binding.js';
import { type TransportHandler, TransportServer } from '../../src/transport/index.js';

const dir = mkdtempSync(join(tmpdir(), 'wc-bench-'));
const chunks = new Map<number, { data: Buffer; crc: number; path: string }>();
for (const size of [4 << 20, 64 << 10]) {
  const data = randomFillSync(Buffer.alloc(size));
  const path = join(dir, `chunk-${size}`);
  writeFileSync(path, data);
  chunks.set(size, { data, crc: crc32c(data), path });
}

const handler: TransportHandler = {
  async readChunk(name, offset, length) {
    const c = chunks.get(name.chunkSize);
    if (!c || offset !== 0 || length !== c.data.length) throw new Error('bench reads whole chunks only');
    return name.key === 'file'
      ? { kind: 'file', path: c.path, offset: 0, length, crc32c: c.crc }
      : { kind: 'buffer', data: c.data, crc32c: c.crc };
  },
  async stat(n) {
    return { ...n, etag: 'v1', size: 0, lastModified: new Date(0) };
  },
};
const listen = () =>
  TransportServer.listen({ host: '127.0.0.1', port: 0, maxInFlightPerConnection: 256, handler });
const [server, nvmeServer] = await Promise.all([listen(), listen()]);
const store = createNativeStore({ maxBytes: 64 << 20 });
const bindings = new (binding().NativeBindings)();
for (const [size, c] of chunks) {
  const v = { container: 'c', key: `native-${size}`, etag: 'v1', size, lastModified: new Date(0) };
  const objectId = objectIdOf('bench', v, size);
  store.commit(objectId, 0, c.data, c.crc >>> 0, '');
  bindings.set({
    name: `c/${v.key}`,
    objectId,
    etag: 'v1',
    size,
    chunkSize: size,
    lastModified: v.lastModified.toUTCString(),
    contentType: 'application/octet-stream',
    validForMs: 24 * 3600_000,
  });
}
server.serveNative({ store, bindings, originId: 'bench' });
// One page of DRAM: a whole chunk read from NVMe finds no room to be promoted, so it stays an NVMe read.
const nvmeStore = createNativeStore({ maxBytes: 4096 });
const nvmeBindings = new (binding().NativeBindings)();
for (const [size, c] of chunks) {
  const name: ChunkName = {
    originId: 'bench',
    container: 'c',
    key: `nvme-${size}`,
    etag: 'v1',
    size,
    chunkSize: size,
    index: 0,
  };
  const a = addressOfName(name);
  const { header, dataCrc } = encodeChunkHeader(a.key, c.data);
  const path = join(dir, `nvme-${size}`);
  writeFileSync(path, Buffer.concat([header, c.data]));
  nvmeStore.nvmePut(a.objectId, 0, path, header.length, size, dataCrc, a.key);
  nvmeBindings.set({
    name: `c/${name.key}`,
    objectId: a.objectId,
    etag: 'v1',
    size,
    chunkSize: size,
    lastModified: new Date(0).toUTCString(),
    contentType: 'application/octet-stream',
    validForMs: 24 * 3600_000,
  });
}
nvmeServer.serveNative({ store: nvmeStore, bindings: nvmeBindings, originId: 'bench' });
console.log(JSON.stringify({ listening: server.address.port, nvme: nvmeServer.address.port }));
process.on('SIGUSR2', () => console.log(JSON.stringify({ stats: server.stats() })));
process.on('SIGTERM', async () => {
  await Promise.all([server.close(), nvmeServer.close()]);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
