import type { ScheduledEvent } from 'aws-lambda';
import { exportPorts } from '../../lib/aws/export-records.ts';
import { policyPorts } from '../../lib/aws/policy-records.ts';
import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import { verificationPorts } from '../../lib/aws/verification-records.ts';
import type { MaintenanceJob } from '../../lib/core/maintenance/maintenance.ts';
import { logger } from '../../lib/http/logger.ts';
import { servicesOver } from '../../lib/root.ts';
import { maintenanceJobs } from '../../lib/wiring/maintenance.ts';

/** GC, reaper and expiry over snapshots and exports; policies over their rules and copies. */
const service = servicesOver(...snapshotPorts, exportPorts, policyPorts, verificationPorts);

/**
 * The scheduled functions: each runs one maintenance job of its region on its rate (serverless.yml)
 * and logs what it did. Every job is idempotent and safe when two runs overlap, so a late or
 * repeated EventBridge invocation does no harm.
 */
function scheduled(job: MaintenanceJob) {
  return async (event: ScheduledEvent): Promise<unknown> => {
    const log = logger.child({ job, eventId: event.id });
    const report = await service(maintenanceJobs).run('schedule', job);
    log.info('scheduled job done', { report });
    return report;
  };
}

/** Snapshot policies that are due: snapshots, retention, copies. */
export const policies = scheduled('policies');
/** Stuck and expired work: failed with its reason, re-dispatched, or cleaned up. */
export const reaper = scheduled('reaper');
/** Exports past their expiry, recycle-bin entries past their retention. */
export const expiry = scheduled('expiry');
/** Mark-and-sweep of segments no live snapshot references. */
export const gc = scheduled('gc');
/** Verifications of a bounded sample of stored snapshots, least recently verified first. */
export const scrub = scheduled('scrub');
