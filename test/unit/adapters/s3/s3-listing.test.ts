import {
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../../../lib/adapters/s3/objects.ts';
import { VolsnapError } from '../../../../lib/core/shared/errors.ts';

/**
 * s3rver has no ListMultipartUploads, so what the reaper sends to list unfinished uploads is checked
 * here against a client that answers as S3 documents it (two pages, then not implemented).
 */
function recordingClient(answer: (input: ListMultipartUploadsCommandInput) => unknown) {
  const sent: ListMultipartUploadsCommandInput[] = [];
  const client = {
    send: async (command: unknown) => {
      if (!(command instanceof ListMultipartUploadsCommand)) throw new Error('unexpected command');
      sent.push(command.input);
      return answer(command.input);
    },
  } as unknown as S3Client;
  return { client, sent };
}

describe('listing unfinished multipart uploads (what S3 is asked)', () => {
  it('follows the key and upload-id markers across pages, under the prefix, in the bucket', async () => {
    const { client, sent } = recordingClient((input) =>
      input.KeyMarker === undefined
        ? {
            Uploads: [{ Key: 'exports/a/exp-1.vsnap', UploadId: 'u1', Initiated: new Date(1000) }],
            IsTruncated: true,
            NextKeyMarker: 'exports/a/exp-1.vsnap',
            NextUploadIdMarker: 'u1',
          }
        : {
            Uploads: [{ Key: 'exports/b/exp-2.raw', UploadId: 'u2', Initiated: new Date(2000) }],
            IsTruncated: false,
          },
    );
    const store = new S3ObjectStore(client, 'volsnap-data');
    const uploads = [];
    for await (const upload of store.listIncompleteUploads('exports/')) uploads.push(upload);
    expect(uploads).toEqual([
      { key: 'exports/a/exp-1.vsnap', uploadId: 'u1', initiated: 1000 },
      { key: 'exports/b/exp-2.raw', uploadId: 'u2', initiated: 2000 },
    ]);
    expect(sent).toEqual([
      { Bucket: 'volsnap-data', Prefix: 'exports/', KeyMarker: undefined, UploadIdMarker: undefined },
      {
        Bucket: 'volsnap-data',
        Prefix: 'exports/',
        KeyMarker: 'exports/a/exp-1.vsnap',
        UploadIdMarker: 'u1',
      },
    ]);
  });

  it('says the store cannot list them (storage.unsupported) when S3 answers 501, as s3rver does', async () => {
    const { client } = recordingClient(() => {
      throw Object.assign(new Error('A header you provided implies functionality that is not implemented'), {
        name: 'NotImplemented',
        $metadata: { httpStatusCode: 501 },
      });
    });
    const store = new S3ObjectStore(client, 'volsnap-data');
    const listing = async () => {
      for await (const _ of store.listIncompleteUploads('')) {
        // nothing
      }
    };
    await expect(listing()).rejects.toMatchObject({ code: 'storage.unsupported' });
    await expect(listing()).rejects.toBeInstanceOf(VolsnapError);
  });
});
