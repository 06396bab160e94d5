/**
 * The disk image formats a snapshot is imported from and exported to: `vsnap` (volsnap's own, sparse
 * and verifiable, docs/formats.md), `raw` (the plain disk image) and `qcow2` (QEMU's, version 3).
 * One list, so the API's schemas, the CLI's choices and the core's checks cannot drift apart.
 */
export const DISK_FORMATS = ['vsnap', 'raw', 'qcow2'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];
