import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../lib/client/api-client.ts';
import type { CliConfigFile } from '../../lib/client/config.ts';
import { createSnapshotFromFile } from '../../lib/client/snapshot-create.ts';
import { issueApiKey } from '../../lib/core/identity/api-keys.ts';
import { PERMISSIONS, type Permission } from '../../lib/core/identity/identity.ts';
import { newId } from '../../lib/core/shared/ids.ts';
import { loadServerlessSpec } from '../../scripts/local-cloud/serverless-spec.ts';
import { NodeSha256 } from '../support/node-sha256.ts';
import { ROOT, type StartedCloud, startCloudProcess } from '../support/processes.ts';

/**
 * The authorization matrix: every route of serverless.yml × every kind of caller, with the status
 * each must get, from one table. A route without a row (or a row without a route) fails the test.
 */

const PRINCIPALS = [
  'owner',
  'admin',
  'memberWith',
  'memberWithout',
  'other',
  'grantee',
  'public',
  'operator',
  'noKey',
  'badKey',
] as const;
type Principal = (typeof PRINCIPALS)[number];
type Expected = Record<Principal, number>;

/** What a cell needs: ids of fixtures made for it (fresh ones for routes that change or remove them). */
interface Fixture {
  volumeId: string;
  snapshotId: string;
  pendingSnapshotId: string;
  /** Queued for an agent. */
  queuedSnapshotId: string;
  /** Deleted into the recycle bin. */
  recycledSnapshotId: string;
  userName: string;
  keyId: string;
  exportId: string;
  /** A policy of A ('' in fresh fixtures of rows on other resources: the account's policies are limited). */
  policyId: string;
  /** An instance of A with the fixture volume attached as /dev/vda ('' in fresh fixtures of rows on other resources). */
  instanceId: string;
  /** A completed image of that instance, shared with the grantee (images are never public) ('' likewise). */
  imageId: string;
  unique: string;
}

interface Row {
  /** The permission a member needs; members "with" it hold exactly this one (or all, for admin-only routes). */
  permission?: Permission;
  /** Build fresh fixtures for every cell (the route consumes them). */
  fresh?: boolean;
  request: (f: Fixture) => { path: string; body?: unknown };
  expect: Expected;
}

const unauthenticated = { noKey: 401, badKey: 401 } as const;

/** Reading something of account A that is shared with the grantee (and, for `public`, published). */
const readShared = (ok: number): Expected => ({
  owner: ok,
  admin: ok,
  memberWith: ok,
  memberWithout: ok,
  other: 404,
  grantee: ok,
  public: ok,
  operator: 404,
  ...unauthenticated,
});
/** Changing a snapshot of A that others can only read. */
const changeShared = (ok: number): Expected => ({
  owner: ok,
  admin: ok,
  memberWith: ok,
  memberWithout: 403,
  other: 404,
  grantee: 403,
  public: 403,
  operator: 404,
  ...unauthenticated,
});
/** Acting on something of A that no other account can see (members: `with` and `without` the permission). */
const privateToA = (
  ok: number,
  members: { with: number; without: number } = { with: ok, without: ok },
): Expected => ({
  owner: ok,
  admin: ok,
  memberWith: members.with,
  memberWithout: members.without,
  other: 404,
  grantee: 404,
  public: 404,
  operator: 404,
  ...unauthenticated,
});
/** Every account acting on its own things. */
const ownAccount = (ok: number, members = ok): Expected => ({
  owner: ok,
  admin: ok,
  memberWith: members,
  memberWithout: members,
  other: ok,
  grantee: ok,
  public: ok,
  operator: ok,
  ...unauthenticated,
});
/** The service operator only. */
const operatorOnly = (ok: number): Expected => ({
  owner: 403,
  admin: 403,
  memberWith: 403,
  memberWithout: 403,
  other: 403,
  grantee: 403,
  public: 403,
  operator: ok,
  ...unauthenticated,
});

const adminsOnly = { with: 403, without: 403 };
/** Reading an image of A shared with the grantee: images are never public, so the `public` caller is a stranger. */
const readSharedImage = (ok: number): Expected => ({ ...readShared(ok), public: 404 });
/** Changing an image of A that the grantee can only read. */
const changeSharedImage = (ok: number): Expected => ({ ...changeShared(ok), public: 404 });

/** Routes anyone may call, without a key: health, and the web console's files (it asks for a key itself). */
const PUBLIC_ROUTES = [
  '/v1/health',
  '/console',
  '/console/app.js',
  '/console/app.css',
  '/console/config.json',
];
const publicRoute = (path: string): Row => ({
  request: () => ({ path }),
  expect: { ...ownAccount(200), noKey: 200, badKey: 200 },
});

