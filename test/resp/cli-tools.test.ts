/**
 * Debian redis-tools against the RESP door: redis-cli (RESP3 with -3, the
 * interactive start that reads COMMAND DOCS, --raw GETRANGE byte-exact) and
 * redis-benchmark (-t get, PING_INLINE, a GETRANGE). Skipped only when the
 * binaries are missing outside CI; in CI a missing binary fails.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';
import { shouldRun } from './raw.js';

let h: Harness;
const KEY = 'models/tiny/model.safetensors';

beforeAll(async () => {
  h = await startHarness({ seed: { [KEY]: 2 * CHUNK + 999, 'models/tiny/config.json': 300 } });
});
afterAll(() => h?.close());

function run(
  bin: string,
  args: string[],
  stdin?: string,
): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: err, code: code ?? -1 });
    });
    child.stdin.end(stdin ?? '');
  });
}

const cli = (args: string[], stdin?: string) =>
  run('redis-cli', ['-h', '127.0.0.1', '-p', String(h.port), ...args], stdin);

describe.skipIf(!shouldRun('redis-cli'))('redis-cli', () => {
  it('--raw GETRANGE writes the exact bytes', async () => {
    const bytes = h.objects.get(KEY)!;
    const r = await cli(['--raw', 'GETRANGE', KEY, String(CHUNK - 100), String(CHUNK + 5000)]);
    expect(r.code).toBe(0);
    // redis-cli --raw ends the value with a newline of its own.
    expect(
      r.stdout.equals(Buffer.concat([bytes.subarray(CHUNK - 100, CHUNK + 5001), Buffer.from('\n')])),
    ).toBe(true);
  });

  it('-3 negotiates RESP3 and prints maps', async () => {
    const hello = await cli(['-3', 'HELLO', '3']);
    expect(hello.stdout.toString()).toMatch(/proto\W+3/);
    const stat = await cli(['-3', 'WC.STAT', KEY]);
    expect(stat.stdout.toString()).toContain(`${2 * CHUNK + 999}`);
    const info = await cli(['-3', 'CLIENT', 'INFO']);
    expect(info.stdout.toString()).toContain('resp=3');
  });

  it('starts interactively from COMMAND DOCS: help shows our docs, commands run', async () => {
    const r = await cli([], `help getrange\nSTRLEN ${KEY}\nSET ${KEY} x\nEXISTS ${KEY} nope/x\n`);
    const out = r.stdout.toString();
    expect(out).toContain('Returns bytes start..end');
    expect(out).toContain(String(2 * CHUNK + 999));
    expect(out).toContain("READONLY You can't write against a read only replica.");
    expect(out).toMatch(/\(integer\) 1|\b1\b/);
  });

  it('sends inline and quoted arguments the server splits like Redis', async () => {
    const r = await cli([], `ECHO "two words"\n`);
    expect(r.stdout.toString()).toContain('two words');
  });
});

describe.skipIf(!shouldRun('redis-benchmark'))('redis-benchmark', () => {
  const bench = (args: string[]) =>
    run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(h.port), '-c', '4', '-q', ...args]);

  it('runs -t get and PING_INLINE to completion', async () => {
    const r = await bench(['-n', '2000', '-t', 'get,ping_inline']);
    const out = r.stdout.toString();
    expect(r.code).toBe(0);
    expect(out).toMatch(/PING_INLINE: [\d.]+ requests per second/);
    expect(out).toMatch(/GET: [\d.]+ requests per second/);
  });

  it('runs a pipelined GETRANGE of a real key', async () => {
    const r = await bench(['-n', '2000', '-P', '16', 'GETRANGE', KEY, '0', String(CHUNK - 1)]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/GETRANGE .*: [\d.]+ requests per second/);
    const served = await h.metrics.total(h.metrics.requests, { protocol: 'resp', result: 'ok' });
    expect(served).toBeGreaterThanOrEqual(2000);
  });
});
