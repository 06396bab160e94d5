// What the bench's measured requests and stored bytes cost at AWS's published prices (us-east-1):
// S3 Standard storage and requests, DynamoDB on-demand request units, inter-region data transfer.
// Pure: the bench hands it requests per GiB of image (scripts/bench/requests.ts) and bytes; it
// answers dollars. Lambda, API Gateway and SQS are not priced here (they bill per invocation and
// duration, which the local cloud does not measure as AWS would).
import type { RequestCounts } from './requests.ts';

/** USD prices, each with the page it was read from. */
export interface Prices {
  region: string;
  /** S3 Standard, per GB-month (AWS bills GB as 2^30 bytes), first 50 TB. */
  s3StoragePerGBMonth: number;
  /** PUT, COPY, POST, LIST requests, per 1,000. */
  s3WritePer1000: number;
  /** GET, SELECT and all other requests, per 1,000 (DELETE and abort are free). */
  s3ReadPer1000: number;
  /** DynamoDB on-demand, per million write request units (1 KB each; transactional: 2). */
  dynamodbWritePerMillion: number;
  /** DynamoDB on-demand, per million read request units (4 KB strongly consistent; transactional: 2). */
  dynamodbReadPerMillion: number;
  /** DynamoDB Standard table storage, per GB-month past the free 25 GB. */
  dynamodbStoragePerGBMonth: number;
  /** Data transfer from us-east-1 to another AWS region, per GB (what a cross-region copy moves). */
  interRegionTransferPerGB: number;
  sources: string[];
}

/** us-east-1 list prices as published on 2026-12-01 (the pages in `sources`). */
export const US_EAST_1_PRICES: Prices = {
  region: 'us-east-1',
  s3StoragePerGBMonth: 0.023,
  s3WritePer1000: 0.005,
  s3ReadPer1000: 0.0004,
  dynamodbWritePerMillion: 0.625,
  dynamodbReadPerMillion: 0.125,
  dynamodbStoragePerGBMonth: 0.25,
  interRegionTransferPerGB: 0.02,
  sources: [
    'https://aws.amazon.com/s3/pricing/ (the prices themselves; the stored copy of the page renders its cells from templates, so the figures are from the next three)',
    'https://www.usage.ai/blogs/aws/storage-cost/s3/cost-calculator/ (S3 Standard storage and requests, US East (N. Virginia), June 2026)',
    'https://c3x.dev/blog/s3-request-fees-explained (S3 Standard: $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004 per 1,000 GET/HEAD)',
    'https://repost.aws/articles/ARjzluyMS8RbeOOK4MGXRG6Q/cost-effective-methods-for-accessing-s3-buckets-cross-region (us-east-1 to another region: $0.02 per GB, January 2026)',
    'https://aws.amazon.com/dynamodb/pricing/ (storage: $0.25 per GB-month past the free 25 GB)',
    'https://airbyte.com/data-engineering-resources/dynamodb-pricing (on-demand, US East: $0.625 per million WRU, $0.125 per million RRU)',
  ],
};

/** S3 operations billed as PUT, COPY, POST or LIST requests. */
const S3_WRITE_CLASS = new Set([
  'PutObject',
  'CopyObject',
  'CreateMultipartUpload',
  'UploadPart',
  'UploadPartCopy',
  'CompleteMultipartUpload',
  'ListObjects',
  'ListObjectsV2',
  'ListParts',
  'ListMultipartUploads',
  'ListBuckets',
  'CreateBucket',
  'POST',
]);
/** Free: DELETE requests (and multi-object delete), aborting an upload. */
const S3_FREE = new Set(['DeleteObject', 'DeleteObjects', 'AbortMultipartUpload', 'DeleteBucket']);
/** DynamoDB data-plane operations: writes and reads, with the request units each request takes at least. */
const DYNAMODB_WRITES: Record<string, number> = {
  PutItem: 1,
  UpdateItem: 1,
  DeleteItem: 1,
  BatchWriteItem: 1,
  TransactWriteItems: 2,
};
const DYNAMODB_READS: Record<string, number> = {
  GetItem: 1,
  Query: 1,
  Scan: 1,
  BatchGetItem: 1,
  TransactGetItems: 2,
};

/** One operation's bill, USD. */
export interface OperationCost {
  s3Requests: number;
  /** At least this: every request counted as the fewest units it can take (items ≤ 1 KB / 4 KB, one item per batch). */
  dynamodbRequests: number;
  transfer: number;
  total: number;
}

/**
 * What an operation costs on `gib` GiB of volume, given the requests it made per GiB of image
 * (scaled linearly: the requests made once per operation, such as the API's, are counted `gib`
 * times, so for small changes this is an upper bound on them) and the GiB it moved between
 * regions. Control-plane DynamoDB calls (DescribeTable) are free.
 */
export function operationCost(
  requestsPerGiB: RequestCounts,
  gib: number,
  prices: Prices,
  transferredGiB = 0,
): OperationCost {
  let s3Write = 0;
  let s3Read = 0;
  for (const [operation, n] of Object.entries(requestsPerGiB.s3)) {
    if (S3_FREE.has(operation)) continue;
    if (S3_WRITE_CLASS.has(operation)) s3Write += n;
    else s3Read += n;
  }
  let wru = 0;
  let rru = 0;
  for (const [operation, n] of Object.entries(requestsPerGiB.dynamodb)) {
    wru += n * (DYNAMODB_WRITES[operation] ?? 0);
    rru += n * (DYNAMODB_READS[operation] ?? 0);
  }
  const s3Requests = (gib * (s3Write * prices.s3WritePer1000 + s3Read * prices.s3ReadPer1000)) / 1000;
  const dynamodbRequests =
    (gib * (wru * prices.dynamodbWritePerMillion + rru * prices.dynamodbReadPerMillion)) / 1e6;
  const transfer = transferredGiB * prices.interRegionTransferPerGB;
  return { s3Requests, dynamodbRequests, transfer, total: s3Requests + dynamodbRequests + transfer };
}

