import type { Page } from '../shared/pagination.ts';

/** One change made through the API: who, what, when, with which key. */
export interface AuditEntry {
  eventId: string;
  at: string;
  accountId: string;
  userName: string;
  keyId: string;
  /** The route's action, e.g. `snapshot.share`. */
  action: string;
  /** What it acted on: the ids in the request's path and of what it created. */
  target: Record<string, string>;
  requestId: string;
  status: number;
}

/**
 * Where the audit trail of an account is kept (the region's table, where the change was made).
 * Recording is append-only and idempotent per event id; entries expire after a retention period.
 */
export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  /** The account's entries, newest first. */
  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<AuditEntry>>;
}
