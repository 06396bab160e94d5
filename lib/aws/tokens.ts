import { fileTokenKey, kmsTokenKey, missingTokenKey } from '../adapters/token-key.ts';
import type { PortSet } from '../root.ts';

/**
 * The key of the EBS direct API's block and page tokens: on AWS derived from the stack's HMAC KMS
 * key (`VOLSNAP_TOKEN_KEY_ID`), in the local cloud read from its key file (`VOLSNAP_TOKEN_KEY_FILE`).
 * Only this region's: tokens are answered and checked by the region that lists the blocks.
 */
export const tokenKeyPorts: PortSet = {
  tokenKey: ({ config }) =>
    config.tokenKey?.kmsKeyId
      ? kmsTokenKey(config.tokenKey.kmsKeyId, config.region.name)
      : config.tokenKey?.file
        ? fileTokenKey(config.tokenKey.file)
        : missingTokenKey,
};
