/**
 * SigV4 authentication of the EBS direct API and EC2 Query requests.
 *
 * Skeleton: SigV4 access keys are not issued yet, so every request is refused as an unknown key.
 * The `ebs-keys` work replaces this body (verifySigV4 of lib/http/sigv4.ts over the sealed secrets).
 */
import { VolsnapError } from '../../core/shared/errors.ts';
import type { AwsAuthenticator } from './signed-request.ts';

/** The authenticator of every AWS-protocol route (lib/http/ebs/protocol.ts `awsHandler`). */
export const defaultAuthenticate: AwsAuthenticator = async () => {
  throw new VolsnapError(
    'aws.unrecognizedClient',
    'The security token included in the request is invalid: this deployment issues no SigV4 access keys yet.',
  );
};
