/**
 * SigV4 authentication of the EBS direct API and EC2 Query requests, with the access keys
 * `volsnap admin key create --sigv4` issues (their secrets sealed in the identity table).
 */
import { createHash } from 'node:crypto';
import type { ApiKeyRecord } from '../../core/identity/accounts.ts';
import { callerOf, callerOfKey } from '../../core/identity/credentials.ts';
import type { Caller } from '../../core/identity/identity.ts';
import type { IdentityLookups } from '../../core/identity/replica-identity.ts';
import { keyIdOfAccessKey } from '../../core/identity/sigv4-keys.ts';
import type { SecretSealer } from '../../core/ports/secrets.ts';
import { type Clock, parseIsoTime } from '../../core/shared/clock.ts';
import { VolsnapError } from '../../core/shared/errors.ts';
import { logger } from '../logger.ts';
import { type SigV4Result, verifySigV4 } from '../sigv4.ts';
import type { AwsAuthenticator, AwsSignedRequest } from './signed-request.ts';

export interface SigV4AuthenticatorOptions {
  /** Where keys, users and accounts are read: this region's identity replica first. */
  identity: IdentityLookups;
  /** Opens the keys' sealed secrets (the deployment's key; caches what it can). */
  secrets: SecretSealer;
  clock: Clock;
}

const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const HEX_DIGEST = /^[0-9a-f]{64}$/;

/**
 * The SigV4 check of an AWS-protocol request, as AWS services answer it:
 * - no `Authorization` header (nor presigned query) → `aws.missingAuthentication`;
 * - a header without `Credential`, `SignedHeaders`, `Signature` or `x-amz-date`, another algorithm,
 *   an `x-amz-content-sha256` that is neither a hex digest nor `UNSIGNED-PAYLOAD` → `aws.incompleteSignature`;
 * - an access key id that is not a live SigV4 key (unknown, an API key, revoked, expired, its user
 *   or account gone) → `aws.unrecognizedClient`;
 * - a date more than 15 minutes from the server's clock, either way → `aws.requestExpired`;
 * - a credential scoped to another date, region or service, a signature that differs (compared in
 *   constant time), a hex `x-amz-content-sha256` that is not the body's SHA-256 → `aws.signatureInvalid`.
 *
 * The canonical request is built from the path API Gateway gives (HTTP APIs hand the path to the
 * function percent-decoded, the query string raw: see {@link signedTarget}). A body without
 * `x-amz-content-sha256` is signed by its own hash (botocore's rule for non-S3 services).
 * Reads the key store on every request, so a revoked key, a removed permission or a deleted user
 * applies at once: the key, its user and its account (one read of the three together once this
 * container has seen whose the key is; the first time, the key, then its user and account). No side
 * effects; safe to retry.
 */
export function sigV4Authenticator(options: SigV4AuthenticatorOptions): AwsAuthenticator {
  const owners = new KeyOwners();
  return async (request) => {
    const authorization = request.headers.authorization;
    const target = signedTarget(request.target);
    const accessKeyId =
      authorization !== undefined
        ? headerAccessKeyId(authorization, request.headers['x-amz-date'])
        : queryAccessKeyId(target);
    const { key, caller } = await keyAndCaller(options, owners, accessKeyId);
    const secret = await options.secrets.unseal(key.sealedSecret ?? '', key.keyId);
    const contentHash = request.headers['x-amz-content-sha256'];
    if (contentHash !== undefined && contentHash !== UNSIGNED_PAYLOAD && !HEX_DIGEST.test(contentHash)) {
      throw new VolsnapError(
        'aws.incompleteSignature',
        `x-amz-content-sha256 must be the body's hex SHA-256 or ${UNSIGNED_PAYLOAD}; '${contentHash.slice(0, 80)}' is neither.`,
      );
    }
    // An unsigned body (PutSnapshotBlock's: its signed x-amz-Checksum protects it) is not hashed here.
    const bodyHash =
      contentHash === UNSIGNED_PAYLOAD ? undefined : createHash('sha256').update(request.body).digest('hex');
    const result = verifySigV4(
      {
        method: request.method,
        target,
        headers: request.headers,
        ...(bodyHash === undefined ? {} : { payloadHash: bodyHash }),
      },
      {
        service: request.service,
        region: request.region,
        secretFor: (id) => (id === accessKeyId ? secret : undefined),
        nowMs: options.clock.now(),
      },
    );
    if (!result.ok) throw refusal(result, request, options.clock.now());
    if (HEX_DIGEST.test(result.payloadHash) && result.payloadHash !== bodyHash) {
      throw new VolsnapError(
        'aws.signatureInvalid',
        'The x-amz-content-sha256 header does not match the SHA-256 of the request body.',
      );
    }
    const made = caller ?? (await callerOfKey(options.identity, key, options.clock));
    if (!made) throw unrecognized();
    owners.learn(key);
    return made;
  };
}

