/** Connection-level commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO (Redis 7 wording throughout). */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CommandSpec, type Ctx, NOT_INTEGER, parseInteger, str } from './types.js';

const base = { firstKey: 0, lastKey: 0, step: 0, group: 'connection' } as const;

const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';

/**
 * AUTH [username] password: the username is 'default' (the only user) or
 * absent. Tokens are checked in constant time (src/auth/tokens.ts). Guessing
 * is slowed twice: per client address, checks are spaced once the address
 * has failed (auth-throttle.ts: at worst ~0.3 checks/s per address, however
 * many connections it opens), and per connection each failure is answered
 * after a delay that doubles (50 ms up to 3.2 s).
 */
async function authenticate(ctx: Ctx, user: Buffer | null, pass: Buffer): Promise<string | null> {
  const tokens = ctx.deps.tokens;
  if (tokens === null) return null;
  const throttle = ctx.deps.authThrottle;
  const from = ctx.session.clientKey;
  // No await when the address is free: the check below then runs in this tick, so a failure is
  // recorded before the next AUTH of the same batch asks for its turn.
  const free = throttle.tryTurn(from);
  if (!(free ?? (await throttle.turn(from, ctx.signal)))) {
    const s = Math.max(1, Math.ceil(throttle.nextCheckIn(from) / 1000));
    return `ERR too many failed AUTH attempts from ${from}: try again in ${s} s`;
  }
  const grant = user === null || str(user) === 'default' ? tokens.check(str(pass)) : undefined;
  if (grant) {
    ctx.session.authenticated = true;
    ctx.session.grant = grant;
    ctx.session.authFailures = 0;
    return null;
  }
  throttle.failed(from);
  const n = ++ctx.session.authFailures;
  await sleep(Math.min(50 * 2 ** (n - 1), 3200), undefined, { signal: ctx.signal });
  return WRONGPASS;
}

export const ping: CommandSpec = {
  ...base,
  name: 'ping',
  arity: -1,
  flags: ['fast'],
  summary: 'Returns PONG, or the argument.',
  run({ args, reply }) {
    if (args.length > 2) return reply.error("ERR wrong number of arguments for 'ping' command");
    if (args.length === 2) reply.bulk(args[1]!);
    else reply.simple('PONG');
  },
};

export const echo: CommandSpec = {
  ...base,
  name: 'echo',
  arity: 2,
  flags: ['fast'],
  summary: 'Returns the given string.',
  run({ args, reply }) {
    reply.bulk(args[1]!);
  },
};

export const quit: CommandSpec = {
  ...base,
  name: 'quit',
  arity: -1,
  flags: ['fast', 'no_auth'],
  noAuth: true,
  summary: 'Closes the connection.',
  run({ reply, session }) {
    session.closeAfterReply = true;
    reply.simple('OK');
  },
};

export const select: CommandSpec = {
  ...base,
  name: 'select',
  arity: 2,
  flags: ['fast'],
  summary: 'Selects the database: only 0 exists.',
  run({ args, reply }) {
    const db = parseInteger(args[1]);
    if (db === null) return reply.error(NOT_INTEGER);
    if (db !== 0) return reply.error('ERR DB index is out of range');
    reply.simple('OK');
  },
};

export const auth: CommandSpec = {
  ...base,
  name: 'auth',
  arity: -2,
  flags: ['fast', 'no_auth'],
  noAuth: true,
  summary: 'Authenticates the connection.',
  async run(ctx) {
    const { args, reply } = ctx;
    if (args.length > 3) return reply.error('ERR syntax error');
    if (ctx.deps.tokens === null) {
      // Redis with a passwordless default user: `AUTH default <anything>` is OK, `AUTH <password>` an error.
      if (args.length === 3 && str(args[1]) === 'default') return reply.simple('OK');
      return reply.error(
        'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
      );
    }
    const refused =
      args.length === 3
        ? await authenticate(ctx, args[1]!, args[2]!)
        : await authenticate(ctx, null, args[1]!);
    if (refused) reply.error(refused);
    else reply.simple('OK');
  },
};

export const hello: CommandSpec = {
  ...base,
  name: 'hello',
  arity: -1,
  flags: ['fast', 'no_auth'],
  noAuth: true,
  summary: 'Handshake: protocol version (2 or 3), optional AUTH and SETNAME.',
  async run(ctx) {
    const { args, reply, session, deps } = ctx;
    let proto = reply.protocol;
    if (args.length >= 2) {
      const v = parseInteger(args[1]);
      if (v === null) return reply.error('ERR Protocol version is not an integer or out of range');
      if (v !== 2 && !(v === 3 && deps.resp3)) return reply.error('NOPROTO unsupported protocol version');
      proto = v;
    }
    let setName: string | null = null;
    for (let i = 2; i < args.length; i++) {
      const opt = str(args[i]).toLowerCase();
      const left = args.length - i - 1;
      if (opt === 'auth' && left >= 2) {
        const refused = await authenticate(ctx, args[i + 1]!, args[i + 2]!);
        if (refused) return reply.error(refused);
        i += 2;
      } else if (opt === 'setname' && left >= 1) {
        setName = str(args[i + 1]);
        if (/[\s]/.test(setName))
          return reply.error('ERR Client names cannot contain spaces, newlines or special characters.');
        i += 1;
      } else {
        return reply.error(`ERR Syntax error in HELLO option '${str(args[i]).slice(0, 128)}'`);
      }
    }
    if (!session.authenticated) {
      return reply.error(
        'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
      );
    }
    if (setName !== null) session.name = setName === '' ? null : setName;
    reply.protocol = proto;
    reply.fields([
      ['server', 'redis'],
      ['version', '7.2.0'],
      ['proto', proto],
      ['id', session.id],
      ['mode', 'standalone'],
      ['role', 'master'],
      ['modules', []],
    ]);
  },
};
