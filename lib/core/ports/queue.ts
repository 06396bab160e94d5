/** Work for the workers. The queue is only a doorbell: a lost or repeated message does no harm. */
export type WorkMessage =
  /** Snapshot an image-backed volume (split into parts if the image is large). */
  | { kind: 'snapshot.fromImage'; snapshotId: string }
  /** Write one part of such a snapshot. */
  | { kind: 'snapshot.fromImagePart'; snapshotId: string; part: number }
  /** Copy one part of a snapshot from its source (the part's blocks, checkpointed when done). */
  | { kind: 'snapshot.copyPart'; snapshotId: string; part: number }
  /** Import one part of a snapshot from its URL. */
  | { kind: 'snapshot.importPart'; snapshotId: string; part: number }
  /** Verify one part of a client's upload before its snapshot completes. */
  | { kind: 'snapshot.verifyPart'; snapshotId: string; part: number }
  /** Read and hash one segment a client reported stored, while the rest of its upload goes on. */
  | { kind: 'snapshot.checkSegment'; snapshotId: string; segmentId: string }
  /** Pack one part of the blocks staged through the EBS direct API into segments (CompleteSnapshot). */
  | { kind: 'snapshot.directPart'; snapshotId: string; part: number }
  /** Write one multipart part of an export. */
  | { kind: 'export.part'; exportId: string; part: number }
  /** Re-read one part of a stored snapshot's segments (`snapshot verify`, the scrub). */
  | { kind: 'verification.part'; verificationId: string; part: number };

/** Where work is announced (SQS on AWS and in the local cloud, memory in unit tests). */
export interface WorkQueue {
  send(message: WorkMessage): Promise<void>;
}

export function parseWorkMessage(body: string): WorkMessage | undefined {
  try {
    const m = JSON.parse(body) as Record<string, unknown>;
    if (m.kind === 'export.part' && typeof m.exportId === 'string' && Number.isInteger(m.part))
      return { kind: m.kind, exportId: m.exportId, part: m.part as number };
    if (m.kind === 'verification.part' && typeof m.verificationId === 'string' && Number.isInteger(m.part))
      return { kind: m.kind, verificationId: m.verificationId, part: m.part as number };
    if (typeof m.snapshotId !== 'string') return undefined;
    if (m.kind === 'snapshot.fromImage') return { kind: m.kind, snapshotId: m.snapshotId };
    if (m.kind === 'snapshot.checkSegment' && typeof m.segmentId === 'string')
      return { kind: m.kind, snapshotId: m.snapshotId, segmentId: m.segmentId };
    if (
      (m.kind === 'snapshot.fromImagePart' ||
        m.kind === 'snapshot.copyPart' ||
        m.kind === 'snapshot.importPart' ||
        m.kind === 'snapshot.verifyPart' ||
        m.kind === 'snapshot.directPart') &&
      Number.isInteger(m.part)
    )
      return { kind: m.kind, snapshotId: m.snapshotId, part: m.part as number };
  } catch {
    // not JSON: not ours
  }
  return undefined;
}
