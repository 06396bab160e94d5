// StartSnapshot, PutSnapshotBlock and CompleteSnapshot of the EBS direct API.

import { snapshotPorts } from '../../../lib/aws/snapshots.ts';
import type { DirectWrites, StartSnapshotInput } from '../../../lib/core/direct/writes.ts';
import { VolsnapError } from '../../../lib/core/shared/errors.ts';
import type { Snapshot } from '../../../lib/core/snapshots/snapshots.ts';
import {
  type AwsHandlerOptions,
  type AwsRouteInput,
  type AwsRouteSchema,
  awsHandler,
  signedHeadersOf,
} from '../../../lib/http/ebs/protocol.ts';
import { awsStatusOf, awsTags, epochSeconds, volumeSizeGiB } from '../../../lib/http/ebs/snapshot-view.ts';
import type { HttpLambda } from '../../../lib/http/stack.ts';
import { servicesOver } from '../../../lib/root.ts';
import { directWrites, prefetchSnapshot } from '../../../lib/wiring/direct.ts';

/** The services of this function's routes, over the ports they use. */
const service = servicesOver(...snapshotPorts);

/** StartSnapshot's answer (the EBS model's StartSnapshotResponse). */
export function startSnapshotView(snapshot: Snapshot) {
  return {
    SnapshotId: snapshot.snapshotId,
    OwnerId: snapshot.accountId,
    Status: awsStatusOf(snapshot),
    StartTime: epochSeconds(snapshot.createdAt),
    VolumeSize: volumeSizeGiB(snapshot),
    BlockSize: snapshot.blockSize,
    Tags: awsTags(snapshot.tags),
    Description: snapshot.description,
    ...(snapshot.parentSnapshotId ? { ParentSnapshotId: snapshot.parentSnapshotId } : {}),
    SseType: 'none',
  };
}

function invalid(message: string): VolsnapError {
  return new VolsnapError('request.invalid', message, { details: { reason: 'INVALID_PARAMETER_VALUE' } });
}

