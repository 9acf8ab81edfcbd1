/** JSON-lines logs (pino) to stderr; stdout stays free for a CLI's output. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string, name = 'weightcache'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
