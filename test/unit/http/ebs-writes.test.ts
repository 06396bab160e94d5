import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SignatureV4 } from '@smithy/signature-v4';
import { beforeEach, describe, expect, it } from 'vitest';
import { writeRoutesOf } from '../../../functions/http/ebs/writes.ts';
import { ec2RoutesOf } from '../../../functions/http/ec2.ts';
import { BLOCK_SIZE } from '../../../lib/core/format/blocks.ts';
import { ObjectLayout } from '../../../lib/core/ports/objects.ts';
import { directPacker, directWrites } from '../../../lib/wiring/direct.ts';
import { snapshotService } from '../../../lib/wiring/snapshots.ts';
import { lambdaRequestHandler, type TestKey, testAuthenticator } from '../../support/aws-lambda-handler.ts';
import { type MemoryRegion, memoryRegion } from '../../support/memory-region.ts';
import { NodeSha256 } from '../../support/node-sha256.ts';

const REGION = 'eu-west-1';
let region: MemoryRegion;
let alice: TestKey;
let bob: TestKey;
let routes: ReturnType<typeof writeRoutesOf>;

const key = (name: string, caller: TestKey['caller']): TestKey => ({
  accessKeyId: `AKIA${name.toUpperCase().padEnd(16, 'X')}`,
  secretAccessKey: randomBytes(30).toString('base64'),
  caller,
});

beforeEach(async () => {
  region = memoryRegion(REGION);
  alice = key('alice', await region.account('alice'));
  bob = key('bob', await region.account('bob'));
  const options = {
    authenticate: testAuthenticator([alice, bob]),
    limiter: null,
    audit: region.ports.audit,
    region: REGION,
  };
  routes = {
    ...writeRoutesOf(() => region.region.get(directWrites), options),
    ...ec2RoutesOf(() => region.region.get(snapshotService), options),
  };
});

function ebs(signer: TestKey = alice): EBSClient {
  return new EBSClient({
    region: REGION,
    endpoint: 'http://volsnap.test/ebs',
    credentials: { accessKeyId: signer.accessKeyId, secretAccessKey: signer.secretAccessKey },
    requestHandler: lambdaRequestHandler(routes),
    maxAttempts: 1,
  });
}

