/**
 * A SigV4 key as the AWS tools read it: a profile of the AWS config file (`~/.aws/config`) with the
 * key, the region, and a `services` section pointing the `ebs` and `ec2` clients at a volsnap
 * region's API (`<API>/ebs`, `<API>/ec2/`). Read by the AWS CLI (v1 ≥ 1.29, v2 ≥ 2.13) and the SDKs
 * that support service-specific endpoints in the config file.
 */
export interface AwsProfileInput {
  /** The profile's name (`aws --profile NAME`). */
  profile: string;
  region: string;
  /** The region's volsnap API, e.g. `https://api.example.com` (no trailing slash needed). */
  api: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The endpoint URLs of the AWS-protocol APIs of a volsnap region's API. */
export function awsEndpointsOf(api: string): { ebs: string; ec2: string } {
  const base = api.replace(/\/+$/, '');
  // EC2's Query protocol posts to the endpoint's path: the JS SDKs add a `/` to `/ec2`, botocore does
  // not. With the slash in the endpoint every client posts to `/ec2/`, the one route serverless.yml has.
  return { ebs: `${base}/ebs`, ec2: `${base}/ec2/` };
}

/** The profile and its `services` section, as config-file text. */
export function awsProfileText(input: AwsProfileInput): string {
  const endpoints = awsEndpointsOf(input.api);
  const services = `${input.profile}-services`;
  return [
    `[profile ${input.profile}]`,
    `region = ${input.region}`,
    `aws_access_key_id = ${input.accessKeyId}`,
    `aws_secret_access_key = ${input.secretAccessKey}`,
    `services = ${services}`,
    '',
    `[services ${services}]`,
    'ebs =',
    `  endpoint_url = ${endpoints.ebs}`,
    'ec2 =',
    `  endpoint_url = ${endpoints.ec2}`,
    '',
  ].join('\n');
}

/** The key as a profile of the shared credentials file (`~/.aws/credentials`). */
export function awsCredentialsText(
  input: Pick<AwsProfileInput, 'profile' | 'accessKeyId' | 'secretAccessKey'>,
): string {
  return [
    `[${input.profile}]`,
    `aws_access_key_id = ${input.accessKeyId}`,
    `aws_secret_access_key = ${input.secretAccessKey}`,
    '',
  ].join('\n');
}
