/**
 * Open uploads for import (`POST /v1/uploads`), one slot each, per account and region: what bounds
 * how many an account holds open at once. A slot is taken when the upload is created and given back
 * when an import puts the file together; one never given back (the file never imported) frees
 * itself when the upload's URLs expire, so nothing leaks and no schedule has to count.
 */
export interface UploadSlots {
  /**
   * Takes a slot for upload `ref` until `untilMs`, unless `limit` slots are taken and not expired at
   * `nowMs`; whether it was taken. Racing takes never share a slot (conditional writes).
   */
  take(accountId: string, ref: string, limit: number, nowMs: number, untilMs: number): Promise<boolean>;
  /** Gives back the slot of `ref`; idempotent. */
  release(accountId: string, ref: string): Promise<void>;
  /** Slots taken and not expired at `nowMs`. */
  count(accountId: string, nowMs: number): Promise<number>;
}
