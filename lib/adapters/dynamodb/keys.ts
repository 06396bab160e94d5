/**
 * The single table's key design, in one place. Items are keyed by their own id (so a shared
 * snapshot can be found by id whatever account asks) and listed per owner through gsi1.
 *
 * | item     | pk             | sk       | gsi1pk                    | gsi1sk          | gsi2pk                   | gsi2sk          |
 * |----------|----------------|----------|---------------------------|-----------------|--------------------------|-----------------|
 * | account  | ACCOUNT#id     | ACCOUNT  | ACCOUNTS                  | createdAt#id    |                          |                 |
 * | name     | ACCOUNTNAME#n  | ACCOUNTNAME |                        |                 |                          |                 |
 * | user     | ACCOUNT#id     | USER#name |                          |                 |                          |                 |
 * | api key  | KEY#id         | KEY      | ACCOUNT#acct#KEYS         | createdAt#id    |                          |                 |
 * | usage    | USAGE#acct     | USAGE    |                           |                 |                          |                 |
 * | upload   | UPLOADS#acct   | SLOT#n   |                           |                 |                          |                 |
 * | rate     | RATE#acct      | W#start  |                           |                 |                          |                 |
 * | share    | SNAPSHOT#id    | SHARE#acct | ACCOUNT#acct#SHARED     | createdAt#id    |                          |                 |
 * | public   | SNAPSHOT#id    | SHARE#*  | PUBLIC#SNAPSHOTS          | createdAt#id    |                          |                 |
 * | audit    | AUDIT#acct     | at#event |                           |                 |                          |                 |
 * | volume   | VOLUME#id      | VOLUME   | ACCOUNT#acct#VOLUMES      | createdAt#id    |                          |                 |
 * | snapshot | SNAPSHOT#id    | SNAPSHOT | ACCOUNT#acct#SNAPSHOTS    | createdAt#id    | VOLUME#vol#SNAPSHOTS     | createdAt#id    |
 * | policy   | POLICY#id      | POLICY   | ACCOUNT#acct#POLICIES     | createdAt#id    | POLICIES#ENABLED (*)     | nextRunAt#id    |
 * | instance | INSTANCE#id    | INSTANCE | ACCOUNT#acct#INSTANCES    | createdAt#id    |                          |                 |
 * | attached | ATTACHMENT#vol | ATTACHMENT |                         |                 |                          |                 |
 * | image    | IMAGE#id       | IMAGE    | ACCOUNT#acct#IMAGES       | createdAt#id    |                          |                 |
 * | img share| IMAGE#id       | SHARE#acct | ACCOUNT#acct#SHAREDIMAGES | createdAt#id  |                          |                 |
 * | img ref  | IMAGEREF#snap  | IMAGE#id |                           |                 |                          |                 |
 *
 * (*) only while the policy is enabled (gsi2sk is always kept): a sparse index of the policies to run.
 *
 * gsi3 is sparse too: a snapshot is in it (gsi3pk `VOLUME#vol#COMPLETED`, gsi3sk createdAt#id) only
 * while it is completed, so a volume's newest completed snapshot is one read (keys only); a pending
 * snapshot with a lease is in it under `LEASE#SNAPSHOT` (gsi3sk leaseUntil#id): the reaper's lapsed work.
 * gsi4 is sparse (keys only): a snapshot in any state but `error` under `MAINTAIN#SNAPSHOT#state`
 * (gsi4sk dueAt#id), every export under `MAINTAIN#EXPORT` (gsi4sk expiresAt#id): what maintenance
 * reads (maintenance-index.ts). `MIGRATION#maintenance-index` marks a table whose older items are in it.
 * Upload slots and rate windows expire through the table's TTL (`expiresAt`).
 */
