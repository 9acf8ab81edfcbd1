/** CLIENT SETNAME / GETNAME / SETINFO / ID / INFO: what client libraries send while connecting. */
import type { CommandSpec, Ctx, Session } from './types.js';
import { str } from './types.js';

/** Redis refuses names with spaces, newlines or other characters outside '!'..'~'. */
const NAME_RE = /^[!-~]*$/;

function clientLine(s: Session, resp: number, now: number): string {
  const age = Math.floor((now - s.createdAt) / 1000);
  return `id=${s.id} addr=${s.addr} name=${s.name ?? ''} age=${age} db=0 resp=${resp} lib-name=${s.libName ?? ''} lib-ver=${s.libVer ?? ''}`;
}

function run(ctx: Ctx) {
  const { args, reply, session } = ctx;
  const sub = str(args[1]).toLowerCase();
  const arityError = () => reply.error(`ERR wrong number of arguments for 'client|${sub}' command`);
  switch (sub) {
    case 'setname': {
      if (args.length !== 3) return arityError();
      const name = str(args[2]);
      if (!NAME_RE.test(name)) {
        return reply.error('ERR Client names cannot contain spaces, newlines or special characters.');
      }
      session.name = name === '' ? null : name;
      return reply.simple('OK');
    }
    case 'getname':
      if (args.length !== 2) return arityError();
      return session.name === null ? reply.nil() : reply.bulk(session.name);
    case 'setinfo': {
      if (args.length !== 4) return arityError();
      const attr = str(args[2]).toLowerCase();
      const value = str(args[3]);
      if (!NAME_RE.test(value)) {
        return reply.error(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
      }
      if (attr === 'lib-name') session.libName = value;
      else if (attr === 'lib-ver') session.libVer = value;
      else return reply.error(`ERR Unrecognized option '${str(args[2]).slice(0, 128)}'`);
      return reply.simple('OK');
    }
    case 'id':
      if (args.length !== 2) return arityError();
      return reply.int(session.id);
    case 'info':
      if (args.length !== 2) return arityError();
      return reply.bulk(`${clientLine(session, reply.protocol, Date.now())}\n`);
    default:
      return reply.error(
        `ERR unknown subcommand '${str(args[1]).slice(0, 128)}'. Try CLIENT SETNAME, GETNAME, SETINFO, ID or INFO.`,
      );
  }
}

export const client: CommandSpec = {
  name: 'client',
  arity: -2,
  flags: ['fast'],
  firstKey: 0,
  lastKey: 0,
  step: 0,
  summary: 'Connection name, library info and id.',
  group: 'connection',
  run,
};
