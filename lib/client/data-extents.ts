/**
 * Where a file holds data, as its filesystem knows it: `lseek(SEEK_DATA)` and `lseek(SEEK_HOLE)`.
 * Outside those ranges a sparse file has holes, which read as zeros: a snapshot need not read or
 * hash them (a 64 GiB image holding 1 GiB of data is read as 1 GiB). Node has no binding for these
 * whence values, so the call goes to libc through koffi's FFI, loaded on first use.
 *
 * Linux only (elsewhere the whence values differ, and every source is read whole). A filesystem
 * without hole support answers every offset as data, which is also what a block device does: then
 * nothing is skipped and nothing is lost.
 */
import type { FileHandle } from 'node:fs/promises';

// Linux's whence values (<unistd.h>) and errno for "no data past this offset".
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

type Lseek = (fd: number, offset: number, whence: number) => number | bigint;
interface Libc {
  lseek: Lseek;
  errno: () => number;
}

let libc: Promise<Libc | undefined> | undefined;

async function loadLibc(): Promise<Libc | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const { default: koffi } = await import('koffi');
    const lseek = koffi.load('libc.so.6').func('int64_t lseek(int fd, int64_t offset, int whence)') as Lseek;
    return { lseek, errno: () => koffi.errno() };
  } catch {
    // No FFI on this platform (or no glibc): read every byte, as before.
    return undefined;
  }
}

/**
 * Finds the data of an open file, range by range, as a read moves forward: `next(offset)` answers
 * the next range holding data at or after `offset` (`undefined`: only holes follow). O(1) memory
 * however fragmented the file; two syscalls per range. Ranges are in the filesystem's allocation
 * unit (4 KiB and up), so a block that shares a range with data is read like any other.
 */
export interface DataCursor {
  next(offset: number): { start: number; end: number } | undefined;
}

/**
 * A {@link DataCursor} over `handle` (a regular file of `size` bytes), or `undefined` when the
 * platform or filesystem cannot tell holes from data: then the caller reads everything.
 */
export async function dataCursor(handle: FileHandle, size: number): Promise<DataCursor | undefined> {
  libc ??= loadLibc();
  const c = await libc;
  if (!c) return undefined;
  const seek = (offset: number, whence: number): number | 'none' | 'unsupported' => {
    const at = Number(c.lseek(handle.fd, offset, whence));
    if (at >= 0) return at;
    return c.errno() === ENXIO ? 'none' : 'unsupported';
  };
  // Probe once: a filesystem that refuses SEEK_DATA (EINVAL) is read whole.
  if (seek(0, SEEK_DATA) === 'unsupported') return undefined;
  return {
    next(offset) {
      if (offset >= size) return undefined;
      const start = seek(offset, SEEK_DATA);
      if (start === 'none') return undefined;
      // Unsupported mid-file (should not happen after the probe): treat the rest as data.
      if (start === 'unsupported') return { start: offset, end: size };
      const end = seek(start, SEEK_HOLE);
      return { start, end: typeof end === 'number' ? Math.min(end, size) : size };
    },
  };
}