const ROUTES: Record<string, Row> = {
  ...Object.fromEntries(PUBLIC_ROUTES.map((path) => [`GET ${path}`, publicRoute(path)])),
  'POST /v1/volumes': {
    permission: 'volume:create',
    // Every account makes volumes in its own account; from A's snapshot only if it may read it.
    request: (f) => ({ path: '/v1/volumes', body: { name: 'from-shared', sourceSnapshotId: f.snapshotId } }),
    expect: { ...readShared(201), memberWithout: 403 },
  },
  'GET /v1/volumes': { request: () => ({ path: '/v1/volumes' }), expect: ownAccount(200) },
  'GET /v1/volumes/{volumeId}': {
    request: (f) => ({ path: `/v1/volumes/${f.volumeId}` }),
    expect: privateToA(200),
  },
  'DELETE /v1/volumes/{volumeId}': {
    permission: 'volume:delete',
    fresh: true,
    request: (f) => ({ path: `/v1/volumes/${f.volumeId}` }),
    // The fixture volume has snapshots: whoever gets past authorization is told so (409).
    expect: privateToA(409, { with: 409, without: 403 }),
  },
  'POST /v1/snapshots': {
    permission: 'snapshot:create',
    request: (f) => ({ path: '/v1/snapshots', body: { volumeId: f.volumeId } }),
    expect: privateToA(201, { with: 201, without: 403 }),
  },
  'GET /v1/snapshots': { request: () => ({ path: '/v1/snapshots?scope=shared' }), expect: ownAccount(200) },
  'GET /v1/snapshots/{snapshotId}': {
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}` }),
    expect: readShared(200),
  },
  'PATCH /v1/snapshots/{snapshotId}': {
    permission: 'snapshot:update',
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}`, body: { description: 'changed' } }),
    expect: changeShared(200),
  },
  'DELETE /v1/snapshots/{snapshotId}': {
    permission: 'snapshot:delete',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}` }),
    // Into the recycle bin (200, with the snapshot): the account keeps one.
    expect: changeShared(200),
  },
  'POST /v1/snapshots/{snapshotId}/undelete': {
    permission: 'snapshot:delete',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.recycledSnapshotId}/undelete` }),
    // In the recycle bin a snapshot is its owner's alone, shares or not.
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'POST /v1/snapshots/{snapshotId}/start': {
    permission: 'snapshot:create',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.queuedSnapshotId}/start` }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'POST /v1/snapshots/{snapshotId}/fail': {
    permission: 'snapshot:create',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.pendingSnapshotId}/fail`, body: { reason: 'disk gone' } }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'POST /v1/snapshots/{snapshotId}/upload-urls': {
    permission: 'snapshot:create',
    request: (f) => ({ path: `/v1/snapshots/${f.pendingSnapshotId}/upload-urls`, body: { segments: 1 } }),
    // A pending snapshot cannot be shared: no other account sees it.
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'POST /v1/snapshots/{snapshotId}/complete': {
    permission: 'snapshot:create',
    // Completing a completed snapshot returns it unchanged.
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/complete` }),
    expect: changeShared(200),
  },
  'GET /v1/snapshots/{snapshotId}/manifest-url': {
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/manifest-url` }),
    expect: readShared(200),
  },
  'POST /v1/snapshots/{snapshotId}/segment-urls': {
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/segment-urls`, body: { ranges: [] } }),
    expect: readShared(200),
  },
  'GET /v1/snapshots/{snapshotId}/changed-blocks': {
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/changed-blocks?since=${f.snapshotId}` }),
    expect: readShared(200),
  },
  'POST /v1/snapshots/copy': {
    permission: 'snapshot:copy',
    // A copy lands in the caller's own account: whoever may read the source may copy it.
    request: (f) => ({
      path: '/v1/snapshots/copy',
      body: { sourceRegion: 'eu-west-1', sourceSnapshotId: f.snapshotId },
    }),
    expect: { ...readShared(202), memberWithout: 403 },
  },
  'POST /v1/snapshots/import': {
    permission: 'snapshot:import',
    // Into the caller's own account, from a URL no import may fetch: past authorization, a 400.
    request: () => ({
      path: '/v1/snapshots/import',
      body: { url: 'http://169.254.169.254/latest/meta-data', format: 'vsnap' },
    }),
    expect: { ...ownAccount(400), memberWithout: 403 },
  },
  'POST /v1/uploads': {
    permission: 'snapshot:import',
    request: () => ({ path: '/v1/uploads', body: { sizeBytes: 1024 * 1024 } }),
    expect: { ...ownAccount(201), memberWithout: 403 },
  },
  'POST /v1/uploads/{ref}/part-urls': {
    permission: 'snapshot:import',
    // URLs into the caller's own upload area only, whatever ref it names.
    request: () => ({
      path: `/v1/uploads/${newId('request')}/part-urls`,
      body: { uploadId: 'u', fromPart: 1 },
    }),
    expect: { ...ownAccount(200), memberWithout: 403 },
  },
  'POST /v1/snapshots/{snapshotId}/export': {
    permission: 'snapshot:export',
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/export`, body: { format: 'vsnap' } }),
    expect: { ...readShared(202), memberWithout: 403 },
  },
  'GET /v1/exports': { request: () => ({ path: '/v1/exports' }), expect: ownAccount(200) },
  'GET /v1/exports/{exportId}': {
    request: (f) => ({ path: `/v1/exports/${f.exportId}` }),
    expect: privateToA(200),
  },
  'POST /v1/exports/{exportId}/url': {
    permission: 'snapshot:export',
    request: (f) => ({ path: `/v1/exports/${f.exportId}/url`, body: { expiresInSeconds: 60 } }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'DELETE /v1/exports/{exportId}': {
    permission: 'snapshot:export',
    fresh: true,
    request: (f) => ({ path: `/v1/exports/${f.exportId}` }),
    expect: privateToA(204, { with: 204, without: 403 }),
  },
  'POST /v1/policies': {
    permission: 'policy:manage',
    // Every account makes policies in its own account.
    request: (f) => ({
      path: '/v1/policies',
      body: {
        name: `p-${f.unique}`,
        targetTags: { matrix: f.unique },
        schedule: { everyMs: 3_600_000 },
        retention: { keep: 1 },
      },
    }),
    expect: { ...ownAccount(201), memberWithout: 403 },
  },
  'GET /v1/policies': { request: () => ({ path: '/v1/policies' }), expect: ownAccount(200) },
  'GET /v1/policies/{policyId}': {
    request: (f) => ({ path: `/v1/policies/${f.policyId}` }),
    expect: privateToA(200),
  },
  'PATCH /v1/policies/{policyId}': {
    permission: 'policy:manage',
    request: (f) => ({ path: `/v1/policies/${f.policyId}`, body: { description: 'changed' } }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'DELETE /v1/policies/{policyId}': {
    permission: 'policy:manage',
    fresh: true,
    request: (f) => ({ path: `/v1/policies/${f.policyId}` }),
    expect: privateToA(204, { with: 204, without: 403 }),
  },
  'POST /v1/snapshots/{snapshotId}/shares': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/shares`, body: { accountId: 'dave' } }),
    expect: changeShared(200),
  },
  'DELETE /v1/snapshots/{snapshotId}/shares/{accountId}': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/shares/dave` }),
    expect: changeShared(200),
  },
  'PUT /v1/snapshots/{snapshotId}/public': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/public` }),
    expect: changeShared(200),
  },
  'DELETE /v1/snapshots/{snapshotId}/public': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/public` }),
    expect: changeShared(200),
  },
  'GET /v1/account': { request: () => ({ path: '/v1/account' }), expect: ownAccount(200) },
  'PATCH /v1/account': {
    request: () => ({ path: '/v1/account', body: { blockPublicSharing: false } }),
    expect: ownAccount(200, 403),
  },
  'GET /v1/account/usage': { request: () => ({ path: '/v1/account/usage' }), expect: ownAccount(200) },
  'GET /v1/account/audit': { request: () => ({ path: '/v1/account/audit' }), expect: ownAccount(200, 403) },
  'POST /v1/account/users': {
    request: (f) => ({ path: '/v1/account/users', body: { userName: `u-${f.unique}`, role: 'member' } }),
    expect: ownAccount(201, 403),
  },
  'GET /v1/account/users': { request: () => ({ path: '/v1/account/users' }), expect: ownAccount(200, 403) },
  'PATCH /v1/account/users/{userName}': {
    fresh: true,
    request: (f) => ({ path: `/v1/account/users/${f.userName}`, body: { permissions: ['snapshot:create'] } }),
    expect: privateToA(200, adminsOnly),
  },
  'DELETE /v1/account/users/{userName}': {
    fresh: true,
    request: (f) => ({ path: `/v1/account/users/${f.userName}` }),
    expect: privateToA(204, adminsOnly),
  },
  'POST /v1/account/keys': {
    fresh: true,
    request: (f) => ({ path: '/v1/account/keys', body: { userName: f.userName } }),
    expect: privateToA(201, adminsOnly),
  },
  'GET /v1/account/keys': { request: () => ({ path: '/v1/account/keys' }), expect: ownAccount(200, 403) },
  'DELETE /v1/account/keys/{keyId}': {
    fresh: true,
    request: (f) => ({ path: `/v1/account/keys/${f.keyId}` }),
    expect: privateToA(200, adminsOnly),
  },
  'POST /v1/admin/accounts': {
    request: (f) => ({ path: '/v1/admin/accounts', body: { name: `t-${f.unique}` } }),
    expect: operatorOnly(201),
  },
  'GET /v1/admin/accounts': { request: () => ({ path: '/v1/admin/accounts' }), expect: operatorOnly(200) },
  'PUT /v1/admin/accounts/{accountId}/quota': {
    request: () => ({ path: '/v1/admin/accounts/demo-b/quota', body: { maxSnapshots: 100_000 } }),
    expect: operatorOnly(200),
  },
  'POST /v1/instances': {
    permission: 'instance:manage',
    // Every account registers instances in its own account.
    request: (f) => ({ path: '/v1/instances', body: { name: `i-${f.unique}` } }),
    expect: { ...ownAccount(201), memberWithout: 403 },
  },
  'GET /v1/instances': { request: () => ({ path: '/v1/instances' }), expect: ownAccount(200) },
  'GET /v1/instances/{instanceId}': {
    request: (f) => ({ path: `/v1/instances/${f.instanceId}` }),
    expect: privateToA(200),
  },
  'PATCH /v1/instances/{instanceId}': {
    permission: 'instance:manage',
    request: (f) => ({ path: `/v1/instances/${f.instanceId}`, body: { state: 'stopped' } }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'DELETE /v1/instances/{instanceId}': {
    permission: 'instance:manage',
    fresh: true,
    request: (f) => ({ path: `/v1/instances/${f.instanceId}` }),
    expect: privateToA(204, { with: 204, without: 403 }),
  },
  'PUT /v1/instances/{instanceId}/volumes/{volumeId}': {
    permission: 'instance:manage',
    // Attaching the volume again as the same device changes nothing (PUT is idempotent).
    request: (f) => ({
      path: `/v1/instances/${f.instanceId}/volumes/${f.volumeId}`,
      body: { device: '/dev/vda' },
    }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'DELETE /v1/instances/{instanceId}/volumes/{volumeId}': {
    permission: 'instance:manage',
    fresh: true,
    request: (f) => ({ path: `/v1/instances/${f.instanceId}/volumes/${f.volumeId}` }),
    expect: privateToA(200, { with: 200, without: 403 }),
  },
  'POST /v1/images': {
    permission: 'snapshot:create',
    request: (f) => ({ path: '/v1/images', body: { instanceId: f.instanceId, name: `img-${f.unique}` } }),
    expect: privateToA(201, { with: 201, without: 403 }),
  },
  'GET /v1/images': { request: () => ({ path: '/v1/images?scope=shared' }), expect: ownAccount(200) },
  'GET /v1/images/{imageId}': {
    request: (f) => ({ path: `/v1/images/${f.imageId}` }),
    expect: readSharedImage(200),
  },
  'DELETE /v1/images/{imageId}': {
    permission: 'snapshot:delete',
    fresh: true,
    request: (f) => ({ path: `/v1/images/${f.imageId}` }),
    expect: changeSharedImage(200),
  },
  'POST /v1/images/{imageId}/launch': {
    permission: 'volume:create',
    // Into the caller's own account, from an image it may read.
    request: (f) => ({ path: `/v1/images/${f.imageId}/launch`, body: { name: `l-${f.unique}` } }),
    expect: { ...readSharedImage(201), memberWithout: 403 },
  },
  'POST /v1/images/{imageId}/shares': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/images/${f.imageId}/shares`, body: { accountId: 'dave' } }),
    expect: changeSharedImage(200),
  },
  'DELETE /v1/images/{imageId}/shares/{accountId}': {
    permission: 'snapshot:share',
    fresh: true,
    request: (f) => ({ path: `/v1/images/${f.imageId}/shares/demo-b` }),
    expect: changeSharedImage(200),
  },
  'POST /v1/images/copy': {
    permission: 'snapshot:copy',
    // Into the caller's own account (here, the same region): whoever may read the image may copy it.
    request: (f) => ({
      path: '/v1/images/copy',
      body: { sourceRegion: 'eu-west-1', sourceImageId: f.imageId },
    }),
    expect: { ...readSharedImage(202), memberWithout: 403 },
  },
  'POST /v1/images/{imageId}/export': {
    permission: 'snapshot:export',
    request: (f) => ({ path: `/v1/images/${f.imageId}/export`, body: { format: 'vsnap' } }),
    expect: { ...readSharedImage(202), memberWithout: 403 },
  },
  'POST /v1/snapshots/{snapshotId}/verify': {
    permission: 'snapshot:create',
    request: (f) => ({ path: `/v1/snapshots/${f.snapshotId}/verify` }),
    // Only its owner verifies a snapshot (the integrity mark is the owner's): a grantee is refused.
    expect: changeShared(202),
  },
  'GET /v1/verifications/{verificationId}': {
    request: () => ({ path: `/v1/verifications/${verificationId}` }),
    // Another account's verification answers as a missing one.
    expect: privateToA(200),
  },
  'POST /v1/admin/check': {
    request: () => ({ path: '/v1/admin/check', body: {} }),
    expect: operatorOnly(200),
  },
  'POST /v1/admin/run/{job}': {
    // Expiry is quick and changes nothing the other cells use (nothing has expired yet).
    request: () => ({ path: '/v1/admin/run/expiry', body: {} }),
    expect: operatorOnly(200),
  },
};

