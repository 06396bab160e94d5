import { KMSClient } from '@aws-sdk/client-kms';
import { keyFileSealer } from '../adapters/secrets/key-file.ts';
import { KmsSecretSealer } from '../adapters/secrets/kms.ts';
import { VolsnapError } from '../core/shared/errors.ts';
import type { PortSet } from '../root.ts';

/**
 * The sealer of SigV4 secrets: KMS envelope encryption with the deployment's key (in the identity
 * region, so every region opens every seal; one client per container), or the local cloud's key
 * file. The account function seals (key creation), the ebs and ec2 functions unseal.
 */
export const secretsPorts: PortSet = {
  secrets: (context) => {
    const sealing = context.config.sealing;
    if (!sealing) {
      throw new VolsnapError(
        'internal',
        'The deployment is misconfigured: neither VOLSNAP_SEALING_KMS_KEY nor VOLSNAP_SEALING_KEY_FILE is set.',
      );
    }
    if ('keyFile' in sealing) return context.shared('sealer:file', () => keyFileSealer(sealing.keyFile));
    return context.shared(
      'sealer:kms',
      () =>
        new KmsSecretSealer({
          kms: new KMSClient({ region: kmsRegionOf(sealing.kmsKeyId, context.config.identityRegion) }),
          keyId: sealing.kmsKeyId,
          now: () => context.clock.now(),
        }),
    );
  },
};

/** The region of a KMS key ARN (`arn:aws:kms:REGION:…`); the identity region for a bare id or alias. */
function kmsRegionOf(keyId: string, fallback: string): string {
  return /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyId)?.[1] ?? fallback;
}
