/**
 * Raw TCP connections for the attacks: opened a window at a time (so 10,000
 * of them do not stampede the accept queue in one tick), each from the attacker's
 * source address, and torn down with a reset so the attacker leaves no
 * TIME_WAIT behind to exhaust ports for the next attack.
 */
import { connect, type Socket } from 'node:net';

export interface Opened {
  readonly sockets: Socket[];
  /** Connections refused, reset or timed out while opening. */
  readonly failed: number;
  /** Sockets the server closed since they opened (kept up to date). */
  closedByServer(): number;
}

export async function openConnections(
  n: number,
  port: number,
  localAddress: string,
  onOpen?: (s: Socket, i: number) => void,
  inFlight = 500,
): Promise<Opened> {
  const sockets: Socket[] = [];
  let failed = 0;
  let closed = 0;
  let next = 0;
  // A window of connects in flight: a server that stops accepting costs one timeout per
  // window slot, not one per connection.
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const s = await connectOne(port, localAddress).catch(() => null);
      if (!s) {
        failed++;
        continue;
      }
      s.once('close', () => {
        if (!(s as Socket & { ours?: boolean }).ours) closed++;
      });
      onOpen?.(s, i);
      sockets.push(s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
  return { sockets, failed, closedByServer: () => closed };
}

function connectOne(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, 3000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.on('error', () => {}); // resets are an expected answer to an attack
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Resets every socket (RST, no TIME_WAIT), marking it as closed by us. */
export function resetAll(sockets: readonly Socket[]): void {
  for (const s of sockets) {
    (s as Socket & { ours?: boolean }).ours = true;
    if (!s.destroyed) s.resetAndDestroy();
  }
}
