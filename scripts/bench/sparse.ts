// The sparse case of `npm run bench`: an image 64 times the bench's size holding the bench image's
// bytes (a 64 GiB file with 1 GiB of data at the default size), where OpenStack's S3 backup driver
// read and hashed every hole. volsnap skips the holes of a sparse source (SEEK_DATA, see
// lib/client/data-extents.ts) and restores to a sparse file, so both should cost about what the
// dense image costs.
import { open, rm, truncate, writeFile } from 'node:fs/promises';
import { dataCursor } from '../../lib/client/data-extents.ts';

/** How much larger than the bench image the sparse image is. */
export const SPARSE_FACTOR = 64;
const CHUNK = 16 * 2 ** 20;

/**
 * Writes `path`: a sparse file of `SPARSE_FACTOR` × the size of `image`, holding the image's bytes in
 * 16 MiB chunks spread evenly over it (chunk i at i × (sparse size ÷ chunks)), holes elsewhere.
 * Returns its size.
 */
export async function makeSparseImage(image: string, path: string): Promise<number> {
  const source = await open(image, 'r');
  const { size } = await source.stat();
  const sparseSize = size * SPARSE_FACTOR;
  await rm(path, { force: true });
  await writeFile(path, '');
  await truncate(path, sparseSize);
  const target = await open(path, 'r+');
  try {
    const chunks = Math.ceil(size / CHUNK);
    const spacing = Math.floor(sparseSize / chunks / CHUNK) * CHUNK;
    const buffer = Buffer.alloc(CHUNK);
    for (let i = 0; i < chunks; i++) {
      const { bytesRead } = await source.read(buffer, 0, CHUNK, i * CHUNK);
      await target.write(buffer, 0, bytesRead, i * spacing);
    }
  } finally {
    await source.close();
    await target.close();
  }
  return sparseSize;
}

/**
 * Whether two files hold the same bytes, reading only where either holds data (where both have
 * holes both read as zeros): comparing 64 GiB of holes byte for byte would cost more than what is
 * measured. Needs a filesystem that reports holes; otherwise it compares everything.
 */
export async function sameSparseContent(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    if (sa.size !== sb.size) return false;
    const [ca, cb] = await Promise.all([dataCursor(fa, sa.size), dataCursor(fb, sb.size)]);
    const whole = {
      next: (offset: number) => (offset < sa.size ? { start: offset, end: sa.size } : undefined),
    };
    const cursors = [ca ?? whole, cb ?? whole];
    const x = Buffer.alloc(CHUNK);
    const y = Buffer.alloc(CHUNK);
    let offset = 0;
    while (offset < sa.size) {
      const ranges = cursors.map((c) => c.next(offset)).filter((r) => r !== undefined);
      if (ranges.length === 0) return true;
      const start = Math.min(...ranges.map((r) => r.start));
      const end = Math.min(start + CHUNK, sa.size);
      const [ra, rb] = await Promise.all([
        fa.read(x, 0, end - start, start),
        fb.read(y, 0, end - start, start),
      ]);
      if (ra.bytesRead !== rb.bytesRead || !x.subarray(0, ra.bytesRead).equals(y.subarray(0, rb.bytesRead)))
        return false;
      offset = end;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
