// The API's resources have the shapes of the core's (type-only: nothing of core runs in the client).
export type { DiskFormat } from '../../core/format/disk-format.ts';
export type { SegmentRange } from '../../core/format/restore-plan.ts';
export type {
  Account,
  AccountUsage,
  ApiKeyInfo,
  IssuedKey,
  IssuedSigV4Key,
  QuotaLimits,
  User,
} from '../../core/identity/accounts.ts';
export type { Permission, Role } from '../../core/identity/identity.ts';
export type { Image, ImageDeletion, ImageSnapshot, Launch } from '../../core/instances/images.ts';
export type { AttachedVolume, Instance, InstanceState } from '../../core/instances/instances.ts';
export type {
  CopyRule,
  CreatePolicyInput,
  Policy,
  PolicyChanges,
  PolicyRetention,
  PolicyRunReport,
  PolicySchedule,
} from '../../core/maintenance/policies.ts';
export type { AccountCheck, RegionCheckPage } from '../../core/maintenance/region-check.ts';
export type { AuditEntry } from '../../core/ports/audit.ts';
export type {
  ManifestUrl,
  SegmentRangeUrl,
  SegmentUrl,
  SnapshotDeletion,
  SnapshotDiff as ChangedBlocks,
  UploadUrls,
} from '../../core/snapshots/snapshot-service.ts';
export type {
  Snapshot,
  SnapshotScope,
  SnapshotState,
  StoredSegment,
} from '../../core/snapshots/snapshots.ts';
export type { Export } from '../../core/tasks/exports.ts';
export type { UploadStart } from '../../core/tasks/imports.ts';
export type { BadBlock, Verification, VerificationResult } from '../../core/tasks/verifications.ts';
export type { Volume, VolumeDeletion } from '../../core/volumes/volumes.ts';
