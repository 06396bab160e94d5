import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { VolsnapError } from '../shared/errors.ts';
import { BLOCK_SIZE } from './blocks.ts';
import type { Manifest } from './manifest.ts';

/**
 * qcow2 version 3 images written from a snapshot, as `qemu-img` reads them (docs/formats.md,
 * "Export: qcow2"). Clusters are 512 KiB, one per volsnap block: a zero block is an unallocated
 * cluster, every other block one data cluster, uncompressed. Like vsnap, the layout is fixed up
 * front, so any byte range of the image can be written on its own. All integers are big-endian.
 *
 *   cluster 0: header | refcount table | refcount blocks | L1 table | L2 tables | data clusters
 */
export const QCOW2_CLUSTER_BITS = 19;
const CLUSTER = 1 << QCOW2_CLUSTER_BITS;
/** 16-bit refcounts (refcount_order 4), as qemu-img makes them. */
const REFCOUNT_ORDER = 4;
const REFCOUNTS_PER_BLOCK = (CLUSTER * 8) / (1 << REFCOUNT_ORDER);
const L2_ENTRIES = CLUSTER / 8;
/** The "copied" flag: the cluster's refcount is exactly 1 (no snapshots share it). */
const COPIED = 1n << 63n;
const HEADER_LENGTH = 104;

export interface Qcow2Layout {
  totalSize: number;
  /** Metadata placed at byte offsets (the rest of its clusters is zeros). */
  metadata: { offset: number; bytes: Buffer }[];
  /** Byte offset of each non-zero block's data cluster. */
  dataOffset: Map<number, number>;
}

/** The image's layout for the manifest's non-zero blocks. */
export function planQcow2(manifest: Manifest): Qcow2Layout {
  if (manifest.blockSize !== CLUSTER) throw new Error('qcow2 export expects 512 KiB blocks');
  const blocks = manifest.volumeSize / BLOCK_SIZE;
  const present = [...new Set(manifest.entries.map((e) => e.blockIndex))].sort((a, b) => a - b);
  const l1Size = Math.max(1, Math.ceil(blocks / L2_ENTRIES));
  const l1Clusters = Math.ceil((l1Size * 8) / CLUSTER);
  const l2Used = [...new Set(present.map((b) => Math.floor(b / L2_ENTRIES)))];
  // The refcount blocks count every cluster, themselves included: grow until they suffice.
  let refcountBlocks = 1;
  let refcountTableClusters = 1;
  let total = 0;
  for (;;) {
    total = 1 + refcountTableClusters + refcountBlocks + l1Clusters + l2Used.length + present.length;
    const neededBlocks = Math.ceil(total / REFCOUNTS_PER_BLOCK);
    const neededTable = Math.ceil((neededBlocks * 8) / CLUSTER);
    if (neededBlocks <= refcountBlocks && neededTable <= refcountTableClusters) break;
    refcountBlocks = neededBlocks;
    refcountTableClusters = neededTable;
  }
  const refcountTableAt = 1;
  const refcountBlocksAt = refcountTableAt + refcountTableClusters;
  const l1At = refcountBlocksAt + refcountBlocks;
  const l2At = l1At + l1Clusters;
  const dataAt = l2At + l2Used.length;

  const header = Buffer.alloc(HEADER_LENGTH + 8); // + the end-of-extensions marker (type 0, length 0)
  header.write('QFI\xfb', 0, 'latin1');
  header.writeUInt32BE(3, 4);
  header.writeUInt32BE(QCOW2_CLUSTER_BITS, 20);
  header.writeBigUInt64BE(BigInt(manifest.volumeSize), 24);
  header.writeUInt32BE(l1Size, 36);
  header.writeBigUInt64BE(BigInt(l1At * CLUSTER), 40);
  header.writeBigUInt64BE(BigInt(refcountTableAt * CLUSTER), 48);
  header.writeUInt32BE(refcountTableClusters, 56);
  header.writeUInt32BE(REFCOUNT_ORDER, 96);
  header.writeUInt32BE(HEADER_LENGTH, 100);

  const refcountTable = Buffer.alloc(refcountBlocks * 8);
  for (let i = 0; i < refcountBlocks; i++)
    refcountTable.writeBigUInt64BE(BigInt((refcountBlocksAt + i) * CLUSTER), i * 8);
  const refcounts = Buffer.alloc(total * 2);
  for (let c = 0; c < total; c++) refcounts.writeUInt16BE(1, c * 2);

  const l1 = Buffer.alloc(l1Size * 8);
  const l2Tables = new Map<number, Buffer>();
  l2Used.forEach((l1Index, i) => {
    l1.writeBigUInt64BE(BigInt((l2At + i) * CLUSTER) | COPIED, l1Index * 8);
    l2Tables.set(l1Index, Buffer.alloc(CLUSTER));
  });
  const dataOffset = new Map<number, number>();
  present.forEach((block, i) => {
    const offset = (dataAt + i) * CLUSTER;
    dataOffset.set(block, offset);
    const table = l2Tables.get(Math.floor(block / L2_ENTRIES)) as Buffer;
    table.writeBigUInt64BE(BigInt(offset) | COPIED, (block % L2_ENTRIES) * 8);
  });
  return {
    totalSize: total * CLUSTER,
    metadata: [
      { offset: 0, bytes: header },
      { offset: refcountTableAt * CLUSTER, bytes: refcountTable },
      { offset: refcountBlocksAt * CLUSTER, bytes: refcounts },
      { offset: l1At * CLUSTER, bytes: l1 },
      ...l2Used.map((l1Index, i) => ({
        offset: (l2At + i) * CLUSTER,
        bytes: l2Tables.get(l1Index) as Buffer,
      })),
    ],
    dataOffset,
  };
}