/**
 * The AWS-protocol routes (the EBS direct APIs, EC2 DescribeSnapshots): no authorizer, SigV4
 * checked by the function; each principal signs with a SigV4 key of its user. Another account's
 * snapshot answers as a missing one (ResourceNotFoundException 404, EC2's InvalidSnapshot.NotFound
 * 400); a bad or missing signature is EBS's 403 (EC2's 401, AuthFailure).
 */
interface AwsFixture {
  /** Started by A's owner through StartSnapshot (a fresh one per cell in `fresh` rows). */
  pendingSnapshotId: string;
  /** A block token of the fixture snapshot's block 0 (from A's ListSnapshotBlocks). */
  blockToken: string;
}

interface AwsRow {
  service: 'ebs' | 'ec2';
  permission?: Permission;
  fresh?: boolean;
  request: (
    f: Fixture,
    e: AwsFixture,
  ) => { path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer };
  expect: Expected;
}

const awsUnauthenticated = { noKey: 403, badKey: 403 } as const;
/** EBS reads of A's completed snapshot, shared with the grantee (published, for `public`). */
const ebsReadShared: Expected = { ...readShared(200), ...awsUnauthenticated };
/** EBS writes to A's snapshot started through the API: its members with snapshot:create, nobody else sees it. */
const ebsWriteOwn = (ok: number): Expected => ({
  ...privateToA(ok, { with: ok, without: 403 }),
  ...awsUnauthenticated,
});
const BLOCK_BYTES = randomBytes(512 * 1024);
const describeForm = (snapshotId: string) =>
  Buffer.from(`Action=DescribeSnapshots&Version=2016-11-15&SnapshotId.1=${snapshotId}`);
