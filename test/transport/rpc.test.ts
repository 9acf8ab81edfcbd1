import { describe, expect, it } from 'vitest';
import { CoherenceFrame, serveHome } from '../../src/coherence/wire.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { FEATURE_STAND_IN } from '../../src/transport/protocol.js';
import { Messages, RequestMatcher } from '../../src/transport/rpc.js';

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

describe('RequestMatcher', () => {
  it('builds a meta that depends on the peer when the request goes out, after the handshake', async () => {
    let features = 0;
    const written: Buffer[] = [];
    const m = new RequestMatcher({
      peer: 'p:1',
      write: (_type, _id, meta) => written.push(meta),
      features: () => features,
    });
    const seen: number[] = [];
    const meta = (f: number) => {
      seen.push(f);
      return Buffer.from((f & FEATURE_STAND_IN) !== 0 ? 'new' : 'old');
    };
    const a = m.request(0x10, meta, 10_000);
    expect(seen).toEqual([]); // queued until the peer's HELLO is known
    features = FEATURE_STAND_IN;
    m.ready();
    expect(seen).toEqual([FEATURE_STAND_IN]);
    expect(written.map(String)).toEqual(['new']);
    // A meta builder that throws fails its own request, not the connection.
    const b = m.request(
      0x10,
      () => {
        throw new Error('bad field');
      },
      10_000,
    );
    await expect(b).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(written).toHaveLength(1);
    m.fail(new CacheError('SHUTTING_DOWN', 'test over'));
    await expect(a).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});