/** A month of S3 Standard storage for `storedGiB`. */
export function storageCostPerMonth(storedGiB: number, prices: Prices): number {
  return storedGiB * prices.s3StoragePerGBMonth;
}

/** One row of the README's cost table. */
export interface CostRow {
  what: string;
  usd: number;
  how: string;
}

/**
 * Requests of an operation on a volume of `volumeGiB` of which the fraction `changed` is new, from
 * the same operation measured in full and incrementally on one image (per GiB of it; `measuredChange`
 * the fraction the incremental changed): each operation's requests are a part it makes once
 * (the API's, the manifest's) and a part that grows with the data it moves, so
 * `rate = (full − incremental) ÷ (1 − measuredChange)` per GiB, `once = incremental − measuredChange × rate`,
 * and the answer is `once + changed × volumeGiB × rate` (per operation kind, never below 0).
 * Expressed per GiB of `volumeGiB`, as {@link operationCost} takes it.
 */
export function scaledRequests(
  full: RequestCounts,
  incremental: RequestCounts,
  measuredChange: number,
  volumeGiB: number,
  changed: number,
): RequestCounts {
  const one = (f: Record<string, number>, i: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const op of new Set([...Object.keys(f), ...Object.keys(i)])) {
      const rate = Math.max(0, ((f[op] ?? 0) - (i[op] ?? 0)) / (1 - measuredChange));
      const once = Math.max(0, (i[op] ?? 0) - measuredChange * rate);
      out[op] = (once + changed * volumeGiB * rate) / volumeGiB;
    }
    return out;
  };
  return { s3: one(full.s3, incremental.s3), dynamodb: one(full.dynamodb, incremental.dynamodb) };
}

/** What the bench measured that the cost table turns into dollars (per GiB of the bench's image). */
export interface MeasuredForCost {
  /** Bytes stored per byte of image by a full snapshot (the image's zero blocks are not stored). */
  storedPerImageByte: number;
  fullSnapshot: RequestCounts;
  incrementalSnapshot: RequestCounts;
  /** Bytes the incremental stored per byte of image (≈ the changed fraction). */
  incrementalStoredPerImageByte: number;
  fullCopy: RequestCounts;
  incrementalCopy: RequestCounts;
  /** Bytes each copy moved between regions per byte of image. */
  fullCopyMovedPerImageByte: number;
  incrementalCopyMovedPerImageByte: number;
  restore?: RequestCounts;
}

const usd = (n: number) => (n >= 1 ? n.toFixed(2) : n >= 0.01 ? n.toFixed(3) : n.toPrecision(2));

/** The cost table for a 1 TiB volume shaped like the bench's image (a quarter of it zero). */
export function costTable(measured: MeasuredForCost, prices: Prices): CostRow[] {
  const TiB = 1024;
  const stored = measured.storedPerImageByte * TiB;
  const rows: CostRow[] = [];
  const storage = storageCostPerMonth(stored, prices);
  rows.push({
    what: 'a full snapshot of 1 TiB stored for a month',
    usd: storage,
    how: `${stored.toFixed(0)} GiB stored (zero blocks are not) × $${prices.s3StoragePerGBMonth}/GB-month`,
  });
  rows.push({
    what: 'a 1% incremental snapshot of 1 TiB stored for a month',
    usd: storageCostPerMonth(measured.incrementalStoredPerImageByte * TiB, prices),
    how: `${(measured.incrementalStoredPerImageByte * TiB).toFixed(1)} GiB of new blocks; the rest is shared with its parent`,
  });
  const priced = (what: string, requests: RequestCounts, movedPerByte = 0) => {
    const cost = operationCost(requests, TiB, prices, movedPerByte * TiB);
    const parts = [`S3 requests $${usd(cost.s3Requests)}`, `DynamoDB ≥ $${usd(cost.dynamodbRequests)}`];
    if (movedPerByte > 0)
      parts.push(
        `transfer $${usd(cost.transfer)} (${(movedPerByte * TiB).toFixed(1)} GiB × $${prices.interRegionTransferPerGB}/GB)`,
      );
    rows.push({ what, usd: cost.total, how: parts.join(' + ') });
  };
  // The fraction of the data the incrementals changed (the bench's 1%, of the non-zero blocks).
  const change = measured.incrementalStoredPerImageByte / measured.storedPerImageByte;
  const snapshots = (changed: number) =>
    scaledRequests(measured.fullSnapshot, measured.incrementalSnapshot, change, TiB, changed);
  const copies = (changed: number) =>
    scaledRequests(measured.fullCopy, measured.incrementalCopy, change, TiB, changed);
  priced('a full snapshot of 1 TiB (requests)', snapshots(1));
  priced('a 1% incremental snapshot of 1 TiB (requests)', snapshots(change));
  priced('a full cross-region copy of 1 TiB', copies(1), measured.fullCopyMovedPerImageByte);
  priced(
    'a 1% incremental cross-region copy of 1 TiB',
    copies(change),
    measured.incrementalCopyMovedPerImageByte,
  );
  if (measured.restore) priced('a restore of 1 TiB (requests)', measured.restore);
  return rows;
}

/** The cost table as Markdown. */
export function costMarkdown(rows: CostRow[], prices: Prices): string {
  return [
    `| cost at ${prices.region} list prices | USD | from |`,
    '|---|---:|---|',
    ...rows.map((r) => `| ${r.what} | ${usd(r.usd)} | ${r.how} |`),
  ].join('\n');
}