const describeRow = (path: string): AwsRow => ({
  service: 'ec2',
  request: (f) => ({
    path,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: describeForm(f.snapshotId),
  }),
  expect: { ...readShared(200), other: 400, operator: 400, noKey: 401, badKey: 401 },
});

const AWS_ROUTES: Record<string, AwsRow> = {
  'POST /ebs/snapshots': {
    service: 'ebs',
    permission: 'snapshot:create',
    request: () => ({
      path: '/ebs/snapshots',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ VolumeSize: 1, Timeout: 10 })),
    }),
    // Every account starts snapshots in its own account. Without a parent the snapshot gets a volume
    // of its own, so a member needs volume:create too: with snapshot:create alone it is refused.
    expect: { ...ownAccount(201), memberWith: 403, memberWithout: 403, ...awsUnauthenticated },
  },
  'PUT /ebs/snapshots/{snapshotId}/blocks/{blockIndex}': {
    service: 'ebs',
    permission: 'snapshot:create',
    request: (_f, e) => ({
      path: `/ebs/snapshots/${e.pendingSnapshotId}/blocks/0`,
      headers: {
        'content-type': 'application/octet-stream',
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        'x-amz-data-length': String(BLOCK_BYTES.length),
        'x-amz-checksum': createHash('sha256').update(BLOCK_BYTES).digest('base64'),
        'x-amz-checksum-algorithm': 'SHA256',
      },
      body: BLOCK_BYTES,
    }),
    expect: ebsWriteOwn(201),
  },
  'POST /ebs/snapshots/completion/{snapshotId}': {
    service: 'ebs',
    permission: 'snapshot:create',
    fresh: true,
    request: (_f, e) => ({
      path: `/ebs/snapshots/completion/${e.pendingSnapshotId}`,
      headers: { 'x-amz-changedblockscount': '0' },
    }),
    expect: ebsWriteOwn(202),
  },
  'GET /ebs/snapshots/{snapshotId}/blocks': {
    service: 'ebs',
    request: (f) => ({ path: `/ebs/snapshots/${f.snapshotId}/blocks`, query: { maxResults: '100' } }),
    expect: ebsReadShared,
  },
  'GET /ebs/snapshots/{snapshotId}/blocks/{blockIndex}': {
    service: 'ebs',
    request: (f, e) => ({
      path: `/ebs/snapshots/${f.snapshotId}/blocks/0`,
      query: { blockToken: e.blockToken },
    }),
    expect: ebsReadShared,
  },
  'GET /ebs/snapshots/{secondSnapshotId}/changedblocks': {
    service: 'ebs',
    request: (f) => ({ path: `/ebs/snapshots/${f.snapshotId}/changedblocks` }),
    expect: ebsReadShared,
  },
  'POST /ec2/': describeRow('/ec2/'),
};

