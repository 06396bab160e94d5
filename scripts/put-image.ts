// `npm run put-image -- FILE s3://BUCKET/KEY`: puts a disk image into the local cloud's S3, where an
// image-backed volume reads it (`volume create --image s3://BUCKET/images/<account id>/…`). On AWS,
// `aws s3 cp` does this; the local S3 verifies SigV4, so a plain upload needs its credentials.
import { createReadStream, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../lib/adapters/aws-clients.ts';
import { LOCAL_CREDENTIALS } from './local-cloud/cloud.ts';

/** The local cloud's default ports: region i's S3 listens on 4511 + 10i (`npm start -- --port-base`). */
const DEFAULT_S3 = { 'eu-west-1': 'http://127.0.0.1:4511', 'us-east-1': 'http://127.0.0.1:4521' } as Record<
  string,
  string
>;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { region: { type: 'string' }, endpoint: { type: 'string' } },
});
const [file, uri] = positionals;
const target = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri ?? '');
if (!file || !target) {
  console.error(
    'Usage: npm run put-image -- FILE s3://BUCKET/KEY [--region R] [--endpoint URL]\n' +
      "The region's S3 defaults to $VOLSNAP_S3_ENDPOINT, else the local cloud's default port for the region (eu-west-1: 4511, us-east-1: 4521).",
  );
  process.exit(2);
}
const [, bucket = '', key = ''] = target;
const region = values.region ?? /^volsnap-local-(.+)$/.exec(bucket)?.[1] ?? 'eu-west-1';
const endpoint = values.endpoint ?? process.env.VOLSNAP_S3_ENDPOINT ?? DEFAULT_S3[region];
if (!endpoint) {
  console.error(`No S3 endpoint known for ${region}: give --endpoint (the local cloud prints it).`);
  process.exit(2);
}
const size = statSync(file).size;
const s3 = new S3Client(
  s3ClientConfig(
    { name: region, bucket, table: '', s3Endpoint: endpoint, s3ForcePathStyle: true },
    LOCAL_CREDENTIALS,
  ),
);
// One PUT (S3 takes up to 5 GiB so): enough for the images a local cloud is tried with.
await s3.send(
  new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(file), ContentLength: size }),
);
console.log(`Put ${file} (${size} bytes) at s3://${bucket}/${key} (${endpoint}).`);
s3.destroy();
