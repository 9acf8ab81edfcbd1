/**
 * The Azure Blob door over an Azure origin (Azurite): a blob's Content-MD5
 * is answered only if the origin keeps one, and is the origin's own value,
 * read by azure-storage-blob (properties and List Blobs) on one node and on
 * both members of a two-node cluster, where a member that is not a name's
 * home learns it from the home's lease answer. Python beside this file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzuriteHandle, seedMd5Blobs, startAzurite } from '../harness/azurite.js';
import { addresses, startMember } from '../harness/cluster.js';
import { get } from '../harness/http-get.js';
import { type NodeProcess, startNodeProcess } from '../harness/node-process.js';
import { freePort } from '../harness/ports.js';
import { type ClientOutput, hasVenv, runPythonJson } from '../harness/python.js';

const here = import.meta.dirname;
const run = hasVenv('main') || process.env.CI;
const CLIENT_TEST_MS = 600_000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Larger than one 256 KiB chunk, so reads cross chunks. */
const withBytes = randomBytes(300_000);
const withoutBytes = randomBytes(280_000);
const md5 = createHash('md5').update(withBytes).digest('base64');

/** Azurite's container `models`: one blob with a Content-MD5, one committed as a block list without one. */
async function seedAzurite(az: AzuriteHandle): Promise<void> {
  await seedMd5Blobs(az, withBytes, withoutBytes);
  const c = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient('models');
  const without = c.getBlockBlobClient('md5/without.bin');
  // The premise: Azurite keeps exactly what was set.
  const kept = (await c.getBlobClient('md5/with.bin').getProperties()).contentMD5;
  expect(kept && Buffer.from(kept).toString('base64')).toBe(md5);
  expect((await without.getProperties()).contentMD5).toBeUndefined();
}

const connectionString = (node: NodeProcess) =>
  `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${'a'.repeat(88)};BlobEndpoint=${node.url}/azure/acct`;

/** What azure-storage-blob sees through `node`'s door. */
async function expectMd5Through(node: NodeProcess): Promise<void> {
  const out = await runPythonJson<ClientOutput>(
    'main',
    join(here, 'azure_client.py'),
    ['md5', connectionString(node)],
    { timeoutMs: CLIENT_TEST_MS },
  );
  expect(out['md5/with.bin']).toEqual({
    props_md5: md5,
    sha: sha(withBytes),
    range_sha: sha(withBytes.subarray(100, 1100)),
  });
  expect(out['md5/without.bin']).toEqual({
    props_md5: null,
    sha: sha(withoutBytes),
    range_sha: sha(withoutBytes.subarray(100, 1100)),
  });
  expect(out.listed).toEqual({ 'md5/with.bin': md5, 'md5/without.bin': null });
}

describe.skipIf(!run)('Azure door over an Azure origin: Content-MD5', { timeout: CLIENT_TEST_MS }, () => {
  let az: AzuriteHandle;
  const running: NodeProcess[] = [];
  beforeAll(async () => {
    az = await startAzurite();
    await seedAzurite(az);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    await az?.stop();
  });

  it("one node: the origin's Content-MD5 where it has one, none where it has none", async () => {
    const node = await startNodeProcess({
      config: {
        origin: { type: 'azure', azure: { connectionString: az.connectionString } },
        cache: { chunkSize: '256KiB' },
      },
      timeoutMs: 120_000,
    });
    running.push(node);
    await expectMd5Through(node);
    // Where the service puts it: Content-MD5 on a whole read, x-ms-blob-content-md5 beside a
    // ranged one (whose Content-MD5 would be the range's own, asked for with x-ms-range-get-content-md5).
    const whole = await get(node.url, '/azure/acct/models/md5/with.bin');
    expect(whole.headers['content-md5']).toBe(md5);
    expect(whole.body.equals(withBytes)).toBe(true);
    const ranged = await get(node.url, '/azure/acct/models/md5/with.bin', { 'x-ms-range': 'bytes=0-99' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['x-ms-blob-content-md5']).toBe(md5);
    expect(ranged.headers['content-md5']).toBeUndefined();
    const rangeMd5 = await get(node.url, '/azure/acct/models/md5/with.bin', {
      'x-ms-range': 'bytes=0-99',
      'x-ms-range-get-content-md5': 'true',
    });
    expect(rangeMd5.headers['content-md5']).toBe(
      createHash('md5').update(withBytes.subarray(0, 100)).digest('base64'),
    );
    expect(rangeMd5.headers['x-ms-blob-content-md5']).toBe(md5);
    // A plain Range works as x-ms-range does; x-ms-range wins when both are sent.
    const plain = await get(node.url, '/azure/acct/models/md5/with.bin', { range: 'bytes=10-19' });
    expect(plain.status).toBe(206);
    expect(plain.headers['content-range']).toBe(`bytes 10-19/${withBytes.length}`);
    expect(plain.body.equals(withBytes.subarray(10, 20))).toBe(true);
    expect(plain.headers['x-ms-blob-content-md5']).toBe(md5);
    const both = await get(node.url, '/azure/acct/models/md5/with.bin', {
      range: 'bytes=10-19',
      'x-ms-range': 'bytes=0-4',
    });
    expect(both.body.equals(withBytes.subarray(0, 5))).toBe(true);
    const none = await get(node.url, '/azure/acct/models/md5/without.bin', {}, 'HEAD');
    expect(none.status).toBe(200);
    expect(none.headers['content-md5']).toBeUndefined();
    expect(none.headers['x-ms-blob-content-md5']).toBeUndefined();
    // The S3 door has no such property to answer: it invents none.
    const s3 = await get(node.url, '/s3/models/md5/with.bin', {}, 'HEAD');
    expect(s3.status).toBe(200);
    expect(s3.headers['content-md5']).toBeUndefined();
  });

  it('two nodes: a member that is not the home answers the Content-MD5 of the lease it was granted', async () => {
    const members = addresses(2, await freePort(), 41);
    const nodes = await Promise.all(
      members.map((self) =>
        startMember({
          self,
          members,
          running,
          timeoutMs: 120_000,
          config: { origin: { type: 'azure', azure: { connectionString: az.connectionString } } },
        }),
      ),
    );
    // Each blob is read through both members: for each, one of them is not its home.
    for (const node of nodes) await expectMd5Through(node);
    let granted = 0;
    let fallbacks = 0;
    for (const node of nodes) {
      granted += await node.metric('weightcache_lease_grants_total', { result: 'ok' });
      fallbacks += await node.metric('weightcache_lease_origin_fallbacks_total');
    }
    // Both names were resolved over the wire at least once, and never by a holder's own origin stat.
    expect(granted).toBeGreaterThanOrEqual(2);
    expect(fallbacks).toBe(0);
  });
});