const BLOCK = 512 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-matrix-'));
const image = join(dataDir, 'disk.img');
let cloud: StartedCloud;
let endpoint: string;
const keys = {} as Record<Principal, string | undefined>;
const membersWith = new Map<Permission | 'all', string>();
let owner: ApiClient;
let shared: Fixture;
let published: Fixture;
/** A verification of A's shared snapshot, made by its owner. */
let verificationId: string;
let counter = 0;
let region: string;
type SigV4Pair = { accessKeyId: string; secretAccessKey: string };
const sigv4 = {} as Record<Principal, SigV4Pair | undefined>;
const sigv4MembersWith = new Map<Permission | 'all', SigV4Pair>();
/** A block token of each fixture snapshot's block 0. */
const blockTokens = new Map<string, string>();

const client = (apiKey?: string) => new ApiClient({ endpoint, apiKey });

/** RFC 3986, as the SDKs encode a query. */
const encodeQuery = (query: Record<string, string>) =>
  Object.entries(query)
    .map(
      ([k, v]) =>
        `${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`,
    )
    .join('&');

/** The status of an AWS-protocol request, signed with `key` as the JS SDK signs (or not at all). */
async function awsStatus(
  key: SigV4Pair | undefined,
  service: 'ebs' | 'ec2',
  method: string,
  request: ReturnType<AwsRow['request']>,
): Promise<number> {
  const url = new URL(request.path, endpoint);
  const query = request.query ?? {};
  let headers: Record<string, string> = { host: url.host, ...(request.headers ?? {}) };
  if (key) {
    const signer = new SignatureV4({
      credentials: key,
      region,
      service,
      sha256: NodeSha256,
      uriEscapePath: true,
    });
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: { ...query },
      headers,
      ...(request.body ? { body: request.body } : {}),
    });
    headers = signed.headers as Record<string, string>;
  }
  const { host: _host, ...sent } = headers;
  const qs = encodeQuery(query);
  const response = await fetch(`${url.origin}${url.pathname}${qs ? `?${qs}` : ''}`, {
    method,
    headers: sent,
    ...(request.body ? { body: request.body } : {}),
  });
  await response.arrayBuffer();
  return response.status;
}