/** Keys whose user and account were seen in this container, at most this many (the oldest go first). */
const MAX_KNOWN_OWNERS = 10_000;

/**
 * Whose each key is (its account and user never change), learnt from the keys this container
 * authenticated: with it, the key, its user and its account are read together in one request.
 * Only that mapping is kept; the key, user and account themselves are read on every request.
 */
class KeyOwners {
  readonly #owners = new Map<string, { accountId: string; userName: string }>();

  of(keyId: string): { accountId: string; userName: string } | undefined {
    return this.#owners.get(keyId);
  }

  learn(key: ApiKeyRecord): void {
    if (this.#owners.has(key.keyId)) return;
    if (this.#owners.size >= MAX_KNOWN_OWNERS)
      this.#owners.delete(this.#owners.keys().next().value as string);
    this.#owners.set(key.keyId, { accountId: key.accountId, userName: key.userName });
  }
}

/**
 * The live SigV4 key an access key id names, and, when its owner is known already (one read of key,
 * user and account together), the caller it acts as; otherwise the key alone (one read), the caller
 * made by {@link callerOfKey} once the signature is checked.
 */
async function keyAndCaller(
  options: SigV4AuthenticatorOptions,
  owners: KeyOwners,
  accessKeyId: string,
): Promise<{ key: ApiKeyRecord; caller?: Caller }> {
  const keyId = keyIdOfAccessKey(accessKeyId);
  const owner = keyId ? owners.of(keyId) : undefined;
  if (!keyId || !owner) return { key: await liveKey(options, accessKeyId) };
  const read = await options.identity.getKeyWithOwner(keyId, owner.accountId, owner.userName);
  const key = checkedKey(options, accessKeyId, read.key);
  // A key whose user is gone (or another's) makes no caller: refused, whatever its signature.
  const caller = callerOf(key, read.user, read.account, options.clock);
  if (!caller) throw unrecognized();
  return { key, caller };
}

/** The key an access key id names, if it is a SigV4 key that works now (revocation is checked again with the caller). */
async function liveKey(options: SigV4AuthenticatorOptions, accessKeyId: string): Promise<ApiKeyRecord> {
  const keyId = keyIdOfAccessKey(accessKeyId);
  return checkedKey(options, accessKeyId, keyId ? await options.identity.getApiKey(keyId) : undefined);
}

function checkedKey(
  options: SigV4AuthenticatorOptions,
  accessKeyId: string,
  key: ApiKeyRecord | undefined,
): ApiKeyRecord {
  if (key?.kind !== 'sigv4' || key.accessKeyId !== accessKeyId || !key.sealedSecret) throw unrecognized();
  // Checked here too (callerOfKey checks again), so a dead key is named so whatever its signature.
  if (
    key.revokedAt !== undefined ||
    (key.expiresAt !== undefined && parseIsoTime(key.expiresAt) <= options.clock.now())
  )
    throw unrecognized();
  return key;
}

function unrecognized(): VolsnapError {
  return new VolsnapError('aws.unrecognizedClient', 'The security token included in the request is invalid.');
}

function incomplete(message: string): VolsnapError {
  return new VolsnapError('aws.incompleteSignature', message);
}

/** The access key id of `Authorization: AWS4-HMAC-SHA256 Credential=AKID/…, SignedHeaders=…, Signature=…`. */
function headerAccessKeyId(authorization: string, amzDate: string | undefined): string {
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== 'AWS4-HMAC-SHA256') {
    throw incomplete(
      `Authorization header requires the AWS4-HMAC-SHA256 algorithm, not '${algorithm.slice(0, 40)}'.`,
    );
  }
  const components = new Map<string, string>();
  for (const part of authorization.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) components.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((name) => !components.get(name));
  if (missing.length > 0) {
    throw incomplete(`Authorization header requires '${missing.join("', '")}' parameter(s).`);
  }
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    throw incomplete(
      'Authorization header requires existence of a valid X-Amz-Date header (yyyyMMddTHHmmssZ).',
    );
  }
  return (components.get('Credential') ?? '').split('/')[0] ?? '';
}

