/**
 * The EBS direct API's reads as AWS-protocol routes: ListSnapshotBlocks, GetSnapshotBlock and
 * ListChangedBlocks (reference/ebs-direct-api.md §1.4–1.6), over {@link DirectReads}. Thin: parse
 * the query and path as the SDKs send them, answer the JSON members and headers the SDKs read.
 */
import type { DirectReads, ListingPage, PageRequest } from '../../core/direct/reads.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import type { HttpLambda } from '../stack.ts';
import { type AwsHandlerOptions, type AwsRouteInput, type AwsRouteSchema, awsHandler } from './protocol.ts';

const GiB = 2 ** 30;

/** The route keys of serverless.yml's `ebs` function that these routes serve. */
export const READ_ROUTE_KEYS = {
  listSnapshotBlocks: 'GET /ebs/snapshots/{snapshotId}/blocks',
  getSnapshotBlock: 'GET /ebs/snapshots/{snapshotId}/blocks/{blockIndex}',
  listChangedBlocks: 'GET /ebs/snapshots/{secondSnapshotId}/changedblocks',
} as const;

/**
 * The three read routes over `reads` (made on first request), keyed by their route keys; the block
 * routes start `prefetch` (the snapshot's record) alongside the authentication.
 */
export function readRoutesOver(
  reads: () => DirectReads,
  options: AwsHandlerOptions = {},
  prefetch?: AwsRouteSchema['prefetch'],
): Record<string, HttpLambda> {
  const ebs = { service: 'ebs' } as const;
  const withPrefetch = prefetch ? { prefetch } : {};
  return {
    [READ_ROUTE_KEYS.listSnapshotBlocks]: awsHandler(
      { ...ebs, ...withPrefetch },
      async ({ caller, path, query }) => {
        const page = await reads().listBlocks(caller, required(path, 'snapshotId'), pageOf(query));
        return {
          json: {
            Blocks: page.blocks.map((b) => ({ BlockIndex: b.blockIndex, BlockToken: b.blockToken })),
            ...listingMembers(page),
          },
        };
      },
      options,
    ),
    [READ_ROUTE_KEYS.getSnapshotBlock]: awsHandler(
      { ...ebs, requestClass: 'blocks', ...withPrefetch },
      async ({ caller, path, query }) => {
        const token = query.blockToken;
        if (!token)
          throw invalid('The query must name the block token: blockToken=… from ListSnapshotBlocks.');
        const index = wholeNumber(required(path, 'blockIndex'), 'BlockIndex');
        const block = await reads().getBlock(caller, required(path, 'snapshotId'), index, token);
        return {
          bytes: block.data,
          headers: {
            'x-amz-Data-Length': String(block.data.byteLength),
            'x-amz-Checksum': block.hash.toString('base64'),
            'x-amz-Checksum-Algorithm': 'SHA256',
          },
        };
      },
      options,
    ),
    [READ_ROUTE_KEYS.listChangedBlocks]: awsHandler(
      ebs,
      async ({ caller, path, query }) => {
        const page = await reads().listChanged(
          caller,
          required(path, 'secondSnapshotId'),
          query.firstSnapshotId || undefined,
          pageOf(query),
        );
        return {
          json: {
            ChangedBlocks: page.changedBlocks.map((c) => ({
              BlockIndex: c.blockIndex,
              ...(c.firstBlockToken ? { FirstBlockToken: c.firstBlockToken } : {}),
              ...(c.secondBlockToken ? { SecondBlockToken: c.secondBlockToken } : {}),
            })),
            ...listingMembers(page),
          },
        };
      },
      options,
    ),
  };
}

/** What every page answers besides its blocks: epoch seconds, GiB, and NextToken while more follow. */
function listingMembers(page: ListingPage) {
  return {
    ExpiryTime: page.expiresAt,
    VolumeSize: Math.ceil(page.volumeSize / GiB),
    BlockSize: page.blockSize,
    ...(page.nextToken ? { NextToken: page.nextToken } : {}),
  };
}

function pageOf(query: AwsRouteInput['query']): PageRequest {
  return {
    ...(query.maxResults !== undefined ? { maxResults: wholeNumber(query.maxResults, 'MaxResults') } : {}),
    ...(query.startingBlockIndex !== undefined
      ? { startingBlockIndex: wholeNumber(query.startingBlockIndex, 'StartingBlockIndex') }
      : {}),
    ...(query.pageToken ? { nextToken: query.pageToken } : {}),
  };
}

function required(path: AwsRouteInput['path'], name: string): string {
  const value = path[name];
  if (!value) throw invalid(`The path names no ${name}.`);
  return value;
}

function wholeNumber(text: string, name: string): number {
  const value = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw invalid(`${name} must be a whole number ≥ 0, not '${text.slice(0, 20)}'.`);
  return value;
}

function invalid(message: string): VolsnapError {
  return new VolsnapError('request.invalid', message);
}
