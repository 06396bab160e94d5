import { ObjectLayout } from '../ports/objects.ts';
import { VolsnapError } from '../shared/errors.ts';

/** Which objects may back a volume: the account's own `images/{accountId}/` in the region's bucket, or an allowed bucket. */
export interface ImageAccess {
  regionBucket: string;
  /** Further buckets the deployment may read images from (its IAM role must allow it). */
  extraBuckets: readonly string[];
}

/** `s3://bucket/key` → its parts, if the account may use that object as a volume's bytes. */
export function imageLocation(
  uri: string,
  accountId: string,
  access: ImageAccess,
): { bucket: string; key: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2])
    throw new VolsnapError('request.invalid', `The image must be given as s3://bucket/key; '${uri}' is not.`);
  const [bucket, key] = [match[1], match[2]];
  const own =
    bucket === access.regionBucket &&
    key.startsWith(ObjectLayout.imagePrefix(accountId)) &&
    !key.includes('..');
  if (!own && !access.extraBuckets.includes(bucket)) {
    throw new VolsnapError(
      'request.invalid',
      `volsnap cannot read images from ${bucket}/${key}. Put the image under s3://${access.regionBucket}/${ObjectLayout.imagePrefix(accountId)}, or ask the operator to allow the bucket.`,
    );
  }
  return { bucket, key };
}
