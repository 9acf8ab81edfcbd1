import { describe, expect, it } from 'vitest';
import { homeOf, ownerOf } from '../../src/placement/ownership.js';
import { rank } from '../../src/placement/rendezvous.js';

const members = [
  { address: '10.0.0.1:7420', weight: 1 },
  { address: '10.0.0.2:7420', weight: 1 },
  { address: '10.0.0.3:7420', weight: 2 },
];

describe('the ownership rule', () => {
  it('a key is owned by the first in its ranking, a name is homed at the owner of container/key', () => {
    const homes = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const name = { container: 'weights', key: `model-${i}/shard.safetensors` };
      const home = homeOf(name, members);
      expect(home).toBe(rank(`weights/model-${i}/shard.safetensors`, members)[0]!.address);
      expect(home).toBe(ownerOf(`${name.container}/${name.key}`, members));
      homes.add(home);
    }
    expect(homes.size).toBe(3); // every member is home of some names
  });

  it('an empty member list owns nothing and homes nothing, with a clear error', () => {
    expect(ownerOf('k', [])).toBeUndefined();
    expect(() => homeOf({ container: 'c', key: 'k' }, [])).toThrow(/the member list is empty/);
  });
});
