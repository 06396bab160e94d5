import { VolsnapError } from '../shared/errors.ts';

/** Per-region limits of an account. */
export interface QuotaLimits {
  /** Snapshots that may exist at once (any state but deleted). */
  maxSnapshots: number;
  /**
   * Bytes the account may store: what its snapshots added (compressed, after deduplication) plus its
   * exports' objects (their full size, reserved before they are written).
   */
  maxStoredBytes: number;
  /** Snapshots being written at once (`queued` or `pending`), copies and imports aside. */
  maxPendingSnapshots: number;
  /** Of those, on any one volume. */
  maxPendingSnapshotsPerVolume: number;
  /** Copies into this region being written at once. */
  maxCopiesInFlight: number;
  /** Imports being written at once. */
  maxImportsInFlight: number;
  /** Exports being written at once. */
  maxExportsInFlight: number;
  /** Uploads for import (`POST /v1/uploads`) open at once: until imported, or their URLs expire. */
  maxOpenUploads: number;
  /** Requests per second the account may make to this region's API, sustained… */
  requestsPerSecond: number;
  /** …and at once (the window is `requestBurst / requestsPerSecond` seconds). */
  requestBurst: number;
}

/** The limits on work in flight, with the usage counter each one bounds. */
export const IN_FLIGHT_LIMITS = {
  pendingSnapshots: 'maxPendingSnapshots',
  copiesInFlight: 'maxCopiesInFlight',
  importsInFlight: 'maxImportsInFlight',
  exportsInFlight: 'maxExportsInFlight',
  openUploads: 'maxOpenUploads',
} as const satisfies Record<string, keyof QuotaLimits>;
export type InFlightCounter = keyof typeof IN_FLIGHT_LIMITS;

/** What this region counts against an account's quota. */
export interface Usage {
  snapshots: number;
  /** Snapshots' added bytes plus exports' reserved bytes. */
  storedBytes: number;
  /** Of `storedBytes`, what exports hold. */
  exportBytes: number;
  pendingSnapshots: number;
  copiesInFlight: number;
  importsInFlight: number;
  exportsInFlight: number;
  openUploads: number;
}

/** An account that has used nothing yet. */
export const NO_USAGE: Usage = {
  snapshots: 0,
  storedBytes: 0,
  exportBytes: 0,
  pendingSnapshots: 0,
  copiesInFlight: 0,
  importsInFlight: 0,
  exportsInFlight: 0,
  openUploads: 0,
};

/**
 * What an account may do unless the operator says otherwise: sized like a small provider's defaults
 * (EBS: 100 concurrent snapshots per account, 20 concurrent copies per destination region).
 */
export const DEFAULT_QUOTA: QuotaLimits = {
  maxSnapshots: 10_000,
  maxStoredBytes: 50 * 2 ** 40,
  maxPendingSnapshots: 100,
  maxPendingSnapshotsPerVolume: 20,
  maxCopiesInFlight: 20,
  maxImportsInFlight: 20,
  maxExportsInFlight: 20,
  maxOpenUploads: 20,
  requestsPerSecond: 50,
  requestBurst: 100,
};

/** The limits that apply to an account: the override where it has one, else the default. */
export function limitsOf(
  account: { quota?: Partial<QuotaLimits> } | undefined,
  defaults: QuotaLimits = DEFAULT_QUOTA,
): QuotaLimits {
  return { ...defaults, ...(account?.quota ?? {}) };
}

export interface Measure {
  used: number;
  limit: number;
}

/** This region's usage of an account beside its limits, as `account usage` shows it. */
export interface AccountUsage extends Record<InFlightCounter, Measure> {
  accountId: string;
  region: string;
  snapshots: Measure;
  /** `exports`: the part of `used` that exports hold. */
  storedBytes: Measure & { exports: number };
  /** Per volume: no account-wide count. */
  pendingSnapshotsPerVolume: { limit: number };
  /** Requests in the current window of `perSeconds` seconds, at most `limit` (the burst). */
  requestRate: Measure & { perSeconds: number; requestsPerSecond: number };
}

/** The 4xx of a create that would pass a quota: names the limit and the usage. */
export function quotaExceeded(
  region: string,
  limits: Pick<QuotaLimits, 'maxSnapshots' | 'maxStoredBytes'>,
  usage: Pick<Usage, 'snapshots' | 'storedBytes'>,
): VolsnapError {
  const bySnapshots = usage.snapshots >= limits.maxSnapshots;
  const message = bySnapshots
    ? `The account has ${usage.snapshots} snapshots in ${region}, its quota is ${limits.maxSnapshots}: delete snapshots or ask the operator for a higher quota.`
    : `The account's snapshots and exports hold ${usage.storedBytes} bytes in ${region}, its quota is ${limits.maxStoredBytes}: delete snapshots or exports, or ask the operator for a higher quota.`;
  return new VolsnapError('quota.exceeded', message, {
    details: {
      region,
      quota: bySnapshots ? 'snapshots' : 'storedBytes',
      limit: bySnapshots ? limits.maxSnapshots : limits.maxStoredBytes,
      used: bySnapshots ? usage.snapshots : usage.storedBytes,
    },
  });
}

/** The 4xx of an export whose object would take the account past its stored bytes. */
export function exportQuotaExceeded(region: string, limit: number, used: number, size: number): VolsnapError {
  return new VolsnapError(
    'quota.exceeded',
    `The export would write ${size} bytes; the account's snapshots and exports hold ${used} bytes in ${region} and its quota is ${limit}: delete exports or snapshots, export in a smaller format (vsnap stores only the data), or ask the operator for a higher quota.`,
    { details: { region, quota: 'storedBytes', limit, used, size } },
  );
}

/** The 429 of work that would pass a limit on work in flight: names it, the count, and what to do. */
export function inFlightExceeded(
  region: string,
  counter: InFlightCounter | 'pendingSnapshotsPerVolume',
  used: number,
  limit: number,
): VolsnapError {
  const what = {
    pendingSnapshots: 'snapshots being written',
    pendingSnapshotsPerVolume: 'snapshots being written on this volume',
    copiesInFlight: 'copies in flight',
    importsInFlight: 'imports in flight',
    exportsInFlight: 'exports in flight',
    openUploads: 'open uploads',
  }[counter];
  const quota =
    counter === 'pendingSnapshotsPerVolume' ? 'maxPendingSnapshotsPerVolume' : IN_FLIGHT_LIMITS[counter];
  const finish =
    counter === 'openUploads'
      ? 'import or let expire the uploads you have'
      : 'wait for some to finish (or delete those you do not need)';
  return new VolsnapError(
    'quota.inFlight',
    `The account has ${used} ${what} in ${region}, its limit (${quota}) is ${limit}: ${finish}, then retry; or ask the operator for a higher limit.`,
    { details: { region, quota, limit, used } },
  );
}

/** The length of a rate window: `requestBurst` requests may be made in it. */
export function requestWindowMs(limits: Pick<QuotaLimits, 'requestBurst' | 'requestsPerSecond'>): number {
  return Math.max(1, Math.ceil((1000 * limits.requestBurst) / Math.max(1, limits.requestsPerSecond)));
}