export const accountKey = (accountId: string) => ({ pk: `ACCOUNT#${accountId}`, sk: 'ACCOUNT' });
export const accountNameKey = (name: string) => ({ pk: `ACCOUNTNAME#${name}`, sk: 'ACCOUNTNAME' });
export const userKey = (accountId: string, userName: string) => ({
  pk: `ACCOUNT#${accountId}`,
  sk: `USER#${userName}`,
});
export const apiKeyKey = (keyId: string) => ({ pk: `KEY#${keyId}`, sk: 'KEY' });
export const usageKey = (accountId: string) => ({ pk: `USAGE#${accountId}`, sk: 'USAGE' });
/** Who a snapshot is shared with; `*` is everyone (public). */
export const shareKey = (snapshotId: string, grantee: string) => ({
  pk: `SNAPSHOT#${snapshotId}`,
  sk: `SHARE#${grantee}`,
});
export const sharedWithIndex = (grantee: string) =>
  grantee === PUBLIC ? 'PUBLIC#SNAPSHOTS' : `ACCOUNT#${grantee}#SHARED`;
export const PUBLIC = '*';
export const volumeKey = (volumeId: string) => ({ pk: `VOLUME#${volumeId}`, sk: 'VOLUME' });
export const volumeOwnerIndex = (accountId: string) => `ACCOUNT#${accountId}#VOLUMES`;
export const snapshotKey = (snapshotId: string) => ({ pk: `SNAPSHOT#${snapshotId}`, sk: 'SNAPSHOT' });
export const snapshotsOfVolumeIndex = (volumeId: string) => `VOLUME#${volumeId}#SNAPSHOTS`;
export const completedOfVolumeIndex = (volumeId: string) => `VOLUME#${volumeId}#COMPLETED`;
export const uploadSlotKey = (accountId: string, slot: number) => ({
  pk: `UPLOADS#${accountId}`,
  sk: `SLOT#${slot}`,
});
export const rateWindowKey = (accountId: string, windowStartMs: number) => ({
  pk: `RATE#${accountId}`,
  sk: `W#${windowStartMs}`,
});
export const policyKey = (policyId: string) => ({ pk: `POLICY#${policyId}`, sk: 'POLICY' });
export const policyOwnerIndex = (accountId: string) => `ACCOUNT#${accountId}#POLICIES`;
export const instanceKey = (instanceId: string) => ({ pk: `INSTANCE#${instanceId}`, sk: 'INSTANCE' });
export const instanceOwnerIndex = (accountId: string) => `ACCOUNT#${accountId}#INSTANCES`;
/** Which instance a volume is attached to: one item per volume, so a volume attaches to one instance at a time. */
export const attachmentKey = (volumeId: string) => ({ pk: `ATTACHMENT#${volumeId}`, sk: 'ATTACHMENT' });
export const imageKey = (imageId: string) => ({ pk: `IMAGE#${imageId}`, sk: 'IMAGE' });
export const imageOwnerIndex = (accountId: string) => `ACCOUNT#${accountId}#IMAGES`;
export const imageShareKey = (imageId: string, grantee: string) => ({
  pk: `IMAGE#${imageId}`,
  sk: `SHARE#${grantee}`,
});
export const imagesSharedWithIndex = (grantee: string) => `ACCOUNT#${grantee}#SHAREDIMAGES`;
/** Which images hold a snapshot: one item per (snapshot, image), queried by the snapshot. */
export const imageRefKey = (snapshotId: string, imageId: string) => ({
  pk: `IMAGEREF#${snapshotId}`,
  sk: `IMAGE#${imageId}`,
});
/** The sparse gsi2 partition of enabled policies, ordered by next run: what the scheduler reads. */
export const ENABLED_POLICIES = 'POLICIES#ENABLED';
export const policyRunOrder = (nextRunAt: string, policyId: string) => `${nextRunAt}#${policyId}`;
export const createdOrder = (createdAt: string, id: string) => `${createdAt}#${id}`;

/** The record's own fields out of a stored item (keys and index attributes left behind). */
export function pickFields<T>(item: Record<string, unknown>, fields: readonly string[]): T {
  return Object.fromEntries(fields.filter((f) => item[f] !== undefined).map((f) => [f, item[f]])) as T;
}
