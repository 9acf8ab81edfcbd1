/**
 * Azure Event Grid deliveries shaped like Microsoft's published samples, shared
 * by the parser's tests (event-grid.test.ts) and the webhook route's
 * (test/http/invalidate.test.ts).
 */
export const TOPIC =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/my-storage-account';

/** Shaped like Microsoft's published samples (event-schema-blob-storage.md), Event Grid schema. */
export function egBlobCreated(subject: string, eTag = '"0x8D4BCC2E4835CD0"') {
  return {
    topic: TOPIC,
    subject,
    eventType: 'Microsoft.Storage.BlobCreated',
    eventTime: '2017-06-26T18:41:00.9584103Z',
    id: '831e1650-001e-001b-66ab-eeb76e069631',
    data: {
      api: 'PutBlockList',
      clientRequestId: '6d79dbfb-0e37-4fc4-981f-442c9ca65760',
      requestId: '831e1650-001e-001b-66ab-eeb76e000000',
      eTag,
      contentType: 'application/octet-stream',
      contentLength: 524288,
      blobType: 'BlockBlob',
      url: 'https://my-storage-account.blob.core.windows.net/models/llama/model-00001.safetensors',
      sequencer: '00000000000004420000000000028963',
      storageDiagnostics: { batchId: 'b68529f3-68cd-4744-baa4-3c0498ec19f0' },
    },
    dataVersion: '',
    metadataVersion: '1',
  };
}

export function egBlobDeleted(subject: string) {
  return {
    topic: TOPIC,
    subject,
    eventType: 'Microsoft.Storage.BlobDeleted',
    eventTime: '2017-11-07T20:09:22.5674003Z',
    id: '4c2359fe-001e-00ba-0e04-58586806d298',
    data: {
      api: 'DeleteBlob',
      requestId: '4c2359fe-001e-00ba-0e04-585868000000',
      contentType: 'text/plain',
      blobType: 'BlockBlob',
      url: 'https://my-storage-account.blob.core.windows.net/models/old.bin',
      sequencer: '0000000000000281000000000002F5CA',
      storageDiagnostics: { batchId: 'b68529f3-68cd-4744-baa4-3c0498ec19f0' },
    },
    dataVersion: '',
    metadataVersion: '1',
  };
}

/** The same events in CloudEvents 1.0 as Event Grid delivers them. */
export function ceBlob(
  type: 'Microsoft.Storage.BlobCreated' | 'Microsoft.Storage.BlobDeleted',
  subject: string,
) {
  return {
    specversion: '1.0',
    type,
    source: TOPIC,
    id: '9aeb0fdf-c01e-0131-0922-9eb54906e209',
    time: '2019-11-18T15:13:39.4589254Z',
    subject,
    data: {
      api: type === 'Microsoft.Storage.BlobCreated' ? 'PutBlockList' : 'DeleteBlob',
      clientRequestId: '4c5dd7fb-2c48-4a27-bb30-5361b5de920a',
      requestId: '9aeb0fdf-c01e-0131-0922-9eb549000000',
      ...(type === 'Microsoft.Storage.BlobCreated' ? { eTag: '0x8D76C39E4407333', contentLength: 30 } : {}),
      contentType: 'application/octet-stream',
      blobType: 'BlockBlob',
      url: 'https://my-storage-account.blob.core.windows.net/models/x',
      sequencer: '000000000000000000000000000099240000000000c41c18',
      storageDiagnostics: { batchId: '681fe319-3006-00a8-0022-9e7cde000000' },
    },
  };
}

export const VALIDATION = [
  {
    id: '2d1781af-3a4c-4d7c-bd0c-e34b19da4e66',
    topic: TOPIC,
    subject: '',
    data: {
      validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
      validationUrl:
        'https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/myeventsub/validate?id=0000&t=2022-10-28T04:23:35.1981776Z&apiVersion=2018-05-01-preview&token=1A1A1A1A',
    },
    eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
    eventTime: '2022-10-28T04:23:35.1981776Z',
    metadataVersion: '1',
    dataVersion: '1',
  },
];

export const sub = (container: string, key: string) =>
  `/blobServices/default/containers/${container}/blobs/${key}`;
