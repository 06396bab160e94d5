import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StoredSegment } from '../../core/snapshots/snapshots.ts';
import { batchWriteAll } from './batch.ts';
import { absentOrAtMost, all, exists, updateItem } from './expressions.ts';
import { snapshotKey } from './keys.ts';
import { queryAll } from './query.ts';
import { manifestUploadSk, SESSION_SK, segmentSk } from './snapshot-rows.ts';
import { applyUpdate } from './writes.ts';

/**
 * The records of a client's upload session, in the snapshot's partition: one item per segment and
 * manifest upload issued (what the client may write), and a count of each issued (what it may still
 * ask for). They only matter while the snapshot is pending.
 */
export class DynamoUploadSessions {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async addSegments(snapshotId: string, segmentIds: readonly string[]): Promise<void> {
    const pk = snapshotKey(snapshotId).pk;
    await batchWriteAll(
      this.documents,
      this.table,
      segmentIds.map((id) => ({
        PutRequest: { Item: { pk, sk: segmentSk(id), type: 'sessionSegment', segmentId: id } },
      })),
    );
  }

  /** Counts the uploads against the limits and records them; false (nothing recorded) past a limit. */
  async issue(
    snapshotId: string,
    uploads: { segmentIds: readonly string[]; manifestUploadIds: readonly string[] },
    limits: { segments: number; manifests: number },
  ): Promise<boolean> {
    const pk = snapshotKey(snapshotId).pk;
    const segments = uploads.segmentIds.length;
    const manifests = uploads.manifestUploadIds.length;
    if (segments > limits.segments || manifests > limits.manifests) return false;
    // The count first, conditionally: a crash before the items are written only over-counts.
    const counted = await applyUpdate(
      this.documents,
      updateItem(
        this.table,
        { pk, sk: SESSION_SK },
        { set: { type: 'uploadSession' }, add: { segmentsIssued: segments, manifestsIssued: manifests } },
        all(
          absentOrAtMost('segmentsIssued', limits.segments - segments),
          absentOrAtMost('manifestsIssued', limits.manifests - manifests),
        ),
      ),
    );
    if (!counted) return false;
    await batchWriteAll(this.documents, this.table, [
      ...uploads.segmentIds.map((id) => ({
        PutRequest: { Item: { pk, sk: segmentSk(id), type: 'sessionSegment', segmentId: id } },
      })),
      ...uploads.manifestUploadIds.map((id) => ({
        PutRequest: {
          Item: { pk, sk: manifestUploadSk(id), type: 'sessionManifestUpload', manifestUploadId: id },
        },
      })),
    ]);
    return true;
  }

  /** Adds what was stored to each issued segment's item (a segment not issued: its condition fails, ignored). */
  async recordStored(snapshotId: string, stored: readonly StoredSegment[]): Promise<void> {
    const pk = snapshotKey(snapshotId).pk;
    await Promise.all(
      stored.map((segment) =>
        applyUpdate(
          this.documents,
          updateItem(
            this.table,
            { pk, sk: segmentSk(segment.segmentId) },
            { set: { sha256: segment.sha256, size: segment.size } },
            exists('segmentId'),
          ),
        ),
      ),
    );
  }

  /** The segments with what was stored at them, at most `limit` (pages of the partition's segment items). */
  async stored(snapshotId: string, limit: number): Promise<StoredSegment[]> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      FilterExpression: 'attribute_exists(sha256)',
      ExpressionAttributeValues: { ':pk': snapshotKey(snapshotId).pk, ':prefix': 'SEGMENT#' },
      ProjectionExpression: 'segmentId, sha256, #size',
      ExpressionAttributeNames: { '#size': 'size' },
      ConsistentRead: true,
    });
    return items.slice(0, limit).map((item) => ({
      segmentId: String(item.segmentId),
      sha256: String(item.sha256),
      size: Number(item.size),
    }));
  }

  manifestUploads(snapshotId: string): Promise<Set<string>> {
    return this.#ids(snapshotId, 'MANIFESTUPLOAD#', 'manifestUploadId');
  }

  segments(snapshotId: string): Promise<Set<string>> {
    return this.#ids(snapshotId, 'SEGMENT#', 'segmentId');
  }

  /** Deletes every record of the session (idempotent). */
  async remove(snapshotId: string): Promise<void> {
    const pk = snapshotKey(snapshotId).pk;
    const segments = await this.segments(snapshotId);
    const manifests = await this.manifestUploads(snapshotId);
    await batchWriteAll(this.documents, this.table, [
      ...[...segments].map((id) => ({ DeleteRequest: { Key: { pk, sk: segmentSk(id) } } })),
      ...[...manifests].map((id) => ({ DeleteRequest: { Key: { pk, sk: manifestUploadSk(id) } } })),
      { DeleteRequest: { Key: { pk, sk: SESSION_SK } } },
    ]);
  }

  async #ids(snapshotId: string, prefix: string, attribute: string): Promise<Set<string>> {
    const items = await queryAll(this.documents, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': snapshotKey(snapshotId).pk, ':prefix': prefix },
      ProjectionExpression: attribute,
      ConsistentRead: true,
    });
    return new Set(items.map((item) => String(item[attribute])));
  }
}
