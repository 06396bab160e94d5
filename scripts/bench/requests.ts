// The bench's request counts: every S3 and DynamoDB request the local cloud's emulators answered,
// both regions, read from their in-memory counters (GET REQUEST_COUNTS_PATH on each region's S3 and
// DynamoDB endpoint: scripts/local-cloud/s3-emulator.ts, dynamodb-auth-proxy.ts) before and after
// an operation. Presigned requests arrive at the S3 emulator like any other, so they count too.
import { REQUEST_COUNTS_PATH } from '../local-cloud/aws-calls.ts';

/** Requests per operation (`PutObject`, `Query`, …), per service. */
export interface RequestCounts {
  s3: Record<string, number>;
  dynamodb: Record<string, number>;
}

/** The endpoints of one region of the local cloud whose counts are read. */
export interface CountedRegion {
  s3: string;
  dynamodb: string;
}

async function countsAt(endpoint: string): Promise<Record<string, number>> {
  const answer = await fetch(`${endpoint}${REQUEST_COUNTS_PATH}`);
  if (!answer.ok) throw new Error(`${endpoint}${REQUEST_COUNTS_PATH} answered ${answer.status}`);
  return (await answer.json()) as Record<string, number>;
}

function add(into: Record<string, number>, from: Record<string, number>, sign = 1): void {
  for (const [operation, n] of Object.entries(from)) into[operation] = (into[operation] ?? 0) + sign * n;
}

/** The counts so far, summed over the regions. */
export async function readRequestCounts(regions: readonly CountedRegion[]): Promise<RequestCounts> {
  const total: RequestCounts = { s3: {}, dynamodb: {} };
  for (const region of regions) {
    add(total.s3, await countsAt(region.s3));
    // The functions' requests only: `operator …` (the local cloud's identity replication, its
    // provisioning) and `refused …` are the local cloud's, not the service's (dynamodb-auth-proxy.ts).
    const dynamodb = Object.entries(await countsAt(region.dynamodb)).filter(([op]) => !op.includes(' '));
    add(total.dynamodb, Object.fromEntries(dynamodb));
  }
  return total;
}

/** What `after` counted beyond `before` (operations with no new request left out). */
export function requestsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  const diff = (a: Record<string, number>, b: Record<string, number>) => {
    const out: Record<string, number> = { ...b };
    add(out, a, -1);
    return Object.fromEntries(Object.entries(out).filter(([, n]) => n !== 0));
  };
  return { s3: diff(before.s3, after.s3), dynamodb: diff(before.dynamodb, after.dynamodb) };
}

/** Every request of one service, whatever its operation. */
export const totalOf = (counts: Record<string, number>): number =>
  Object.values(counts).reduce((a, b) => a + b, 0);

/** `counts` scaled to one GiB of an image of `bytes`. */
export function perGiB(counts: RequestCounts, bytes: number): RequestCounts {
  const scale = (c: Record<string, number>) =>
    Object.fromEntries(Object.entries(c).map(([op, n]) => [op, (n * 2 ** 30) / bytes]));
  return { s3: scale(counts.s3), dynamodb: scale(counts.dynamodb) };
}

/**
 * Counts the requests one operation makes: `counter.during(() => work())` answers the work's result
 * and what the emulators counted meanwhile. The bench runs one operation at a time and the local
 * cloud runs no schedules, so what was counted is the operation's.
 */
export class RequestCounter {
  readonly #regions: readonly CountedRegion[];

  constructor(regions: readonly CountedRegion[]) {
    this.#regions = regions;
  }

  read(): Promise<RequestCounts> {
    return readRequestCounts(this.#regions);
  }

  async during<T>(work: () => Promise<T>): Promise<{ result: T; requests: RequestCounts }> {
    const before = await this.read();
    const result = await work();
    return { result, requests: requestsBetween(before, await this.read()) };
  }
}
