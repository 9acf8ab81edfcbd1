/**
 * The ownership rule, in one place: a chunk key is owned by the first member
 * in its rendezvous ranking, and an object name's home (the member that
 * grants its leases and answers its invalidations, docs/coherence.md) is the
 * owner of `container/key`. Both follow membership, not health: a member in
 * backoff still owns its keys, so every process computes the same answer from
 * the same member list.
 */
import { CacheError } from '../errors/cache-error.js';
import { formatName } from '../origin/names.js';
import type { ObjectName } from '../origin/origin.js';
import { type Member, rank } from './rendezvous.js';

/** The address owning `key` over `members`; undefined when the list is empty. */
export function ownerOf(key: string, members: readonly Member[]): string | undefined {
  return rank(key, members)[0]?.address;
}

/** The address of a name's home over `members`. */
export function homeOf(name: ObjectName, members: readonly Member[]): string {
  const home = ownerOf(formatName(name), members);
  if (home === undefined) throw new CacheError('PEER_UNAVAILABLE', 'the member list is empty');
  return home;
}
