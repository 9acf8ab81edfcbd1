/**
 * The transport logs through this small shape, which a pino logger satisfies,
 * so tests can capture the "connection closed because ..." lines they assert on.
 */
import { pino } from 'pino';

export interface TransportLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export function defaultTransportLogger(): TransportLogger {
  return pino({ name: 'weightcache-transport', level: process.env.WEIGHTCACHE_LOG_LEVEL ?? 'warn' });
}
