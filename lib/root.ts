import { type AwsClients, createAwsClients } from './adapters/aws-clients.ts';
import { systemClock } from './adapters/clock.ts';
import { DynamoIdentityRepository } from './adapters/dynamodb/accounts.ts';
import { DynamoAuditLog } from './adapters/dynamodb/audit.ts';
import { DynamoExportRepository } from './adapters/dynamodb/exports.ts';
import { DynamoImageRepository } from './adapters/dynamodb/images.ts';
import { DynamoInstanceRepository } from './adapters/dynamodb/instances.ts';
import { DynamoPolicyRepository } from './adapters/dynamodb/policies.ts';
import { DynamoRequestCounter } from './adapters/dynamodb/request-counter.ts';
import { DynamoSnapshotRepository } from './adapters/dynamodb/snapshots.ts';
import { DynamoUploadSlots } from './adapters/dynamodb/uploads.ts';
import { DynamoVolumeRepository } from './adapters/dynamodb/volumes.ts';
import { httpRemoteOpener } from './adapters/http/remote.ts';
import { S3ObjectStore } from './adapters/s3/objects.ts';
import { SqsWorkQueue } from './adapters/sqs/queue.ts';
import { createZstdCompressor } from './adapters/zstd.ts';
import { loadRuntimeConfig, type RuntimeConfig } from './config/runtime.ts';
import { AccountService, keyAuthenticator } from './core/identity/accounts.ts';
import type { Caller } from './core/identity/identity.ts';
import { replicaFirst } from './core/identity/replica-identity.ts';
import { RequestLimiter } from './core/identity/request-rate.ts';
import { ImageReader, ImageService } from './core/instances/images.ts';
import { InstanceService } from './core/instances/instances.ts';
import { Maintenance, MaintenanceJobs } from './core/maintenance/maintenance.ts';
import { PolicyService } from './core/maintenance/policies.ts';
import { type PolicyRegion, PolicyRunner } from './core/maintenance/policy-runner.ts';
import type { AuditLog } from './core/ports/audit.ts';
import type { Clock } from './core/shared/clock.ts';
import { SnapshotService } from './core/snapshots/snapshot-service.ts';
import { ExportService } from './core/tasks/exports.ts';
import { ImageSnapshotter } from './core/tasks/image-snapshot.ts';
import { SnapshotImporter } from './core/tasks/imports.ts';
import { copySourceOf, SnapshotCopier } from './core/tasks/snapshot-copy.ts';
import type { ImageAccess } from './core/volumes/image-location.ts';
import { VolumeService } from './core/volumes/volumes.ts';

/**
 * The composition root: the one place handlers get their configuration, clients and services from.
 * Built once per Lambda container (on first use, not at import, so cold starts pay only for what a
 * function touches) and reused by every invocation.
 */
export interface Runtime {
  config: RuntimeConfig;
  clock: Clock;
  /** Clients of this region's services. */
  aws: AwsClients;
  /** Clients of another region's services (cross-region copy); created on first use, then kept. */
  awsFor(region: string): AwsClients;
  /** Resolves an Authorization header to the caller, or undefined for any bad or missing key. */
  authenticate(authorization: string | undefined): Promise<Caller | undefined>;
  accounts: AccountService;
  /** Each account's request rate in this region (the HTTP stack counts every authenticated request). */
  limiter: RequestLimiter;
  audit: AuditLog;
  volumes: VolumeService;
  snapshots: SnapshotService;
  /** Server-side snapshots of image-backed volumes (the worker's use case). */
  imageSnapshotter: ImageSnapshotter;
  /** Copies of snapshots from any region into this one. */
  copier: SnapshotCopier;
  exports: ExportService;
  importer: SnapshotImporter;
  /** The scheduled jobs (GC, reaper, expiry, policies), also run on demand by the operator. */
  jobs: MaintenanceJobs;
  /** Snapshot policies of this region (their CRUD; the scheduled runner reads the repository). */
  policies: PolicyService;
  /** Instances (their volumes, devices, properties) and images of them (instance snapshots). */
  instances: InstanceService;
  images: ImageService;
}

let current: Runtime | undefined;

export function runtime(): Runtime {
  current ??= buildRuntime(loadRuntimeConfig(process.env));
  return current;
}

