/**
 * The one error type of volsnap. Every failure a caller can act on carries a namespaced code
 * (`snapshot.notFound`, `request.invalid`) whose HTTP status is fixed in {@link ERROR_STATUS}; the
 * HTTP layer maps it once. Adapters translate SDK exceptions into it and keep the original as `cause`.
 */

/** Every code volsnap answers with, and the HTTP status it maps to. Add a code here before using it. */
export const ERROR_STATUS = {
  'request.malformed': 400,
  'request.invalid': 400,
  'request.unsupportedMediaType': 415,
  'route.notFound': 404,
  'route.methodNotAllowed': 405,
  'auth.unauthorized': 401,
  'auth.forbidden': 403,
  'region.unknown': 400,
  'account.notFound': 404,
  /** Account names are unique in the deployment. */
  'account.nameTaken': 409,
  'user.notFound': 404,
  'user.exists': 409,
  'key.notFound': 404,
  'volume.notFound': 404,
  'volume.invalidSize': 400,
  'volume.hasSnapshots': 409,
  'snapshot.notFound': 404,
  'snapshot.invalidState': 409,
  /** Completion asked before the manifest was uploaded: upload it, then complete again. */
  'snapshot.manifestMissing': 409,
  /** The manifest names segments that are not (yet) stored: upload them, then complete again. */
  'snapshot.segmentsMissing': 409,
  /**
   * The uploaded manifest is not sound (does not decode, does not describe this volume, or names
   * blocks its segments or its parent do not hold as it says): the snapshot is in `error`.
   */
  'snapshot.manifestInvalid': 400,
  /** Another account asked for segment bytes that are not exactly blocks of the snapshot shared with it. */
  'snapshot.rangeNotShared': 400,
  /** The snapshot was issued all the upload URLs its volume's size allows. */
  'snapshot.uploadLimit': 409,
  /** The owner's account blocks public sharing (`volsnap account settings --block-public-sharing`). */
  'snapshot.publicSharingBlocked': 409,
  /** The import URL points where the deployment may not fetch (a private, loopback or link-local address). */
  'import.sourceForbidden': 400,
  /** The import URL answered an error, or serves no byte ranges. */
  'import.sourceUnreadable': 400,
  /** The image uses a feature volsnap does not import (a qcow2 backing file, encryption, …); the message says which. */
  'import.unsupported': 400,
  'export.notFound': 404,
  'export.invalidState': 409,
  'verification.notFound': 404,
  'policy.notFound': 404,
  'instance.notFound': 404,
  /** `--require-stopped` and the instance is marked running. */
  'instance.running': 409,
  /** The volume is attached to another instance: detach it there first. */
  'instance.volumeAttached': 409,
  /** The instance changed between reading and writing it: retry. */
  'instance.changed': 409,
  'image.notFound': 404,
  'image.invalidState': 409,
  'idempotency.conflict': 409,
  /** Creating would pass the account's quota in this region; details carry the limit and usage. */
  'quota.exceeded': 409,
  /** Too much of one kind of work in flight (pending snapshots, copies, exports…): wait, then retry. */
  'quota.inFlight': 429,
  /** The account passed its request rate in this region; `Retry-After` says when to try again. */
  'request.throttled': 429,
  /** Bytes that do not match their recorded SHA-256 or structure: a corrupt or tampered object. */
  'data.corrupt': 422,
  /** The table or object store failed or could not be reached; `Retry-After` says when to try again. */
  'storage.unavailable': 503,
  /** The table is throttling requests (past the SDK's own retries); `Retry-After` says when to try again. */
  'storage.throttled': 503,
  /** The object store lacks an operation (s3rver cannot list multipart uploads). */
  'storage.unsupported': 501,
  /**
   * Refusals of AWS-signed requests (the EBS direct API's SigV4), each answered with the code the
   * AWS SDKs know (lib/http/ebs/protocol.ts) so their clock-skew and retry logic works.
   */
  'aws.signatureInvalid': 403,
  /** The request's date is more than 15 minutes from the server's time. */
  'aws.requestExpired': 400,
  /** The access key id is unknown, revoked or expired. */
  'aws.unrecognizedClient': 403,
  /** The Authorization header lacks a part (credential, signed headers, signature, date). */
  'aws.incompleteSignature': 400,
  /** No SigV4 Authorization at all. */
  'aws.missingAuthentication': 403,
  'aws.accessDenied': 403,
  throttled: 429,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorOptions {
  /** Extra facts a client can act on (e.g. the snapshots holding a volume). Shown to clients for 4xx. */
  details?: Record<string, unknown>;
  /** The underlying exception, kept for logs; never shown to clients. */
  cause?: unknown;
}

export class VolsnapError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VolsnapError';
    this.code = code;
    this.details = options.details;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** Whether clients may see the message: every 4xx; 5xx get a generic body and a logged cause. */
  get exposed(): boolean {
    return this.status < 500;
  }
}

export function isVolsnapError(error: unknown): error is VolsnapError {
  return error instanceof VolsnapError;
}

/** Narrows an unknown thrown value to something with a message, for logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** Node's socket error codes that mean a backend did not answer at all (refused, reset, timed out). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
]);
