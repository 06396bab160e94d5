// The bench's cost table (scripts/bench/cost.ts): requests per GiB and bytes into dollars.
import { describe, expect, it } from 'vitest';
import {
  costTable,
  operationCost,
  type Prices,
  scaledRequests,
  US_EAST_1_PRICES,
} from '../../../scripts/bench/cost.ts';

const round = (n: number) => Math.round(n * 1e6) / 1e6;

describe('operationCost', () => {
  it('prices S3 writes and reads at their classes, deletes free, over the GiB given', () => {
    const cost = operationCost(
      { s3: { PutObject: 60, GetObject: 100, DeleteObject: 50, HeadObject: 10 }, dynamodb: {} },
      1024,
      US_EAST_1_PRICES,
    );
    // 60 × 1024 PUTs at $0.005/1000 + 110 × 1024 GET/HEAD at $0.0004/1000; the deletes cost nothing.
    expect(round(cost.s3Requests)).toBe(round((60 * 1024 * 0.005 + 110 * 1024 * 0.0004) / 1000));
    expect(cost.dynamodbRequests).toBe(0);
    expect(cost.transfer).toBe(0);
  });

  it('prices DynamoDB writes and reads as request units (transactions twice), control-plane calls free', () => {
    const prices: Prices = { ...US_EAST_1_PRICES, dynamodbWritePerMillion: 1, dynamodbReadPerMillion: 0.5 };
    const cost = operationCost(
      { s3: {}, dynamodb: { PutItem: 3, TransactWriteItems: 2, Query: 4, DescribeTable: 100 } },
      1e6,
      prices,
    );
    expect(round(cost.dynamodbRequests)).toBe(round((3 + 2 * 2) * 1 + 4 * 0.5));
  });

  it('adds the inter-region transfer of the bytes moved', () => {
    const cost = operationCost({ s3: {}, dynamodb: {} }, 1024, US_EAST_1_PRICES, 768);
    expect(round(cost.transfer)).toBe(round(768 * 0.02));
    expect(round(cost.total)).toBe(round(768 * 0.02));
  });
});

describe('scaledRequests', () => {
  it('splits requests into a part made once and a part per GiB moved, from a full and an incremental run', () => {
    // Measured per GiB of image: 10 requests once, 64 per GiB of data; the incremental changed 2%.
    const full = { s3: { PutObject: 10 + 64 }, dynamodb: { Query: 5 } };
    const incremental = { s3: { PutObject: 10 + 0.02 * 64 }, dynamodb: { Query: 5 } };
    const tib = scaledRequests(full, incremental, 0.02, 1024, 1);
    expect(round((tib.s3.PutObject ?? 0) * 1024)).toBe(round(10 + 1024 * 64));
    expect(round((tib.dynamodb.Query ?? 0) * 1024)).toBe(5);
    const onePercent = scaledRequests(full, incremental, 0.02, 1024, 0.01);
    expect(round((onePercent.s3.PutObject ?? 0) * 1024)).toBe(round(10 + 0.01 * 1024 * 64));
  });
});

describe('costTable', () => {
  it('turns the measured shapes into the README rows for 1 TiB', () => {
    const change = 0.01 / 0.75;
    const rows = costTable(
      {
        storedPerImageByte: 0.75,
        fullSnapshot: { s3: { PutObject: 10 + 64 }, dynamodb: {} },
        incrementalSnapshot: { s3: { PutObject: 10 + change * 64 }, dynamodb: {} },
        incrementalStoredPerImageByte: 0.01,
        fullCopy: { s3: {}, dynamodb: {} },
        incrementalCopy: { s3: {}, dynamodb: {} },
        fullCopyMovedPerImageByte: 0.75,
        incrementalCopyMovedPerImageByte: 0.01,
      },
      US_EAST_1_PRICES,
    );
    const row = (what: string) => rows.find((r) => r.what.startsWith(what))?.usd ?? Number.NaN;
    expect(round(row('a full snapshot of 1 TiB stored'))).toBe(round(768 * 0.023));
    expect(round(row('a full snapshot of 1 TiB (requests)'))).toBe(round(((10 + 1024 * 64) * 0.005) / 1000));
    expect(round(row('a 1% incremental snapshot of 1 TiB (requests)'))).toBe(
      round(((10 + change * 1024 * 64) * 0.005) / 1000),
    );
    expect(round(row('a full cross-region copy'))).toBe(round(768 * 0.02));
    expect(round(row('a 1% incremental cross-region copy'))).toBe(round(10.24 * 0.02));
    expect(rows.some((r) => r.what.startsWith('a restore'))).toBe(false);
  });
});
