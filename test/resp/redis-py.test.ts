/**
 * redis-py (PyPI `redis`) against the RESP door, RESP2 and RESP3: the calls a
 * Python loader makes — SCAN MATCH then GET (SGLang's Redis loader), GETRANGE,
 * pipelines. Skipped only when python3 or the module is missing outside CI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, type Harness, startHarness } from './harness.js';

const hasRedisPy = spawnSync('python3', ['-c', 'import redis'], { stdio: 'ignore' }).status === 0;

const SCRIPT = `
import hashlib, json, sys
import redis
port, proto = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(host='127.0.0.1', port=port, protocol=proto)
out = {'ping': r.ping()}
keys = sorted(k.decode() for k in r.scan_iter(match='sg/model/*', count=2))
out['keys'] = keys
out['sha'] = {k: hashlib.sha256(r.get(k)).hexdigest() for k in keys}
out['range'] = hashlib.sha256(r.getrange('sg/model/w.bin', 100, ${2 * CHUNK})).hexdigest()
p = r.pipeline(transaction=False)
for i in range(1000):
    p.getrange('sg/model/w.bin', i, i + 9)
out['pipeline'] = hashlib.sha256(b''.join(p.execute())).hexdigest()
try:
    r.set('sg/model/w.bin', b'x')
except redis.exceptions.ReadOnlyError as e:
    out['readonly'] = str(e)
print(json.dumps(out))
`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    seed: { 'sg/model/w.bin': 3 * CHUNK + 5, 'sg/model/config.json': 50, 'sg/other': 1 },
  });
});
afterAll(() => h?.close());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.skipIf(!hasRedisPy && !process.env.CI)('redis-py', () => {
  for (const proto of [2, 3]) {
    it(`reads like a loader over RESP${proto}`, async () => {
      const child = spawn('python3', ['-c', SCRIPT, String(h.port), String(proto)]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const out = JSON.parse(stdout);
      const w = h.objects.get('sg/model/w.bin')!;
      expect(out.ping).toBe(true);
      expect(out.keys).toEqual(['sg/model/config.json', 'sg/model/w.bin']);
      expect(out.sha['sg/model/w.bin']).toBe(sha(w));
      expect(out.range).toBe(sha(w.subarray(100, 2 * CHUNK + 1)));
      const expected = Buffer.concat(Array.from({ length: 1000 }, (_, i) => w.subarray(i, i + 10)));
      expect(out.pipeline).toBe(sha(expected));
      expect(out.readonly).toContain("You can't write against a read only replica");
    });
  }
});
