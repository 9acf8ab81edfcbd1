/**
 * The weightcache side of the RESP benchmark: a real node (startNode: origin,
 * DRAM tier, lease table, read path, HTTP and RESP doors) over an fs origin,
 * in its own process so it does not share an event loop with the bench
 * driver. argv[3]: resp.door (js, the default, or native); argv[4]: resp.threads
 * for the native door (default: one per core). Prints `resp <port>`
 * once listening; stops on SIGTERM.
 */
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { startNode } from '../../src/node/node.js';

const root = process.argv[2];
const door = process.argv[3] ?? 'js';
const threads = process.argv[4] === undefined ? null : Number(process.argv[4]);
if (!root || (door !== 'js' && door !== 'native') || (threads !== null && !(threads >= 1)))
  throw new Error('usage: serve.ts <origin root> [js|native] [threads ≥ 1]');
const config = configSchema.parse({
  http: { listen: '127.0.0.1:0' },
  resp: { listen: '127.0.0.1:0', door, ...(threads !== null ? { threads } : {}) },
  origin: { type: 'fs', fs: { root } },
  cache: { dram: { maxBytes: '512MiB' }, nvme: null },
  log: { level: 'warn' },
});
const node = await startNode(config, createLogger('warn'));
process.stdout.write(`resp ${node.resp!.address.port}\n`);
process.once('SIGTERM', () => {
  void node.close().then(() => process.exit(0));
});
