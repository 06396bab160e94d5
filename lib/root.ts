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
import { replicaFirst } from './core/identity/replica-identity.ts';
import type { ObjectStore } from './core/ports/objects.ts';
import type { Clock } from './core/shared/clock.ts';
import { Cloud, lazily, type RegionPorts, type RegionSettings } from './wiring/region.ts';
import { type RegionServices, servicesOf } from './wiring/services.ts';

/**
 * The composition root: the one place handlers get their configuration, clients and services from.
 * Built once per Lambda container and reused by every invocation. Everything is made on first use,
 * not at import: a function pays at cold start only for the clients and services it touches.
 */
export interface Runtime extends RegionServices {
  config: RuntimeConfig;
  clock: Clock;
  /** Clients of this region's services. */
  aws: AwsClients;
  /** Clients of another region's services (cross-region copy); created on first use, then kept. */
  awsFor(region: string): AwsClients;
}

let current: Runtime | undefined;

export function runtime(): Runtime {
  current ??= buildRuntime(loadRuntimeConfig(process.env));
  return current;
}

/**
 * This region's services, wired (lib/wiring) over DynamoDB, S3 and SQS adapters; another region's,
 * for copies and copy rules, over its own table, bucket and queue from the registry.
 */
export function buildRuntime(config: RuntimeConfig, clock: Clock = systemClock): Runtime {
  const clients = new Map<string, AwsClients>();
  const awsFor = (region: string): AwsClients => {
    let made = clients.get(region);
    if (!made) {
      made = createAwsClients(config.registry.get(region));
      clients.set(region, made);
    }
    return made;
  };
  const cloud = new Cloud((name) => awsRegionPorts(config, name, awsFor, clock));
  const own = {
    config,
    clock,
    get aws() {
      return awsFor(config.region.name);
    },
    awsFor,
  };
  const services = servicesOf(cloud.region(config.region.name));
  return Object.defineProperties(services, Object.getOwnPropertyDescriptors(own)) as Runtime;
}

/** What a region's services know of it: this region's from its configuration, another's from the registry. */
function settingsOf(config: RuntimeConfig, name: string): RegionSettings {
  const entry = config.registry.get(name);
  const here = name === config.region.name;
  return {
    name,
    bucket: entry.bucket,
    imageBuckets: here ? config.imageBuckets : [],
    exportBuckets: here ? config.exportBuckets : [],
    knownRegions: config.registry.names(),
    defaultQuota: config.defaultQuota,
    ...(here && config.gcGraceMs !== undefined
      ? { tuning: { maintenance: { gcGraceMs: config.gcGraceMs } } }
      : {}),
  };
}

/** A region's adapters over its table, bucket and queue; identity over the identity region's table. */
function awsRegionPorts(
  config: RuntimeConfig,
  name: string,
  awsFor: (region: string) => AwsClients,
  clock: Clock,
): RegionPorts {
  const settings = settingsOf(config, name);
  const { table, bucket, queueUrl } = config.registry.get(name);
  const documents = () => awsFor(name).documents;
  const nowSeconds = () => Math.floor(clock.now() / 1000);
  const buckets = new Map<string, ObjectStore>();
  const ports: RegionPorts = lazily<RegionPorts>({
    settings: () => settings,
    clock: () => clock,
    // Identity is written in the identity region's replica; each request reads this region's first.
    identity: () => {
      const home = config.registry.get(config.identityRegion);
      return new DynamoIdentityRepository(awsFor(home.name).documents, config.identityTable ?? home.table);
    },
    identityLookups: () =>
      config.identityTable && config.identityRegion !== name
        ? replicaFirst(new DynamoIdentityRepository(documents(), config.identityTable), ports.identity)
        : ports.identity,
    audit: () => new DynamoAuditLog(documents(), table, nowSeconds),
    requests: () => new DynamoRequestCounter(documents(), table),
    volumes: () => new DynamoVolumeRepository(documents(), table),
    snapshots: () => new DynamoSnapshotRepository(documents(), table, nowSeconds),
    exports: () => new DynamoExportRepository(documents(), table),
    policies: () => new DynamoPolicyRepository(documents(), table),
    instances: () => new DynamoInstanceRepository(documents(), table),
    images: () => new DynamoImageRepository(documents(), table),
    uploads: () => new DynamoUploadSlots(documents(), table),
    objects: () => new S3ObjectStore(awsFor(name).s3, bucket),
    objectsIn: () => (other) => {
      if (other === bucket) return ports.objects;
      let store = buckets.get(other);
      if (!store) {
        store = new S3ObjectStore(awsFor(name).s3, other);
        buckets.set(other, store);
      }
      return store;
    },
    queue: () => new SqsWorkQueue(awsFor(name).sqs, queueUrl),
    compressor: () => createZstdCompressor(),
    openRemote: () => httpRemoteOpener({ allow: config.importAllow }),
  });
  return ports;
}
