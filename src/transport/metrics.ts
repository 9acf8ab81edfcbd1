/**
 * The native transport's own counters (process-wide: one I/O thread per
 * process), exported to Prometheus when scraped. `bytes_copied_total` is the
 * zero-copy proof in production: payload bytes copied in user space, which
 * stays 0 for DRAM (writev) and NVMe (sendfile) sends.
 */
import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import { binding, type NativeTransportStats } from './binding.js';

/** Stats, or undefined while the transport is not initialised in this process (no peer used yet). */
function read(): NativeTransportStats | undefined {
  try {
    return binding().transportStats();
  } catch {
    return undefined;
  }
}

/** A counter mirroring a monotonic native value: increased by the difference at each scrape. */
function mirror(
  metrics: Metrics,
  name: string,
  help: string,
  pick: (s: NativeTransportStats) => Record<string, number>,
  labelName?: string,
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: labelName ? [labelName] : [],
    registers: [metrics.registry],
    collect() {
      const s = read();
      if (!s) return;
      for (const [label, value] of Object.entries(pick(s))) {
        const delta = value - (last.get(label) ?? 0);
        last.set(label, value);
        if (delta <= 0) continue;
        if (labelName) this.inc({ [labelName]: label }, delta);
        else this.inc(delta);
      }
    },
  });
}

export function registerTransportMetrics(metrics: Metrics): void {
  const p = 'weightcache_transport_';
  mirror(
    metrics,
    `${p}payload_bytes_sent_total`,
    'Payload bytes sent, by how (writev from memory, sendfile from a chunk file)',
    (s) => ({ writev: s.bytesWritev, sendfile: s.bytesSendfile }),
    'method',
  );
  mirror(
    metrics,
    `${p}payload_bytes_copied_total`,
    'Payload bytes copied in user space by the transport (0 = zero copy)',
    (s) => ({ '': s.bytesCopied }),
  );
  mirror(
    metrics,
    `${p}payload_bytes_received_total`,
    'Payload bytes received straight into their final buffer',
    (s) => ({ '': s.bytesReceivedDirect }),
  );
  mirror(
    metrics,
    `${p}payload_bytes_received_into_store_total`,
    'Chunk payload bytes read straight into DRAM store memory, kept without a copy',
    (s) => ({ '': s.bytesReceivedStore }),
  );
  mirror(
    metrics,
    `${p}frames_total`,
    'Frames sent and received',
    (s) => ({ sent: s.framesSent, received: s.framesReceived }),
    'direction',
  );
  mirror(
    metrics,
    `${p}connections_total`,
    'Transport connections opened, closed and rejected (over the limit)',
    (s) => ({ opened: s.connectionsOpened, closed: s.connectionsClosed, rejected: s.connectionsRejected }),
    'event',
  );
  mirror(
    metrics,
    `${p}preauth_closed_total`,
    'Connections closed before authenticating, by why: timeout, evicted (to make room), refused (a frame not allowed)',
    (s) => ({ timeout: s.preAuthTimeouts, evicted: s.preAuthEvicted, refused: s.preAuthRefused }),
    'reason',
  );
  mirror(
    metrics,
    `${p}protocol_errors_total`,
    'Connections closed for a protocol error (bad frame, version, checksum)',
    (s) => ({ '': s.protocolErrors }),
  );
  mirror(
    metrics,
    `${p}native_served_total`,
    'READ_CHUNK requests answered on the I/O thread from the native store, without JavaScript',
    (s) => ({ '': s.nativeServed }),
  );
  mirror(
    metrics,
    `${p}native_served_bytes_total`,
    'Payload bytes of READ_CHUNK answers sent from the native store without JavaScript',
    (s) => ({ '': s.nativeServedBytes }),
  );
  mirror(
    metrics,
    `${p}native_passed_total`,
    "READ_CHUNK requests a natively serving listener passed to JavaScript, by why: unbound (no or another version), miss (neither whole in DRAM nor on NVMe), busy (on NVMe, but the I/O thread's NVMe reads were at their bound), nvme_failed (an NVMe read failed: a block's CRC32C, a file gone or short; JavaScript drops and refetches), other (stand-in, errors)",
    (s) => ({
      unbound: s.nativePassUnbound,
      miss: s.nativePassMiss,
      busy: s.nativePassBusy,
      nvme_failed: s.nativeNvmeFailed,
      other: s.nativePassOther,
    }),
    'reason',
  );
  mirror(
    metrics,
    `${p}native_nvme_served_total`,
    'Of native_served_total: READ_CHUNK answers whose bytes the I/O thread read from NVMe chunk files, each block verified against its CRC32C',
    (s) => ({ '': s.nativeNvmeServed }),
  );
  mirror(
    metrics,
    `${p}native_nvme_served_bytes_total`,
    'Payload bytes of READ_CHUNK answers read from NVMe chunk files on the I/O thread',
    (s) => ({ '': s.nativeNvmeServedBytes }),
  );
  new Gauge({
    name: `${p}native_nvme_waiting`,
    help: 'READ_CHUNK answers waiting on NVMe reads on the I/O thread (at most 64: kMaxTransportDiskReads)',
    registers: [metrics.registry],
    collect() {
      const s = read();
      if (s) this.set(s.nativeNvmeWaiting);
    },
  });
  new Gauge({
    name: `${p}native_chunk_references`,
    help: 'Store references held by native READ_CHUNK answers not yet written',
    registers: [metrics.registry],
    collect() {
      const s = read();
      if (s) this.set(s.nativeChunkRefs);
    },
  });
  new Gauge({
    name: `${p}queued_bytes`,
    help: 'Bytes queued for sending (bounded by the in-flight limits)',
    registers: [metrics.registry],
    collect() {
      const s = read();
      if (s) this.set(s.queuedBytes);
    },
  });
}
