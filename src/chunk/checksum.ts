/**
 * CRC32C, computed once when a chunk is filled and carried with it to every
 * tier and over the wire. Same implementation (the addon's) everywhere.
 */
import { binding } from '../transport/binding.js';

export function crc32c(data: Uint8Array, seed = 0): number {
  return binding().crc32c(data, seed);
}
