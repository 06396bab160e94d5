import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Page } from '../../core/shared/pagination.ts';
import type {
  Verification,
  VerificationRepository,
  VerificationState,
} from '../../core/tasks/verification-records.ts';
import {
  all,
  equals,
  exists,
  extendLeaseUpdate,
  notExists,
  oneOf,
  putItem,
  renewLeaseUpdate,
  updateItem,
} from './expressions.ts';
import { pickFields } from './keys.ts';
import { getItem, scanPage } from './query.ts';
import { applyUpdate, updateReturning } from './writes.ts';

const FIELDS = [
  'verificationId',
  'snapshotId',
  'accountId',
  'region',
  'state',
  'progress',
  'stateReason',
  'origin',
  'parts',
  'segmentsPerPart',
  'totalBytes',
  'createdAt',
  'completedAt',
  'deadline',
  'leaseUntil',
  'leaseParts',
  'dispatches',
  'result',
] as const;

/** Verification records are dropped by the table's TTL this long after they start (the snapshot keeps the outcome). */
const KEEP_SECONDS = 30 * 24 * 3600;

const verificationKey = (verificationId: string) => ({ pk: `VERIFY#${verificationId}`, sk: 'VERIFY' });

function toVerification(item: Record<string, unknown>): Verification {
  const done = Object.keys((item.partMap ?? {}) as Record<string, unknown>)
    .map(Number)
    .sort((a, b) => a - b);
  return { ...pickFields<Verification>(item, FIELDS), ...(done.length > 0 ? { partsDone: done } : {}) };
}

/** Verification records in the region table: `VERIFY#id`, parts done as a map (one SET per part). */
export class DynamoVerificationRepository implements VerificationRepository {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(record: Verification): Promise<void> {
    const { partsDone: _done, ...fields } = record;
    await this.documents.send(
      new PutCommand(
        putItem(
          this.table,
          {
            ...verificationKey(record.verificationId),
            type: 'verification',
            ...fields,
            partMap: {},
            expiresAt: Math.floor(Date.parse(record.createdAt) / 1000) + KEEP_SECONDS,
          },
          notExists('pk'),
        ),
      ),
    );
  }

  async get(verificationId: string): Promise<Verification | undefined> {
    const item = await getItem(this.documents, this.table, verificationKey(verificationId));
    return item ? toVerification(item) : undefined;
  }

  async completePart(verificationId: string, part: number): Promise<number | undefined> {
    const updated = await updateReturning(
      this.documents,
      updateItem(
        this.table,
        verificationKey(verificationId),
        { setEntries: { partMap: { [String(part)]: true } } },
        equals('state', 'pending'),
      ),
    );
    return updated ? Object.keys((updated.partMap ?? {}) as Record<string, unknown>).length : undefined;
  }

  renewLease(
    verificationId: string,
    expected: string | undefined,
    lease: { leaseUntil: string; leaseParts: number; dispatches: number },
  ): Promise<boolean> {
    return applyUpdate(
      this.documents,
      renewLeaseUpdate(this.table, verificationKey(verificationId), expected, lease),
    );
  }

  async extendLease(verificationId: string, leaseUntil: string): Promise<void> {
    await applyUpdate(
      this.documents,
      extendLeaseUpdate(this.table, verificationKey(verificationId), leaseUntil),
    );
  }

  async transition(
    verificationId: string,
    from: readonly VerificationState[],
    to: VerificationState,
    changes: Partial<Verification> = {},
  ): Promise<Verification | undefined> {
    // A change to undefined removes the field (as in memory).
    const set = Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v === undefined ? null : v]));
    const moved = await updateReturning(
      this.documents,
      updateItem(
        this.table,
        verificationKey(verificationId),
        { set: { ...set, state: to } },
        all(exists('pk'), oneOf('state', from)),
      ),
    );
    return moved ? toVerification(moved) : undefined;
  }

  listAll(page: { limit: number; nextToken?: string }): Promise<Page<Verification>> {
    return scanPage(this.documents, this.table, 'verification', page, toVerification);
  }
}