/** A presigned request's access key id; no signature at all is `aws.missingAuthentication`. */
function queryAccessKeyId(target: string): string {
  const query = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
  const credential = query.get('X-Amz-Credential');
  if (!query.has('X-Amz-Algorithm') && !credential) {
    throw new VolsnapError(
      'aws.missingAuthentication',
      'Missing Authentication Token: sign the request with SigV4 (an access key from volsnap admin key create --sigv4).',
    );
  }
  if (!credential) throw incomplete('A presigned request needs X-Amz-Credential.');
  return credential.split('/')[0] ?? '';
}

/** What a refused verification answers, in the codes the AWS SDKs know (their clock-skew logic reads RequestExpired). */
function refusal(
  result: Extract<SigV4Result, { ok: false }>,
  request: AwsSignedRequest,
  nowMs: number,
): VolsnapError {
  switch (result.code) {
    case 'RequestTimeTooSkewed':
      return new VolsnapError(
        'aws.requestExpired',
        `Request has expired: its x-amz-date is more than 15 minutes from the server's time (${new Date(nowMs).toISOString()}).`,
      );
    case 'SignatureDoesNotMatch':
      return new VolsnapError(
        'aws.signatureInvalid',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      );
    case 'AuthorizationHeaderMalformed':
    case 'AuthorizationQueryParametersError':
      // What the pre-parse let through is the credential scope: another date, region or service.
      return new VolsnapError(
        'aws.signatureInvalid',
        `${result.message} This endpoint is service '${request.service}' in region '${request.region}'.`,
      );
    case 'InvalidAccessKeyId':
      return unrecognized();
    default:
      // An unsigned host, x-amz-date or x-amz-* header, a presigned URL past its expiry.
      return new VolsnapError('aws.signatureInvalid', result.message);
  }
}

/**
 * The request target to verify: API Gateway HTTP APIs (payload 2.0) give the function `rawPath`
 * percent-decoded (and cut at a decoded `?`), while `rawQueryString` stays as sent. The path is
 * re-encoded segment by segment (RFC 3986), which is what every SDK sent for EBS's paths (ids and
 * numbers); the query, where block and page tokens carry `+ / =` percent-encoded, is used as is.
 */
export function signedTarget(target: string): string {
  const mark = target.indexOf('?');
  const path = mark < 0 ? target : target.slice(0, mark);
  const query = mark < 0 ? '' : target.slice(mark);
  const encoded = path
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join('/');
  return `${encoded}${query}`;
}

let made: AwsAuthenticator | undefined;

/** The authenticator of every AWS-protocol route (lib/http/ebs/protocol.ts `awsHandler`), over the container's root. */
export const defaultAuthenticate: AwsAuthenticator = async (request) => {
  if (!made) {
    const [{ provide }, { identityPorts }, { secretsPorts }] = await Promise.all([
      import('../../root.ts'),
      import('../../aws/dynamodb.ts'),
      import('../../aws/secrets.ts'),
    ]);
    const root = provide(identityPorts, secretsPorts);
    const ports = root.region.ports;
    made = sigV4Authenticator({
      identity: ports.identityLookups ?? ports.identity,
      get secrets() {
        return ports.secrets;
      },
      clock: root.clock,
    });
  }
  try {
    return await made(request);
  } catch (error) {
    if (!(error instanceof VolsnapError)) logger.error('SigV4 check failed', { error: String(error) });
    throw error;
  }
};
