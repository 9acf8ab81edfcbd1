/** The command table: every command this door knows, by lower-case name. */
import { client } from './client.js';
import { commandCommand } from './command.js';
import { config } from './config.js';
import { auth, echo, hello, ping, quit, select } from './connection.js';
import { get, mget } from './get.js';
import { getrange } from './getrange.js';
import { info } from './info.js';
import { wcInvalidate } from './invalidate.js';
import { exists, strlen, type } from './meta.js';
import { readonlyCommands } from './readonly.js';
import { scan } from './scan.js';
import type { CommandSpec } from './types.js';
import { wcPrefetch, wcStat } from './wc.js';

const table = new Map<string, CommandSpec>();
const all: CommandSpec[] = [
  ping,
  echo,
  quit,
  select,
  auth,
  hello,
  client,
  info,
  config,
  commandCommand(() => table),
  get,
  mget,
  getrange,
  strlen,
  exists,
  type,
  scan,
  wcStat,
  wcPrefetch,
  wcInvalidate,
  ...readonlyCommands,
];
for (const c of all) table.set(c.name, c);

export const COMMANDS: ReadonlyMap<string, CommandSpec> = table;