/** What an importer needs of a qcow2 image's header, checked. */
export interface Qcow2Image {
  version: number;
  clusterBits: number;
  /** The virtual disk's size in bytes. */
  size: number;
  l1Size: number;
  l1Offset: number;
}

function unsupported(message: string): VolsnapError {
  return new VolsnapError('import.unsupported', message);
}

/**
 * Parses a qcow2 header (its first 4 KiB or more). Refuses, naming the feature, what volsnap does
 * not import: a backing file, encryption, an external data file, extended L2 entries, zstd
 * compression, an image marked corrupt or left dirty.
 */
export function parseQcow2Header(bytes: Uint8Array): Qcow2Image {
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (h.length < 72 || h.toString('latin1', 0, 4) !== 'QFI\xfb')
    throw new VolsnapError('data.corrupt', 'Not a qcow2 image: it does not start with QFI\\xfb.');
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3)
    throw unsupported(`qcow2 version ${version} is not supported (2 and 3 are).`);
  if (h.readBigUInt64BE(8) !== 0n)
    throw unsupported(
      'The qcow2 image has a backing file: flatten it first (qemu-img convert -O qcow2 in.qcow2 flat.qcow2).',
    );
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21)
    throw new VolsnapError('data.corrupt', `qcow2 cluster bits ${clusterBits} are out of range.`);
  if (h.readUInt32BE(32) !== 0)
    throw unsupported('The qcow2 image is encrypted: decrypt it first (qemu-img convert).');
  if (version === 3) {
    const incompatible = h.readBigUInt64BE(72);
    const headerLength = h.readUInt32BE(100);
    const names: [bigint, string][] = [
      [1n, 'it was not closed cleanly (dirty): repair it with qemu-img check -r all'],
      [2n, 'it is marked corrupt: repair it with qemu-img check -r all'],
      [4n, 'it keeps its data in an external file'],
      [16n, 'it uses extended L2 entries (subclusters)'],
    ];
    for (const [bit, reason] of names)
      if (incompatible & bit) throw unsupported(`The qcow2 image cannot be imported: ${reason}.`);
    if (incompatible & 8n && headerLength > 104 && h.readUInt8(104) !== 0)
      throw unsupported(
        'The qcow2 image uses zstd compression: convert it with deflate (qemu-img convert -c -o compression_type=zlib).',
      );
    if (incompatible & ~31n) throw unsupported('The qcow2 image uses features this importer does not know.');
  }
  return {
    version,
    clusterBits,
    size: Number(h.readBigUInt64BE(24)),
    l1Size: h.readUInt32BE(36),
    l1Offset: Number(h.readBigUInt64BE(40)),
  };
}

/** Where one guest cluster's bytes are. */
export type Qcow2Cluster =
  | { kind: 'zero' }
  | { kind: 'standard'; offset: number }
  | { kind: 'compressed'; offset: number; length: number };

/** Decodes an L2 entry of an image with `clusterBits`. */
export function qcow2Cluster(entry: bigint, clusterBits: number): Qcow2Cluster {
  if (entry & (1n << 62n)) {
    const x = BigInt(62 - (clusterBits - 8));
    const offset = Number(entry & ((1n << x) - 1n));
    const sectors = Number((entry >> x) & ((1n << (62n - x)) - 1n)) + 1;
    return { kind: 'compressed', offset, length: sectors * 512 - (offset % 512) };
  }
  const offset = Number(entry & 0x00fffffffffffe00n);
  // Unallocated (and no backing file), or flagged as reading zeros.
  if (offset === 0 || entry & 1n) return { kind: 'zero' };
  return { kind: 'standard', offset };
}

/** Inflates a compressed cluster (raw deflate, as qemu writes it) to its `clusterSize` bytes. */
export function inflateQcow2Cluster(compressed: Uint8Array, clusterSize: number): Buffer {
  let plain: Buffer;
  try {
    plain = inflateRawSync(compressed, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (cause) {
    throw new VolsnapError(
      'data.corrupt',
      `A compressed qcow2 cluster does not inflate: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  if (plain.length < clusterSize)
    throw new VolsnapError(
      'data.corrupt',
      `A compressed qcow2 cluster inflates to ${plain.length} bytes, not ${clusterSize}.`,
    );
  return plain.subarray(0, clusterSize);
}
