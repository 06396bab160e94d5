import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { exportPorts } from '../../lib/aws/export-records.ts';
import { remotePorts } from '../../lib/aws/node.ts';
import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { verificationPorts } from '../../lib/aws/verification-records.ts';
import { parseWorkMessage, type WorkMessage } from '../../lib/core/ports/queue.ts';
import { describeError } from '../../lib/core/shared/errors.ts';
import { logger } from '../../lib/http/logger.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotCopier } from '../../lib/wiring/copies.ts';
import { directPacker } from '../../lib/wiring/direct.ts';
import { exportService } from '../../lib/wiring/exports.ts';
import { imageSnapshotter } from '../../lib/wiring/image-snapshots.ts';
import { snapshotImporter } from '../../lib/wiring/imports.ts';
import { snapshotService } from '../../lib/wiring/snapshots.ts';
import { verificationService } from '../../lib/wiring/verifications.ts';

/** The writers of snapshots and exports whose parts the queue carries. */
const service = servicesOver(...snapshotPorts, exportPorts, verificationPorts, remotePorts);

/**
 * The work queue's consumer. Each message names work whose state is in the table; a message that
 * fails for a transient reason is reported back and redelivered (then dead-lettered), one that
 * failed for good has already put its snapshot into `error`.
 */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    const log = logger.child({
      messageId: record.messageId,
      receiveCount: record.attributes.ApproximateReceiveCount,
    });
    const message = parseWorkMessage(record.body);
    if (!message) {
      log.warn('dropped a message that is not volsnap work');
      continue;
    }
    const subject =
      message.kind === 'export.part'
        ? { exportId: message.exportId }
        : message.kind === 'verification.part'
          ? { verificationId: message.verificationId }
          : { snapshotId: message.snapshotId };
    try {
      const outcome = await run(message);
      log.info('work done', { kind: message.kind, ...subject, outcome });
    } catch (error) {
      log.error('work failed; it will be retried', {
        kind: message.kind,
        ...subject,
        error: describeError(error),
      });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};

/** Does the work a message names, with the service of its kind. */
function run(message: WorkMessage): Promise<string> {
  switch (message.kind) {
    case 'export.part':
      return service(exportService).runPart(message.exportId, message.part);
    case 'verification.part':
      return service(verificationService).runPart(message.verificationId, message.part);
    case 'snapshot.importPart':
      return service(snapshotImporter).runPart(message.snapshotId, message.part);
    case 'snapshot.copyPart':
      return service(snapshotCopier).runPart(message.snapshotId, message.part);
    case 'snapshot.fromImagePart':
      return service(imageSnapshotter).runPart(message.snapshotId, message.part);
    case 'snapshot.verifyPart':
      return service(snapshotService).verifyPart(message.snapshotId, message.part);
    case 'snapshot.checkSegment':
      return service(snapshotService).checkSegment(message.snapshotId, message.segmentId);
    case 'snapshot.directPart':
      return service(directPacker).runPart(message.snapshotId, message.part);
    case 'snapshot.fromImage':
      return service(imageSnapshotter).run(message.snapshotId);
  }
}
