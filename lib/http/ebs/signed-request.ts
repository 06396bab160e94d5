/** What a SigV4 check of an AWS-protocol request sees, and who does it. */
import type { Caller } from '../../core/identity/identity.ts';

/** The signing names of the AWS services this stack serves. */
export type AwsService = 'ebs' | 'ec2';

/** A request as received, for its SigV4 check. */
export interface AwsSignedRequest {
  /** Upper case. */
  method: string;
  /** The raw path and query exactly as received (`/ebs/snapshots/snap-1/blocks?pageToken=a%2Bb`). */
  target: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string | undefined>>;
  body: Buffer;
  service: AwsService;
  /** The region this function serves: a credential scoped to another one is refused. */
  region: string;
}

/**
 * Resolves the caller of a SigV4-signed request, or throws an `aws.*` VolsnapError
 * (`aws.signatureInvalid`, `aws.requestExpired`, `aws.unrecognizedClient`…). Reads the key store;
 * no side effects; safe to retry.
 */
export type AwsAuthenticator = (request: AwsSignedRequest) => Promise<Caller>;
