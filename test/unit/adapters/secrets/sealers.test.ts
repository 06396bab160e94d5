// Sealed SigV4 secrets: the local key-file sealer (AES-256-GCM) and the KMS envelope sealer, whose
// KMS calls are recorded by a stand-in KMS (no emulator here answers KMS), to check what it sends
// and that a request costs no KMS call once a data key is known.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DecryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { LocalKeySealer } from '../../../../lib/adapters/secrets/aes-gcm.ts';
import { createKeyFile, keyFileSealer } from '../../../../lib/adapters/secrets/key-file.ts';
import { KmsSecretSealer } from '../../../../lib/adapters/secrets/kms.ts';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';

/** A prefix of files in a fresh folder of the run's TMPDIR. */
function tempDir(): string {
  return `${mkdtempSync(join(tmpdir(), 'sealers-'))}/`;
}

describe('the local key-file sealer', () => {
  it('seals without the secret in the sealed text, and opens only with the same key and key id', async () => {
    const prefix = tempDir();
    const [mine, other] = [`${prefix}a.key`, `${prefix}b.key`];
    createKeyFile(mine);
    createKeyFile(other);
    const sealer = keyFileSealer(mine);
    const sealed = await sealer.seal(SECRET, 'key-a');
    expect(sealed).toMatch(/^v1\.local\./);
    expect(sealed).not.toContain(SECRET);
    expect(await sealer.unseal(sealed, 'key-a')).toBe(SECRET);
    // Two seals of one secret differ (a fresh nonce each).
    expect(await sealer.seal(SECRET, 'key-a')).not.toBe(sealed);
    await expect(keyFileSealer(other).unseal(sealed, 'key-a')).rejects.toThrow(/sealed with another key/);
    await expect(sealer.unseal(sealed, 'key-b')).rejects.toThrow(/does not open/);
    const parts = sealed.split('.');
    parts[4] = Buffer.from('x'.repeat(40)).toString('base64url');
    await expect(sealer.unseal(parts.join('.'), 'key-a')).rejects.toThrow(/does not open/);
  });

  it('keeps an existing key file (seals survive a restart) and refuses a malformed one', async () => {
    const prefix = tempDir();
    const file = `${prefix}k.key`;
    createKeyFile(file);
    const before = readFileSync(file, 'utf8');
    const sealed = await keyFileSealer(file).seal(SECRET, 'key-a');
    createKeyFile(file);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(await keyFileSealer(file).unseal(sealed, 'key-a')).toBe(SECRET);
    writeFileSync(file, 'not a key\n');
    expect(() => keyFileSealer(file)).toThrow(/64 hex digits/);
  });

  it('a wrong-length key is refused', () => {
    expect(() => new LocalKeySealer(randomBytes(16))).toThrow(/32 bytes/);
  });
});

/** A KMS stand-in: data keys "encrypted" by remembering them, every command recorded. */
function standInKms() {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const wrapped = new Map<string, Uint8Array>();
  let failNextDecrypt = false;
  return {
    sent,
    failNextDecrypt: () => {
      failNextDecrypt = true;
    },
    send: (async (command: GenerateDataKeyCommand | DecryptCommand) => {
      sent.push({ name: command.constructor.name, input: { ...command.input } as Record<string, unknown> });
      if (command instanceof GenerateDataKeyCommand) {
        const plain = new Uint8Array(randomBytes(32));
        const blob = new Uint8Array(randomBytes(48));
        wrapped.set(Buffer.from(blob).toString('hex'), plain);
        return { CiphertextBlob: blob, Plaintext: plain, KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/k' };
      }
      if (failNextDecrypt) {
        failNextDecrypt = false;
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      }
      const plain = wrapped.get(Buffer.from(command.input.CiphertextBlob as Uint8Array).toString('hex'));
      if (!plain)
        throw Object.assign(new Error('invalid ciphertext'), { name: 'InvalidCiphertextException' });
      return { Plaintext: plain };
    }) as never,
  };
}

describe('the KMS envelope sealer', () => {
  const KEY = 'arn:aws:kms:eu-west-1:111122223333:alias/volsnap-prod-identity';

  it('asks KMS for one AES-256 data key per period under its encryption context, and never sends the secret', async () => {
    const kms = standInKms();
    let now = 0;
    const sealer = new KmsSecretSealer({ kms, keyId: KEY, now: () => now, dataKeyTtlMs: 60_000 });
    const first = await sealer.seal(SECRET, 'key-a');
    const second = await sealer.seal(SECRET, 'key-b');
    expect(kms.sent).toEqual([
      {
        name: 'GenerateDataKeyCommand',
        input: { KeyId: KEY, KeySpec: 'AES_256', EncryptionContext: { purpose: 'volsnap-sealed-secret' } },
      },
    ]);
    expect(first.split('.')[2]).toBe(second.split('.')[2]); // the same data key, within its period
    for (const sealed of [first, second]) {
      expect(sealed).toMatch(/^v1\.kms\./);
      expect(sealed).not.toContain(SECRET);
    }
    expect(JSON.stringify(kms.sent)).not.toContain(SECRET);
    // Its own seals open without KMS; after the period a new data key seals.
    expect(await sealer.unseal(first, 'key-a')).toBe(SECRET);
    expect(kms.sent).toHaveLength(1);
    now = 60_001;
    const third = await sealer.seal(SECRET, 'key-c');
    expect(kms.sent.map((c) => c.name)).toEqual(['GenerateDataKeyCommand', 'GenerateDataKeyCommand']);
    expect(third.split('.')[2]).not.toBe(first.split('.')[2]);
  });

  it('opens another container’s seals with one Decrypt per data key, then from its cache; a failed Decrypt is asked again', async () => {
    const kms = standInKms();
    const writer = new KmsSecretSealer({ kms, keyId: KEY, now: () => 0 });
    const sealed = await writer.seal(SECRET, 'key-a');
    const reader = new KmsSecretSealer({ kms, keyId: KEY, now: () => 0 });
    kms.sent.length = 0;
    kms.failNextDecrypt();
    await expect(reader.unseal(sealed, 'key-a')).rejects.toThrow(/Rate exceeded/);
    for (let i = 0; i < 5; i++) expect(await reader.unseal(sealed, 'key-a')).toBe(SECRET);
    expect(kms.sent).toHaveLength(2);
    expect(kms.sent[1]).toEqual({
      name: 'DecryptCommand',
      input: {
        KeyId: KEY,
        CiphertextBlob: expect.any(Uint8Array),
        EncryptionContext: { purpose: 'volsnap-sealed-secret' },
      },
    });
    // Bound to its key id: a seal moved onto another key record does not open.
    await expect(reader.unseal(sealed, 'key-b')).rejects.toThrow(/does not open/);
    await expect(reader.unseal('v1.local.x.y.z.w', 'key-a')).rejects.toThrow(/unknown format/);
  });
});