/** A snapshot of A started through StartSnapshot (signed with A's owner's SigV4 key). */
async function ebsPendingSnapshot(): Promise<string> {
  const url = new URL('/ebs/snapshots', endpoint);
  const body = Buffer.from(JSON.stringify({ VolumeSize: 1, Timeout: 60 }));
  const signer = new SignatureV4({
    credentials: sigv4.owner as SigV4Pair,
    region,
    service: 'ebs',
    sha256: NodeSha256,
    uriEscapePath: true,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const { host: _host, ...headers } = signed.headers as Record<string, string>;
  const response = await fetch(url, { method: 'POST', headers, body });
  const answer = (await response.json()) as { SnapshotId?: string };
  if (response.status !== 201 || !answer.SnapshotId)
    throw new Error(`StartSnapshot: ${response.status} ${JSON.stringify(answer)}`);
  return answer.SnapshotId;
}

/** A block token of block 0 of `snapshotId`, from A's owner's ListSnapshotBlocks. */
async function blockTokenOf(snapshotId: string): Promise<string> {
  const url = new URL(`/ebs/snapshots/${snapshotId}/blocks`, endpoint);
  const signer = new SignatureV4({
    credentials: sigv4.owner as SigV4Pair,
    region,
    service: 'ebs',
    sha256: NodeSha256,
    uriEscapePath: true,
  });
  const signed = await signer.sign({
    method: 'GET',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { host: url.host },
  });
  const { host: _host, ...headers } = signed.headers as Record<string, string>;
  const answer = (await (await fetch(url, { headers })).json()) as {
    Blocks?: { BlockIndex: number; BlockToken: string }[];
  };
  const token = answer.Blocks?.find((b) => b.BlockIndex === 0)?.BlockToken;
  if (!token) throw new Error(`ListSnapshotBlocks ${snapshotId}: ${JSON.stringify(answer)}`);
  return token;
}

async function completedSnapshot(volumeId: string): Promise<string> {
  const { snapshot } = await createSnapshotFromFile(owner, { volumeId, file: image });
  return snapshot.snapshotId;
}

/**
 * A volume of A with a completed snapshot shared with the grantee (or published), a pending one, a
 * user and a key; with `instance`, an instance the volume is attached to; with `image`, also a
 * completed image of it shared with the grantee.
 */
async function fixture(
  visibility: 'shared' | 'published',
  withPolicy = true,
  instances: 'none' | 'instance' | 'image' = 'image',
): Promise<Fixture> {
  const unique = `${Date.now().toString(36)}${(counter++).toString(36)}`;
  const volume = await owner.createVolume({ name: `m-${unique}`, sizeBytes: 4 * BLOCK });
  const snapshotId = await completedSnapshot(volume.volumeId);
  if (visibility === 'shared') await owner.shareSnapshot(snapshotId, 'demo-b');
  else await owner.publishSnapshot(snapshotId);
  const pending = await owner.createSnapshot({ volumeId: volume.volumeId });
  const queued = await owner.createSnapshot({ volumeId: volume.volumeId, queued: true });
  const recycledSnapshotId = await completedSnapshot(volume.volumeId);
  await owner.deleteSnapshot(recycledSnapshotId);
  const userName = `target-${unique}`;
  await owner.createUser({ userName, role: 'member' });
  const key = await owner.createKey({ userName });
  // A third account the snapshot is also shared with, so unsharing has something to take back.
  await owner.shareSnapshot(snapshotId, 'dave');
  let exported = await owner.exportSnapshot(snapshotId, 'vsnap');
  for (let i = 0; exported.state === 'pending' && i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    exported = await owner.getExport(exported.exportId);
  }
  const policyId = withPolicy
    ? (
        await owner.createPolicy({
          name: `m-${unique}`,
          targetTags: { matrix: unique },
          schedule: { everyMs: 3_600_000 },
          retention: { keep: 1 },
        })
      ).policyId
    : '';
  let instanceId = '';
  let imageId = '';
  if (instances !== 'none') {
    instanceId = (
      await owner.registerInstance({
        name: `m-${unique}`,
        volumes: [{ volumeId: volume.volumeId, device: '/dev/vda' }],
        state: 'stopped',
      })
    ).instanceId;
  }
  if (instances === 'image') {
    const made = await owner.createImage({ instanceId, name: `m-${unique}` });
    for (const ref of made.snapshots) {
      const started = await owner.startSnapshot(ref.snapshotId);
      await createSnapshotFromFile(owner, { volumeId: ref.volumeId, file: image, snapshot: started });
    }
    imageId = made.imageId;
    await owner.shareImage(imageId, 'demo-b');
  }
  return {
    volumeId: volume.volumeId,
    snapshotId,
    pendingSnapshotId: pending.snapshotId,
    queuedSnapshotId: queued.snapshotId,
    recycledSnapshotId,
    userName,
    keyId: key.keyId,
    exportId: exported.exportId,
    policyId,
    instanceId,
    imageId,
    unique,
  };
}

async function call(apiKey: string | undefined, method: string, request: { path: string; body?: unknown }) {
  try {
    await client(apiKey).request(method, request.path, request.body);
    return 200;
  } catch (error) {
    if (error instanceof ApiError) return error.status;
    throw error;
  }
}

/** The status a successful call answered with: request() hides it, so ask fetch directly. */
async function status(apiKey: string | undefined, method: string, request: { path: string; body?: unknown }) {
  const response = await fetch(new URL(request.path, endpoint), {
    method,
    headers: {
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--data-dir', dataDir, '--port-base', 'auto']);
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as CliConfigFile;
  endpoint = config.regions[config.defaultRegion]?.endpoint ?? '';
  region = config.defaultRegion;
  const bytes = randomBytes(4 * BLOCK);
  bytes.fill(0, BLOCK, 2 * BLOCK);
  writeFileSync(image, bytes);
  keys.owner = config.accounts.demo?.apiKey;
  keys.grantee = config.accounts['demo-b']?.apiKey;
  keys.operator = config.accounts.operator?.apiKey;
  keys.badKey = issueApiKey().token;
  keys.noKey = undefined;
  owner = client(keys.owner);
  // The matrix calls the API at machine speed from one account, and every fresh fixture leaves a
  // pending and a queued snapshot behind: past the default request rate and snapshots in flight. An
  // operator raises such an account's limits, and so does the test, before the account's first
  // request (a region reads an account's limits once a minute).
  await client(keys.operator).setQuota('demo', {
    maxPendingSnapshots: 10_000,
    requestsPerSecond: 10_000,
    requestBurst: 20_000,
  });
  await owner.createUser({ userName: 'second-admin', role: 'admin' });
  keys.admin = (await owner.createKey({ userName: 'second-admin' })).token;
  await owner.createUser({ userName: 'reader', role: 'member' });
  keys.memberWithout = (await owner.createKey({ userName: 'reader' })).token;
  for (const permission of PERMISSIONS) {
    const userName = `can-${permission.replace(':', '-')}`;
    await owner.createUser({ userName, role: 'member', permissions: [permission] });
    membersWith.set(permission, (await owner.createKey({ userName })).token);
  }
  await owner.createUser({ userName: 'can-everything', role: 'member', permissions: [...PERMISSIONS] });
  membersWith.set('all', (await owner.createKey({ userName: 'can-everything' })).token);
  const carol = await client(keys.operator).createAccount({ name: 'carol' });
  keys.other = carol.key.token;
  keys.public = carol.key.token;
  await client(keys.operator).createAccount({ name: 'dave' });
  shared = await fixture('shared');
  published = await fixture('published');
  verificationId = (await owner.verifySnapshot(shared.snapshotId)).verificationId;
  // A SigV4 key for each principal's user, for the AWS-protocol routes.
  const pair = (k: { accessKeyId: string; secretAccessKey: string }) => ({
    accessKeyId: k.accessKeyId,
    secretAccessKey: k.secretAccessKey,
  });
  sigv4.owner = pair(await owner.createSigV4Key({}));
  sigv4.admin = pair(await owner.createSigV4Key({ userName: 'second-admin' }));
  sigv4.memberWithout = pair(await owner.createSigV4Key({ userName: 'reader' }));
  for (const permission of PERMISSIONS) {
    const userName = `can-${permission.replace(':', '-')}`;
    sigv4MembersWith.set(permission, pair(await owner.createSigV4Key({ userName })));
  }
  sigv4MembersWith.set('all', pair(await owner.createSigV4Key({ userName: 'can-everything' })));
  sigv4.other = pair(await client(keys.other).createSigV4Key({}));
  sigv4.public = sigv4.other;
  sigv4.grantee = pair(await client(keys.grantee).createSigV4Key({}));
  sigv4.operator = pair(await client(keys.operator).createSigV4Key({}));
  sigv4.badKey = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  sigv4.noKey = undefined;
  for (const f of [shared, published]) blockTokens.set(f.snapshotId, await blockTokenOf(f.snapshotId));
}, 240_000);

afterAll(async () => {
  cloud?.process.kill('SIGINT');
  await cloud?.exited;
});

describe('authorization matrix', () => {
  it('has exactly one row per route of serverless.yml, and every route but the public ones (health, the console) is behind the authorizer', async () => {
    const spec = await loadServerlessSpec(join(ROOT, 'serverless.yml'));
    const routes = spec.functions.flatMap((fn) => fn.routes);
    expect([...Object.keys(ROUTES), ...Object.keys(AWS_ROUTES)].sort()).toEqual(
      routes.map((r) => `${r.method} ${r.path}`).sort(),
    );
    for (const route of routes) {
      // The AWS-protocol routes check SigV4 themselves: clients sign for ebs/ec2, not for the authorizer.
      const own = PUBLIC_ROUTES.includes(route.path) || `${route.method} ${route.path}` in AWS_ROUTES;
      expect(route.authorizer, `${route.method} ${route.path}`).toBe(own ? undefined : 'apiKey');
    }
  });

  for (const [route, row] of Object.entries(ROUTES)) {
    it(`${route}`, async () => {
      const [method = 'GET'] = route.split(' ');
      const got: Partial<Expected> = {};
      for (const principal of PRINCIPALS) {
        const base = principal === 'public' ? published : shared;
        const f = row.fresh
          ? await fixture(
              principal === 'public' ? 'published' : 'shared',
              route.includes('{policyId}'),
              route.includes('/v1/images') ? 'image' : route.includes('/v1/instances') ? 'instance' : 'none',
            )
          : { ...base, unique: `${base.unique}-${counter++}` };
        const key = principal === 'memberWith' ? membersWith.get(row.permission ?? 'all') : keys[principal];
        got[principal] = await status(key, method, row.request(f));
      }
      expect(got).toEqual(row.expect);
    }, 120_000);
  }

  let pendingOfA: string | undefined;
  for (const [route, row] of Object.entries(AWS_ROUTES)) {
    it(`${route} (SigV4)`, async () => {
      const [method = 'GET'] = route.split(' ');
      pendingOfA ??= await ebsPendingSnapshot();
      const got: Partial<Expected> = {};
      for (const principal of PRINCIPALS) {
        const f = principal === 'public' ? published : shared;
        const e: AwsFixture = {
          pendingSnapshotId: row.fresh ? await ebsPendingSnapshot() : pendingOfA,
          blockToken: blockTokens.get(f.snapshotId) ?? '',
        };
        const key =
          principal === 'memberWith' ? sigv4MembersWith.get(row.permission ?? 'all') : sigv4[principal];
        got[principal] = await awsStatus(key, row.service, method, row.request(f, e));
      }
      expect(got).toEqual(row.expect);
    }, 120_000);
  }

  it('answers a private snapshot of another account exactly as a missing one', async () => {
    const other = client(keys.other);
    const hidden = await call(keys.other, 'GET', { path: `/v1/snapshots/${shared.snapshotId}` });
    const failure = (id: string) =>
      other.getSnapshot(id).then(
        () => new ApiError(200, 'unexpected', 'answered'),
        (e: ApiError) => e,
      );
    const missingError = await failure('snap-0000000000000000');
    const hiddenError = await failure(shared.snapshotId);
    expect(hidden).toBe(404);
    expect(hiddenError.code).toBe(missingError.code);
    expect(hiddenError.message.replace(shared.snapshotId, 'X')).toBe(
      missingError.message.replace('snap-0000000000000000', 'X'),
    );
  });
});