function ec2(signer: TestKey = alice): EC2Client {
  return new EC2Client({
    region: REGION,
    endpoint: 'http://volsnap.test/ec2',
    credentials: { accessKeyId: signer.accessKeyId, secretAccessKey: signer.secretAccessKey },
    requestHandler: lambdaRequestHandler(routes),
    maxAttempts: 1,
  });
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest();

async function drain(): Promise<void> {
  const packer = region.region.get(directPacker);
  for (let m = region.ports.queue.messages.shift(); m; m = region.ports.queue.messages.shift())
    if (m.kind === 'snapshot.directPart') await packer.runPart(m.snapshotId, m.part);
}

function putBlock(snapshotId: string, index: number, data: Buffer, checksum = sha(data).toString('base64')) {
  return ebs().send(
    new PutSnapshotBlockCommand({
      SnapshotId: snapshotId,
      BlockIndex: index,
      BlockData: data,
      DataLength: data.length,
      Checksum: checksum,
      ChecksumAlgorithm: 'SHA256',
    }),
  );
}

async function staged(snapshotId: string): Promise<number> {
  let n = 0;
  for await (const _ of region.ports.objects.list(ObjectLayout.stagedBlockPrefix(snapshotId))) n++;
  return n;
}

describe('the EBS write routes, driven by the unmodified @aws-sdk/client-ebs', () => {
  it('StartSnapshot 201, PutSnapshotBlock 201 with the checksum, CompleteSnapshot 202 pending, then DescribeSnapshots completed', async () => {
    const started = await ebs().send(
      new StartSnapshotCommand({
        VolumeSize: 1,
        Description: 'image',
        Tags: [{ Key: 'team', Value: 'ops' }],
        Timeout: 30,
      }),
    );
    expect(started.$metadata.httpStatusCode).toBe(201);
    expect(started).toMatchObject({
      SnapshotId: expect.stringMatching(/^snap-/),
      OwnerId: alice.caller.accountId,
      Status: 'pending',
      VolumeSize: 1,
      BlockSize: BLOCK_SIZE,
      Description: 'image',
      Tags: [{ Key: 'team', Value: 'ops' }],
    });
    // An epoch-seconds timestamp, parsed by the SDK into a Date: the region's clock.
    expect(started.StartTime?.getTime()).toBe(region.clock.now());
    const id = started.SnapshotId as string;
    const data = randomBytes(BLOCK_SIZE);
    const put = await putBlock(id, 3, data);
    expect(put.$metadata.httpStatusCode).toBe(201);
    expect(put).toMatchObject({ Checksum: sha(data).toString('base64'), ChecksumAlgorithm: 'SHA256' });
    const completed = await ebs().send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: 1,
        Checksum: sha(sha(data)).toString('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    expect(completed.$metadata.httpStatusCode).toBe(202);
    expect(completed.Status).toBe('pending');
    const pending = await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
    expect(pending.Snapshots?.map((s) => [s.SnapshotId, s.State])).toEqual([[id, 'pending']]);
    await drain();
    const described = await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
    expect(described.Snapshots).toMatchObject([
      {
        SnapshotId: id,
        State: 'completed',
        Progress: '100%',
        VolumeSize: 1,
        OwnerId: alice.caller.accountId,
        Description: 'image',
        Tags: [{ Key: 'team', Value: 'ops' }],
      },
    ]);
    expect((await ec2().send(new DescribeSnapshotsCommand({}))).Snapshots?.map((s) => s.SnapshotId)).toEqual([
      id,
    ]);
    // Another account sees none of it.
    expect((await ec2(bob).send(new DescribeSnapshotsCommand({}))).Snapshots).toEqual([]);
    await expect(ec2(bob).send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    expect(region.ports.audit.entries.map((e) => e.action)).toEqual([
      'ebs.startSnapshot',
      'ebs.completeSnapshot',
    ]);
  });

  it('answers each bad block with the error the SDK expects, and stages nothing', async () => {
    const { SnapshotId } = await ebs().send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const id = SnapshotId as string;
    const data = randomBytes(BLOCK_SIZE);
    await expect(putBlock(id, 0, data, sha(randomBytes(8)).toString('base64'))).rejects.toMatchObject({
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
      Reason: 'INVALID_PARAMETER_VALUE',
    });
    const short = data.subarray(0, 4096);
    await expect(putBlock(id, 0, short)).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('524288'),
    });
    await expect(putBlock(id, 2048, data)).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('outside the volume'),
    });
    await expect(
      ebs(bob).send(
        new PutSnapshotBlockCommand({
          SnapshotId: id,
          BlockIndex: 0,
          BlockData: data,
          DataLength: BLOCK_SIZE,
          Checksum: sha(data).toString('base64'),
          ChecksumAlgorithm: 'SHA256',
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      Reason: 'SNAPSHOT_NOT_FOUND',
      $metadata: { httpStatusCode: 404 },
    });
    expect(await staged(id)).toBe(0);
  });

  it('refuses a PutSnapshotBlock whose signature does not cover x-amz-Checksum (the unsigned body has no other protection)', async () => {
    const { SnapshotId } = await ebs().send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const data = randomBytes(BLOCK_SIZE);
    const path = `/ebs/snapshots/${SnapshotId}/blocks/0`;
    const headers: Record<string, string> = {
      host: 'volsnap.test',
      'content-type': 'application/octet-stream',
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-data-length': String(BLOCK_SIZE),
      'x-amz-checksum-algorithm': 'SHA256',
      'x-amz-checksum': sha(data).toString('base64'),
    };
    const signer = new SignatureV4({
      credentials: { accessKeyId: alice.accessKeyId, secretAccessKey: alice.secretAccessKey },
      region: REGION,
      service: 'ebs',
      sha256: NodeSha256,
      applyChecksum: false,
    });
    const signed = await signer.sign(
      { method: 'PUT', protocol: 'http:', hostname: 'volsnap.test', path, headers, body: data, query: {} },
      { unsignableHeaders: new Set(['x-amz-checksum']) },
    );
    expect(signed.headers.authorization).not.toContain('x-amz-checksum;');
    const handler = lambdaRequestHandler(routes);
    // Sent but not signed: the SigV4 check refuses it (every x-amz-* header must be signed).
    const unsigned = (await handler.handle({ ...signed, body: data } as never)).response;
    expect([unsigned.statusCode, unsigned.headers['x-amzn-errortype']]).toEqual([
      403,
      'InvalidSignatureException',
    ]);
    // Not sent at all, so nothing protects the body: the route refuses it.
    const { 'x-amz-checksum': _left, ...rest } = headers;
    const bare = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: 'volsnap.test',
      path,
      headers: rest,
      body: data,
      query: {},
    });
    const missing = (await handler.handle({ ...bare, body: data } as never)).response;
    expect([missing.statusCode, missing.headers['x-amzn-errortype']]).toEqual([400, 'IncompleteSignature']);
    expect(String(missing.body)).toContain('x-amz-Checksum');
    expect(await staged(SnapshotId as string)).toBe(0);
  });

  it('answers a ClientToken used again with other parameters with ConflictException (409)', async () => {
    const first = await ebs().send(new StartSnapshotCommand({ VolumeSize: 1, ClientToken: 'once' }));
    const again = await ebs().send(new StartSnapshotCommand({ VolumeSize: 1, ClientToken: 'once' }));
    expect(again.SnapshotId).toBe(first.SnapshotId);
    await expect(
      ebs().send(new StartSnapshotCommand({ VolumeSize: 2, ClientToken: 'once' })),
    ).rejects.toMatchObject({
      name: 'ConflictException',
      $metadata: { httpStatusCode: 409 },
    });
  });

  it('fails the snapshot, not completes it, for a wrong aggregate checksum, and DescribeSnapshots says error', async () => {
    const { SnapshotId } = await ebs().send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const id = SnapshotId as string;
    await putBlock(id, 0, randomBytes(BLOCK_SIZE));
    const answer = await ebs().send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: 1,
        Checksum: sha(Buffer.from('x')).toString('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    expect(answer.Status).toBe('pending');
    await drain();
    const described = await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
    expect(described.Snapshots?.[0]).toMatchObject({
      State: 'error',
      StateMessage: expect.stringContaining('LINEAR checksum'),
    });
    expect(await staged(id)).toBe(0);
    await expect(
      ebs().send(new CompleteSnapshotCommand({ SnapshotId: 'snap-nothing', ChangedBlocksCount: 0 })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('refuses a request signed with an unknown key or a wrong secret before looking at it', async () => {
    const stranger = key('eve', alice.caller);
    await expect(
      ebs({ ...stranger, accessKeyId: 'AKIAUNKNOWNKEYXXXXXX' }).send(
        new StartSnapshotCommand({ VolumeSize: 1 }),
      ),
    ).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    await expect(
      ebs({ ...alice, secretAccessKey: stranger.secretAccessKey }).send(
        new StartSnapshotCommand({ VolumeSize: 1 }),
      ),
    ).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
    expect((await region.snapshots.list(alice.caller, {}, { limit: 10 })).items).toEqual([]);
  });
});