export function buildRuntime(config: RuntimeConfig, clock: Clock = systemClock): Runtime {
  const byRegion = new Map<string, AwsClients>();
  const awsFor = (region: string): AwsClients => {
    let clients = byRegion.get(region);
    if (!clients) {
      clients = createAwsClients(config.registry.get(region));
      byRegion.set(region, clients);
    }
    return clients;
  };
  const own = () => awsFor(config.region.name);
  const table = config.region.table;
  const imageAccess: ImageAccess = { regionBucket: config.region.bucket, extraBuckets: config.imageBuckets };
  // Each part is built once, on first use: a function pays at cold start only for what it touches.
  const volumeRepo = once(() => new DynamoVolumeRepository(own().documents, table));
  const nowSeconds = () => Math.floor(clock.now() / 1000);
  const snapshotRepo = once(() => new DynamoSnapshotRepository(own().documents, table, nowSeconds));
  const objects = once(() => new S3ObjectStore(own().s3, config.region.bucket));
  const queue = once(() => new SqsWorkQueue(own().sqs, config.region.queueUrl));
  // Identity is written in the identity region; each request reads this region's replica first.
  const identity = once(() => {
    const home = config.registry.get(config.identityRegion);
    return new DynamoIdentityRepository(awsFor(home.name).documents, config.identityTable ?? home.table);
  });
  const identityLookups = once(() =>
    config.identityTable && config.identityRegion !== config.region.name
      ? replicaFirst(new DynamoIdentityRepository(own().documents, config.identityTable), identity())
      : identity(),
  );
  const authenticate = once(() => keyAuthenticator(identityLookups(), clock));
  const audit = once(() => new DynamoAuditLog(own().documents, table, nowSeconds));
  const uploadSlots = once(() => new DynamoUploadSlots(own().documents, table));
  const limiter = once(
    (): RequestLimiter =>
      new RequestLimiter({
        counter: new DynamoRequestCounter(own().documents, table),
        clock,
        limits: (accountId) => accounts().limits(accountId),
        region: config.region.name,
      }),
  );
  const accounts = once(
    (): AccountService =>
      new AccountService({
        identity: identity(),
        lookups: identityLookups(),
        clock,
        region: config.region.name,
        usage: async (accountId) => ({
          ...(await snapshotRepo().usage(accountId)),
          openUploads: await uploadSlots().count(accountId, clock.now()),
        }),
        defaults: config.defaultQuota,
        requestsInWindow: (accountId) => limiter().inWindow(accountId),
      }),
  );
  const volumes = once(() => new VolumeService(volumeRepo(), clock, config.region.name, imageAccess));
  const snapshots = once(
    () =>
      new SnapshotService({
        compressor: createZstdCompressor(),
        snapshots: snapshotRepo(),
        volumes: volumeRepo(),
        objects: objects(),
        clock,
        region: config.region.name,
        queue: queue(),
        accounts: accounts(),
      }),
  );
  const imageSnapshotter = once(
    () =>
      new ImageSnapshotter({
        snapshots: snapshotRepo(),
        volumes: volumeRepo(),
        objects: objects(),
        objectsIn: (bucket) =>
          bucket === config.region.bucket ? objects() : new S3ObjectStore(own().s3, bucket),
        service: snapshots(),
        compressor: createZstdCompressor(),
        access: imageAccess,
        queue: queue(),
      }),
  );
  // Another region's parts, through the registry, as that region's own functions build them (same
  // rules, same identity): copies read its snapshots, policies' copy rules write copies there.
  const elsewhere = new Map<
    string,
    {
      snapshots: DynamoSnapshotRepository;
      volumes: DynamoVolumeRepository;
      objects: S3ObjectStore;
      service: SnapshotService;
    }
  >();
  const regionParts = (region: string) => {
    let parts = elsewhere.get(region);
    if (!parts) {
      const entry = config.registry.get(region);
      const clients = awsFor(region);
      const repo = new DynamoSnapshotRepository(clients.documents, entry.table, nowSeconds);
      const volumesThere = new DynamoVolumeRepository(clients.documents, entry.table);
      const store = new S3ObjectStore(clients.s3, entry.bucket);
      parts = {
        snapshots: repo,
        volumes: volumesThere,
        objects: store,
        service: new SnapshotService({
          compressor: createZstdCompressor(),
          snapshots: repo,
          volumes: volumesThere,
          objects: store,
          clock,
          region,
          queue: new SqsWorkQueue(clients.sqs, entry.queueUrl),
          accounts: accounts(),
        }),
      };
      elsewhere.set(region, parts);
    }
    return parts;
  };
  const serviceIn = (region: string): SnapshotService =>
    region === config.region.name ? snapshots() : regionParts(region).service;
  const storeIn = (region: string): S3ObjectStore =>
    region === config.region.name ? objects() : regionParts(region).objects;
  const copySource = (region: string) => copySourceOf(serviceIn(region), storeIn(region));
  const copier = once(
    () =>
      new SnapshotCopier({
        region: config.region.name,
        source: copySource,
        snapshots: snapshotRepo(),
        volumes: volumeRepo(),
        objects: objects(),
        service: snapshots(),
        compressor: createZstdCompressor(),
      }),
  );
  // A region as policies use it: this one, or another whose copy rules write copies there (its own
  // table, bucket and queue, through the registry).
  const policyRegions = new Map<string, PolicyRegion>();
  const policyRegion = (region: string): PolicyRegion => {
    if (region === config.region.name)
      return { snapshots: snapshotRepo(), service: snapshots(), copier: copier() };
    let found = policyRegions.get(region);
    if (!found) {
      const parts = regionParts(region);
      found = {
        snapshots: parts.snapshots,
        service: parts.service,
        copier: new SnapshotCopier({
          region,
          source: copySource,
          snapshots: parts.snapshots,
          volumes: parts.volumes,
          objects: parts.objects,
          service: parts.service,
          compressor: createZstdCompressor(),
        }),
      };
      policyRegions.set(region, found);
    }
    return found;
  };
  const exportRepo = once(() => new DynamoExportRepository(own().documents, table));
  const exports = once(
    () =>
      new ExportService({
        exports: exportRepo(),
        snapshots: snapshots(),
        objects: objects(),
        queue: queue(),
        clock,
        region: config.region.name,
        compressor: createZstdCompressor(),
        buckets: config.exportBuckets,
        objectsIn: (bucket) => new S3ObjectStore(own().s3, bucket),
        limits: (accountId) => accounts().limits(accountId),
      }),
  );
  const policyRepo = once(() => new DynamoPolicyRepository(own().documents, table));
  const policies = once(
    () =>
      new PolicyService({
        policies: policyRepo(),
        clock,
        region: config.region.name,
        knownRegions: config.registry.names(),
      }),
  );
  const jobs = once(
    () =>
      new MaintenanceJobs(
        () =>
          new Maintenance({
            snapshots: snapshotRepo(),
            service: snapshots(),
            objects: objects(),
            exports: exportRepo(),
            exportService: exports(),
            queue: queue(),
            clock,
            ...(config.gcGraceMs !== undefined ? { gcGraceMs: config.gcGraceMs } : {}),
          }),
        () =>
          new PolicyRunner({
            policies: policyRepo(),
            volumes: volumeRepo(),
            clock,
            region: config.region.name,
            regionOf: policyRegion,
          }),
      ),
  );
  const importer = once(
    () =>
      new SnapshotImporter({
        open: httpRemoteOpener({ allow: config.importAllow }),
        snapshots: snapshotRepo(),
        volumes: volumeRepo(),
        objects: objects(),
        service: snapshots(),
        compressor: createZstdCompressor(),
        clock,
        region: config.region.name,
        uploads: uploadSlots(),
        limits: (accountId) => accounts().limits(accountId),
      }),
  );
  const instances = once(
    () =>
      new InstanceService(
        new DynamoInstanceRepository(own().documents, table),
        volumeRepo(),
        clock,
        config.region.name,
      ),
  );
  // Another region's images as its own service reads them (for image copies).
  const readers = new Map<string, ImageReader>();
  const imageReaderIn = (region: string): ImageReader => {
    if (region === config.region.name) return images().reader;
    let reader = readers.get(region);
    if (!reader) {
      const entry = config.registry.get(region);
      const clients = awsFor(region);
      reader = new ImageReader(
        new DynamoImageRepository(clients.documents, entry.table),
        new DynamoSnapshotRepository(clients.documents, entry.table, nowSeconds),
        clock,
      );
      readers.set(region, reader);
    }
    return reader;
  };
  const images = once(
    () =>
      new ImageService({
        images: new DynamoImageRepository(own().documents, table),
        snapshotRecords: snapshotRepo(),
        snapshots: snapshots(),
        volumeRecords: volumeRepo(),
        volumes: volumes(),
        instances: instances(),
        accounts: accounts(),
        clock,
        region: config.region.name,
        copier: copier(),
        exports: exports(),
        readerIn: imageReaderIn,
      }),
  );
  return {
    config,
    clock,
    get aws() {
      return own();
    },
    awsFor,
    authenticate: (authorization) => authenticate()(authorization),
    get accounts() {
      return accounts();
    },
    get limiter() {
      return limiter();
    },
    get audit() {
      return audit();
    },
    get volumes() {
      return volumes();
    },
    get snapshots() {
      return snapshots();
    },
    get imageSnapshotter() {
      return imageSnapshotter();
    },
    get copier() {
      return copier();
    },
    get exports() {
      return exports();
    },
    get jobs() {
      return jobs();
    },
    get policies() {
      return policies();
    },
    get instances() {
      return instances();
    },
    get images() {
      return images();
    },
    get importer() {
      return importer();
    },
  };
}

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}
