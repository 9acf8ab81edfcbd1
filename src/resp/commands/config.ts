/**
 * CONFIG GET: redis-benchmark asks `save` and `appendonly` before it starts;
 * a few more are answered so tools that probe a server see a consistent
 * read-only, persistence-less Redis. CONFIG SET/REWRITE/RESETSTAT are refused:
 * configuration belongs to the node's YAML, not to clients.
 */
import { globMatch } from '../glob.js';
import type { CommandSpec } from './types.js';
import { str } from './types.js';

export const config: CommandSpec = {
  name: 'config',
  arity: -2,
  flags: ['admin', 'loading', 'stale'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary: 'CONFIG GET of a few Redis parameters.',
  group: 'server',
  run({ args, reply, deps }) {
    const sub = str(args[1]).toLowerCase();
    if (sub !== 'get') {
      if (sub === 'set' || sub === 'rewrite' || sub === 'resetstat') {
        return reply.error(
          `ERR CONFIG ${sub.toUpperCase()} is not supported: configure the node in its YAML file`,
        );
      }
      return reply.error(`ERR unknown subcommand '${str(args[1]).slice(0, 128)}'. Try CONFIG GET.`);
    }
    if (args.length < 3) return reply.error("ERR wrong number of arguments for 'config|get' command");
    const values: Record<string, string> = {
      save: '',
      appendonly: 'no',
      databases: '1',
      maxclients: String(deps.limits.maxClients),
      'proto-max-bulk-len': String(deps.limits.maxBulkBytes),
      'client-query-buffer-limit': String(deps.limits.maxQueryBufferBytes),
      timeout: String(Math.floor(deps.limits.idleTimeoutMs / 1000)),
      'replica-read-only': 'yes',
    };
    const found = new Map<string, string>();
    for (const p of args.slice(2)) {
      const pattern = str(p).toLowerCase();
      for (const [k, v] of Object.entries(values)) if (globMatch(pattern, k)) found.set(k, v);
    }
    reply.map(found.size);
    for (const [k, v] of found) {
      reply.bulk(k);
      reply.bulk(v);
    }
  },
};
