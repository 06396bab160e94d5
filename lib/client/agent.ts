import type { ApiClient, Snapshot } from './api-client.ts';
import { ApiError } from './api-client.ts';
import { createSnapshotFromFile } from './snapshot-create.ts';

/** What the agent did with one queued snapshot. */
export interface AgentEvent {
  snapshotId: string;
  volumeId: string;
  outcome: 'completed' | 'failed' | 'taken-elsewhere';
  /** For a failure: what went wrong (also reported to the service as the snapshot's reason). */
  reason?: string;
}

export interface AgentOptions {
  /** Volume id → the file or block device holding its bytes on this host. */
  volumes: Map<string, string>;
  /** Segment uploads in flight per snapshot. */
  concurrency?: number;
  onEvent?: (event: AgentEvent) => void;
}

/**
 * One pass of `volsnap agent`: takes every queued snapshot of the given volumes (oldest first, so
 * each is written against the one before), writes it from the volume's file or device like
 * `snapshot create --file` does, and completes it. A snapshot it cannot write is failed with the
 * reason, so its owner sees why instead of a snapshot that expires. One another agent took first
 * is left to it. Safe to run on several hosts at once: taking a snapshot is a conditional write.
 */
export async function runAgentPass(api: ApiClient, options: AgentOptions): Promise<AgentEvent[]> {
  const events: AgentEvent[] = [];
  const report = (event: AgentEvent) => {
    events.push(event);
    options.onEvent?.(event);
  };
  for (const [volumeId, file] of options.volumes) {
    const queued: Snapshot[] = [];
    for await (const snapshot of api.allSnapshots({ volumeId, state: 'queued' })) queued.push(snapshot);
    for (const snapshot of queued.reverse()) {
      let started: Snapshot;
      try {
        started = await api.startSnapshot(snapshot.snapshotId);
      } catch (error) {
        if (error instanceof ApiError && error.code === 'snapshot.invalidState') {
          report({ snapshotId: snapshot.snapshotId, volumeId, outcome: 'taken-elsewhere' });
          continue;
        }
        throw error;
      }
      try {
        await createSnapshotFromFile(api, {
          volumeId,
          file,
          snapshot: started,
          ...(options.concurrency ? { concurrency: options.concurrency } : {}),
        });
        report({ snapshotId: snapshot.snapshotId, volumeId, outcome: 'completed' });
      } catch (error) {
        const reason = `${file}: ${error instanceof Error ? error.message : String(error)}`;
        await api.failSnapshot(snapshot.snapshotId, reason).catch(() => undefined);
        report({ snapshotId: snapshot.snapshotId, volumeId, outcome: 'failed', reason });
      }
    }
  }
  return events;
}
