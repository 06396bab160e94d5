import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { LocalKeySealer } from './aes-gcm.ts';

/**
 * The local cloud's sealing key: 32 random bytes, hex, in a file of its data dir (mode 0600).
 * `createKeyFile` makes it once (an existing file is kept, so sealed secrets survive a restart);
 * the region processes read it.
 */
export function createKeyFile(path: string): void {
  try {
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/** A sealer over the key in `path` (throws, naming the file, when it is missing or malformed). */
export function keyFileSealer(path: string): LocalKeySealer {
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) {
    throw new Error(`The sealing key file ${path} must hold 64 hex digits (a 256-bit key).`);
  }
  return new LocalKeySealer(Buffer.from(text, 'hex'));
}
