import { describe, expect, it } from 'vitest';
import { CoherenceFrame, serveHome } from '../../src/coherence/wire.js';
import { Messages } from '../../src/transport/rpc.js';

const handler = { decode: (m: Buffer) => m, serve: async (m: Buffer) => m };

describe('Messages.register', () => {
  it('refuses the connection’s own types, 0, types past 255 and a type registered twice, naming it', () => {
    const m = new Messages();
    for (const t of [0, 1, 2, 3, 4, 5, 256, 1.5]) {
      expect(() => m.register(t, 'X', handler)).toThrow(/cannot be registered/);
    }
    m.register(0x70, 'MINE', handler);
    expect(() => m.register(0x70, 'THEIRS', handler)).toThrow(/already registered as MINE/);
    expect(m.name(0x70)).toBe('MINE');
    expect(m.name(4)).toBe('PING');
    expect(m.name(0x71)).toBe('type 113');
  });

  it('coherence registers exactly its home messages in one call, and a second home cannot claim them', () => {
    const m = new Messages();
    const home = {
      lease: async () => ({ status: 'notHome', homeIncarnation: 1 }) as const,
      ack() {},
      invalidate: async () => ({ names: 0, acked: 0, expired: 0 }),
    };
    serveHome(m, home);
    expect([0x20, 0x21, 0x23, 0x24].map((t) => m.name(t))).toEqual([
      'LEASE_GRANT',
      'LEASE_RENEW',
      'LEASE_ACK',
      'INVALIDATE',
    ]);
    expect(m.get(CoherenceFrame.LEASE_REVOKE)).toBeUndefined(); // the holder's, not the home's
    expect(() => serveHome(m, home)).toThrow(/already registered as LEASE_GRANT/);
  });
});
