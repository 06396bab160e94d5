// The compressible case of `npm run bench`: real data, not the incompressible keystream images. An
// ext4 filesystem image made from a real directory tree (`mkfs.ext4 -d`, from /usr/share),
// snapshotted by volsnap and backed up by restic (its `auto` compression), comparing the bytes each
// stores and the time each takes.
import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The tree the image is made from. */
const SOURCE = '/usr/share';

/** mkfs.ext4's path, or undefined where e2fsprogs is missing (the compressible rows are skipped). */
async function findMkfs(): Promise<string | undefined> {
  for (const candidate of ['mkfs.ext4', '/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4']) {
    const found = await run(candidate, ['-V']).then(
      () => true,
      () => false,
    );
    if (found) return candidate;
  }
  return undefined;
}

/**
 * Writes `path`: an ext4 image of `size` bytes made from /usr/share when it fills at most 75% of
 * it, else from as many of its top-level directories (in name order) as fit in 70% (copied to
 * `staging` first). The same machine makes the same image. Returns the bytes of the files put in,
 * or undefined when mkfs.ext4 is missing.
 */
export async function makeExt4Image(
  path: string,
  size: number,
  staging: string,
): Promise<number | undefined> {
  const mkfs = await findMkfs();
  if (!mkfs) return undefined;
  const sizes = await directorySizes();
  const whole = [...sizes.values()].reduce((sum, n) => sum + n, 0);
  let tree = SOURCE;
  let taken = whole;
  if (whole > size * 0.75) {
    tree = join(staging, 'tree');
    await rm(staging, { recursive: true, force: true });
    await mkdir(tree, { recursive: true });
    taken = 0;
    for (const [entry, bytes] of [...sizes].sort(([a], [b]) => a.localeCompare(b))) {
      if (taken + bytes > size * 0.7) continue;
      await run('cp', ['-r', '--no-preserve=ownership', join(SOURCE, entry), join(tree, entry)]);
      taken += bytes;
    }
  }
  await rm(path, { force: true });
  // Fixed time and no random UUID/hash seed, so the image is the same from run to run.
  await run(
    mkfs,
    [
      '-q',
      '-F',
      '-U',
      'clear',
      '-E',
      'hash_seed=00000000-0000-0000-0000-000000000000',
      '-d',
      tree,
      path,
      `${Math.floor(size / 1024)}k`,
    ],
    {
      env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000' },
    },
  );
  if (tree !== SOURCE) await rm(staging, { recursive: true, force: true });
  return taken;
}

/** Bytes under each top-level entry of /usr/share (one `du` for all). */
async function directorySizes(): Promise<Map<string, number>> {
  const { stdout } = await run('sh', ['-c', `du -sb '${SOURCE}'/* 2>/dev/null || true`], {
    maxBuffer: 16 * 2 ** 20,
  });
  const sizes = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const [bytes, path] = line.split('\t');
    if (bytes && path) sizes.set(path.slice(SOURCE.length + 1), Number(bytes));
  }
  return sizes;
}