/** StartSnapshot's JSON body, its members checked for type. */
export function parseStartSnapshot(body: Buffer): StartSnapshotInput {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.length > 0 ? body.toString('utf8') : '{}');
  } catch {
    throw invalid('The StartSnapshot body is not JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid('The StartSnapshot body is not a JSON object.');
  const b = parsed as Record<string, unknown>;
  const text = (name: string): string | undefined => {
    const value = b[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw invalid(`${name} is a string.`);
    return value;
  };
  const integer = (name: string): number | undefined => {
    const value = b[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(`${name} is an integer.`);
    return value;
  };
  const volumeSizeGiB = integer('VolumeSize');
  if (volumeSizeGiB === undefined) throw invalid('VolumeSize (GiB) is required.');
  const tags: Record<string, string> = {};
  if (b.Tags !== undefined && b.Tags !== null) {
    if (!Array.isArray(b.Tags)) throw invalid('Tags is a list of {Key, Value}.');
    for (const tag of b.Tags as unknown[]) {
      const { Key, Value } = (tag ?? {}) as Record<string, unknown>;
      if (typeof Key !== 'string' || (Value !== undefined && typeof Value !== 'string'))
        throw invalid('Each tag is {Key, Value}, both strings.');
      tags[Key] = (Value as string | undefined) ?? '';
    }
  }
  if (b.Encrypted !== undefined && b.Encrypted !== null && typeof b.Encrypted !== 'boolean')
    throw invalid('Encrypted is a boolean.');
  return {
    volumeSizeGiB,
    parentSnapshotId: text('ParentSnapshotId'),
    description: text('Description'),
    tags,
    clientToken: text('ClientToken'),
    timeoutMinutes: integer('Timeout'),
    encrypted: b.Encrypted === true,
    kmsKeyArn: text('KmsKeyArn'),
  };
}

/** A header that must be a whole number, or undefined when absent. */
function integerHeader(input: AwsRouteInput, name: string): number | undefined {
  const value = input.headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value.trim()))
    throw invalid(`The ${name} header must be a whole number; it was '${value.slice(0, 20)}'.`);
  return Number(value.trim());
}

/** The routes over a writes service (the deployment's, or a test's). */
export function writeRoutesOf(
  writes: () => DirectWrites,
  options: AwsHandlerOptions = {},
  prefetch?: AwsRouteSchema['prefetch'],
): Record<string, HttpLambda> {
  return {
    /** `POST /ebs/snapshots` (StartSnapshot) → 201. */
    'POST /ebs/snapshots': awsHandler(
      { service: 'ebs', audit: 'ebs.startSnapshot' },
      async ({ caller, body }) => ({
        status: 201,
        json: startSnapshotView(await writes().start(caller, parseStartSnapshot(body))),
      }),
      options,
    ),

    /**
     * `PUT /ebs/snapshots/{snapshotId}/blocks/{blockIndex}` (PutSnapshotBlock) → 201 with the
     * checksum. The body is unsigned (`UNSIGNED-PAYLOAD`): the signed `x-amz-Checksum` protects it.
     */
    'PUT /ebs/snapshots/{snapshotId}/blocks/{blockIndex}': awsHandler(
      { service: 'ebs', requestClass: 'blocks', ...(prefetch ? { prefetch } : {}) },
      async (input) => {
        if (!signedHeadersOf(input.headers).includes('x-amz-checksum')) {
          throw new VolsnapError(
            'aws.incompleteSignature',
            'PutSnapshotBlock must sign the x-amz-Checksum header: it is what protects the unsigned body.',
          );
        }
        const index = input.path.blockIndex ?? '';
        if (!/^\d{1,10}$/.test(index))
          throw invalid(`BlockIndex must be a whole number; it was '${index.slice(0, 20)}'.`);
        const checksum = input.headers['x-amz-checksum'];
        if (!checksum) throw invalid('The x-amz-Checksum header (base64 SHA-256 of the block) is required.');
        const { checksum: stored } = await writes().putBlock(
          input.caller,
          input.path.snapshotId ?? '',
          Number(index),
          input.body,
          {
            dataLength: integerHeader(input, 'x-amz-Data-Length') ?? -1,
            checksum,
            checksumAlgorithm: input.headers['x-amz-checksum-algorithm'] ?? '',
          },
        );
        return {
          status: 201,
          headers: { 'x-amz-Checksum': stored, 'x-amz-Checksum-Algorithm': 'SHA256' },
        };
      },
      options,
    ),

    /** `POST /ebs/snapshots/completion/{snapshotId}` (CompleteSnapshot) → 202 `{Status}`. */
    'POST /ebs/snapshots/completion/{snapshotId}': awsHandler(
      { service: 'ebs', audit: 'ebs.completeSnapshot' },
      async (input) => {
        const changedBlocksCount = integerHeader(input, 'x-amz-ChangedBlocksCount');
        if (changedBlocksCount === undefined)
          throw invalid('The x-amz-ChangedBlocksCount header is required.');
        const status = await writes().complete(input.caller, input.path.snapshotId ?? '', {
          changedBlocksCount,
          checksum: input.headers['x-amz-checksum'],
          checksumAlgorithm: input.headers['x-amz-checksum-algorithm'],
          aggregationMethod: input.headers['x-amz-checksum-aggregation-method'],
        });
        return { status: 202, json: { Status: awsStatusOf({ state: status }) } };
      },
      options,
    ),
  };
}

/** `POST /ebs/snapshots`, `PUT /ebs/snapshots/{snapshotId}/blocks/{blockIndex}`, `POST /ebs/snapshots/completion/{snapshotId}`. */
export const writeRoutes: Record<string, HttpLambda> = writeRoutesOf(
  () => service(directWrites),
  {},
  (path) => service(prefetchSnapshot)(path),
);
