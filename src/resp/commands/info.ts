/**
 * INFO: the Redis sections clients look at. ioredis' ready check waits for
 * `loading:0`; redis-cli and dashboards read redis_version and the client count.
 */
import type { CommandSpec, Ctx } from './types.js';
import { str } from './types.js';

function sections(ctx: Ctx): Record<string, string[]> {
  const d = ctx.deps;
  const uptime = Math.floor((Date.now() - d.startedAt) / 1000);
  return {
    server: [
      'redis_version:7.2.0',
      `weightcache_version:${d.version}`,
      'redis_mode:standalone',
      `process_id:${process.pid}`,
      `tcp_port:${d.port()}`,
      `uptime_in_seconds:${uptime}`,
    ],
    clients: [`connected_clients:${d.connectedClients()}`, `maxclients:${d.limits.maxClients}`],
    persistence: ['loading:0', 'rdb_bgsave_in_progress:0', 'aof_enabled:0'],
    replication: ['role:master', 'connected_slaves:0'],
    keyspace: [],
  };
}

export const info: CommandSpec = {
  name: 'info',
  arity: -1,
  flags: ['loading', 'stale'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary: 'Server information (Redis INFO sections).',
  group: 'server',
  run(ctx) {
    const all = sections(ctx);
    const wanted = ctx.args.slice(1).map((a) => str(a).toLowerCase());
    const everything =
      wanted.length === 0 || wanted.some((w) => w === 'all' || w === 'everything' || w === 'default');
    let out = '';
    for (const [name, lines] of Object.entries(all)) {
      if (!everything && !wanted.includes(name)) continue;
      if (out) out += '\r\n';
      out += `# ${name[0]!.toUpperCase()}${name.slice(1)}\r\n`;
      for (const l of lines) out += `${l}\r\n`;
    }
    ctx.reply.bulk(out);
  },
};
