/**
 * The single table's key design, in one place. Items are keyed by their own id (so a shared
 * snapshot can be found by id whatever account asks) and listed per owner through gsi1.
 *
 * | item     | pk             | sk       | gsi1pk                    | gsi1sk          | gsi2pk                   | gsi2sk          |
 * |----------|----------------|----------|---------------------------|-----------------|--------------------------|-----------------|
 * | account  | ACCOUNT#id     | ACCOUNT  | ACCOUNTS                  | id              |                          |                 |
 * | api key  | KEY#id         | KEY      | ACCOUNT#acct#KEYS         | id              |                          |                 |
 * | volume   | VOLUME#id      | VOLUME   | ACCOUNT#acct#VOLUMES      | createdAt#id    |                          |                 |
 * | snapshot | SNAPSHOT#id    | SNAPSHOT | ACCOUNT#acct#SNAPSHOTS    | createdAt#id    | VOLUME#vol#SNAPSHOTS     | createdAt#id    |
 */
export const volumeKey = (volumeId: string) => ({ pk: `VOLUME#${volumeId}`, sk: 'VOLUME' });
export const volumeOwnerIndex = (accountId: string) => `ACCOUNT#${accountId}#VOLUMES`;
export const snapshotKey = (snapshotId: string) => ({ pk: `SNAPSHOT#${snapshotId}`, sk: 'SNAPSHOT' });
export const snapshotsOfVolumeIndex = (volumeId: string) => `VOLUME#${volumeId}#SNAPSHOTS`;
export const createdOrder = (createdAt: string, id: string) => `${createdAt}#${id}`;

/** The record's own fields out of a stored item (keys and index attributes left behind). */
export function pickFields<T>(item: Record<string, unknown>, fields: readonly string[]): T {
  return Object.fromEntries(fields.filter((f) => item[f] !== undefined).map((f) => [f, item[f]])) as T;
}
