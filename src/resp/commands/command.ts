/**
 * COMMAND, COMMAND COUNT / INFO / DOCS / LIST, from the command table itself
 * so they never disagree with what the server does. Minimal: no key specs,
 * no argument docs. redis-cli reads COMMAND DOCS for its hints at start.
 */
import type { ReplyWriter } from '../reply.js';
import type { CommandSpec } from './types.js';
import { str } from './types.js';

function info(reply: ReplyWriter, c: CommandSpec): void {
  reply.array(10);
  reply.bulk(c.name);
  reply.int(c.arity);
  reply.set(c.flags.length);
  for (const f of c.flags) reply.simple(f);
  reply.int(c.firstKey);
  reply.int(c.lastKey);
  reply.int(c.step);
  reply.set(0); // ACL categories
  reply.array(0); // tips
  reply.array(0); // key specs
  reply.array(0); // subcommands
}

function docs(reply: ReplyWriter, c: CommandSpec): void {
  reply.bulk(c.name);
  reply.fields([
    ['summary', c.summary],
    ['since', '1.0.0'],
    ['group', c.group],
  ]);
}

export function commandCommand(table: () => ReadonlyMap<string, CommandSpec>): CommandSpec {
  return {
    name: 'command',
    arity: -1,
    flags: ['loading', 'stale'],
    firstKey: 0,
    lastKey: 0,
    step: 0,
    summary: 'Describes the commands this server knows.',
    group: 'server',
    run({ args, reply }) {
      const all = table();
      const sub = str(args[1]).toLowerCase();
      const named = args.slice(2).map((a) => all.get(str(a).toLowerCase()));
      switch (args.length === 1 ? '' : sub) {
        case '':
          reply.array(all.size);
          for (const c of all.values()) info(reply, c);
          return;
        case 'count':
          return reply.int(all.size);
        case 'list':
          reply.array(all.size);
          for (const name of all.keys()) reply.bulk(name);
          return;
        case 'info':
          reply.array(named.length);
          for (const c of named)
            if (c) info(reply, c);
            else reply.nil();
          return;
        case 'docs': {
          const chosen = args.length > 2 ? named.filter((c) => c !== undefined) : [...all.values()];
          reply.map(chosen.length);
          for (const c of chosen) docs(reply, c);
          return;
        }
        default:
          return reply.error(
            `ERR unknown subcommand '${str(args[1]).slice(0, 128)}'. Try COMMAND COUNT, INFO, DOCS or LIST.`,
          );
      }
    },
  };
}
