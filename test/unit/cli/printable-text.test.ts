import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../lib/cli/main.ts';
import { jsonRecord, printRecord, printTable } from '../../../lib/cli/output.ts';
import { validateProperties } from '../../../lib/core/instances/instances.ts';
import * as z from '../../../lib/core/shared/schema.ts';
import { matchesTags, validateTags } from '../../../lib/core/shared/tags.ts';
import { escapeUnprintable, findUnprintable, terminalSafe } from '../../../lib/core/shared/text.ts';
import { testCaller } from '../../support/callers.ts';
import { memoryRegion } from '../../support/memory-region.ts';

/** Every byte a terminal could take as a control: C0 but newline, DEL, C1, and the bidi controls. */
const RAW_CONTROL = /(?![\n])[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
const HOSTILE_NAME = 'ok\u001b]0;pwned-title\u0007\u001b[1A\u001b[2Kfake line';
const HOSTILE_DESCRIPTION = '\u001b[2J\u001b[31mHACKED\u202e\u0000 zero\u009b31m\u2066';

describe('printable text at the core', () => {
  it('finds the first unprintable character and where it is, in code points', () => {
    expect(findUnprintable('日本\u001b')).toEqual({ codePoint: 'U+001B', position: 2 });
    expect(findUnprintable('abc\u202e')).toEqual({ codePoint: 'U+202E', position: 3 });
    expect(findUnprintable('donnée (ok) 🙂')).toBeUndefined();
    expect(escapeUnprintable('a\u001bb\nc\u009b')).toBe('a\\u001bb\\u000ac\\u009b');
    expect(terminalSafe('a\u001bb\nc\td\u202e')).toBe('a\\u001bb\nc\td\\u202e');
  });

  it('snapshot names and descriptions, tags and instance properties refuse them, naming field and character', async () => {
    const { snapshots, volumes } = memoryRegion('r');
    const alice = testCaller();
    const volume = await volumes.register(alice, { name: 'disk', sizeBytes: 512 * 1024 });
    await expect(
      snapshots.create(alice, { volumeId: volume.volumeId, name: HOSTILE_NAME }),
    ).rejects.toMatchObject({
      code: 'request.invalid',
      message: 'The snapshot name contains a control character (U+001B) at position 2; use printable text.',
    });
    await expect(
      snapshots.create(alice, { volumeId: volume.volumeId, description: 'x\u202ey' }),
    ).rejects.toMatchObject({
      message: /snapshot description contains a bidirectional control \(U\+202E\) at position 1/,
    });
    const made = await snapshots.create(alice, { volumeId: volume.volumeId, name: 'fine' });
    await expect(
      snapshots.update(alice, made.snapshotId, { description: HOSTILE_DESCRIPTION }),
    ).rejects.toMatchObject({
      message: /snapshot description contains a control character \(U\+001B\) at position 0/,
    });
    await expect(volumes.register(alice, { name: 'v\u0007', sizeBytes: 512 * 1024 })).rejects.toMatchObject({
      message: /volume name contains a control character \(U\+0007\)/,
    });
    expect(() => validateTags({ k: 'v\u009b' })).toThrow(
      /value of tag 'k' contains a control character \(U\+009B\)/,
    );
    expect(() => validateProperties({ base_image_ref: 'x\u001b[2J' })).toThrow(
      /value of property 'base_image_ref' contains a control character \(U\+001B\) at position 1/,
    );
  });
});

/** A snapshot as another account may have stored it before the API refused such text. */
const planted = {
  snapshotId: 'snap-q0kazhp7ag3z7033',
  accountId: 'acct-nds6aaaaaaaaaaaa',
  volumeId: 'vol-e4v0w3m1qxsjtq5x',
  name: HOSTILE_NAME,
  description: HOSTILE_DESCRIPTION,
  tags: { 'team\u001b[0m': 'a\u202eb' },
  state: 'completed',
  progress: 100,
  volumeSize: 524288,
  blockSize: 524288,
  region: 'eu-west-1',
  createdAt: '2026-12-01T00:00:00.000Z',
  public: true,
};

describe('what the CLI prints', () => {
  it('table and record output escape control and bidi characters; JSON output escapes C1 and bidi as \\u', () => {
    const text: string[] = [];
    printTable((t) => text.push(t), [planted], ['snapshotId', 'name', 'description', 'tags'], false);
    printRecord((t) => text.push(t), planted, false);
    for (const chunk of text) expect(chunk).not.toMatch(RAW_CONTROL);
    expect(text.join('')).toContain('ok\\u001b]0;pwned-title\\u0007');
    const json: string[] = [];
    printRecord((t) => json.push(t), planted, true);
    printTable((t) => json.push(t), [planted], ['name'], true);
    for (const chunk of json) {
      expect(chunk).not.toMatch(RAW_CONTROL);
      expect(JSON.parse(chunk)).toEqual(expect.anything());
    }
    // The record as printed: every field the same (its size named sizeBytes, as everywhere).
    expect(JSON.parse(json[0] ?? '')).toEqual(jsonRecord(planted));
    expect(json[0]).toContain('\\u009b31m');
    expect(json[0]).toContain('\\u202e');
  });

  describe('commands, against an API holding such a snapshot', () => {
    let server: Server;
    let endpoint: string;
    beforeAll(async () => {
      server = createServer((request, response) => {
        response.setHeader('content-type', 'application/json');
        if (request.url?.startsWith('/v1/snapshots/')) response.end(JSON.stringify(planted));
        else if (request.url?.startsWith('/v1/snapshots'))
          response.end(JSON.stringify({ snapshots: [planted] }));
        else {
          response.statusCode = 404;
          response.end(JSON.stringify({ error: 'x.notFound', message: 'no', requestId: 'r' }));
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const run = async (...args: string[]) => {
      const out: string[] = [];
      const previous = process.env.VOLSNAP_API_KEY;
      process.env.VOLSNAP_API_KEY = `vsk_key-0123456789abcdef_${'a'.repeat(43)}`;
      try {
        await buildProgram({ out: (t) => out.push(t), err: (t) => out.push(t) }).parseAsync([
          'node',
          'volsnap',
          '--endpoint',
          endpoint,
          '--region',
          'eu-west-1',
          ...args,
        ]);
      } finally {
        if (previous === undefined) delete process.env.VOLSNAP_API_KEY;
        else process.env.VOLSNAP_API_KEY = previous;
      }
      return out.join('');
    };

    it('`snapshot list --public` and `snapshot show` print no raw control bytes, as tables and as JSON', async () => {
      for (const args of [
        ['snapshot', 'list', '--public'],
        ['snapshot', 'show', planted.snapshotId],
        ['--json', 'snapshot', 'list', '--public'],
        ['--json', 'snapshot', 'show', planted.snapshotId],
      ]) {
        const printed = await run(...args);
        expect(printed, args.join(' ')).toContain('pwned-title');
        expect(printed, args.join(' ')).not.toMatch(RAW_CONTROL);
      }
      const shown = JSON.parse(await run('--json', 'snapshot', 'show', planted.snapshotId));
      expect(shown.description).toBe(HOSTILE_DESCRIPTION);
    });
  });
});

describe('tags named like Object.prototype members', () => {
  it('parse from JSON, validate and match as ordinary keys (constructor, toString, hasOwnProperty, valueOf)', () => {
    const parsed = z
      .record(z.string(), z.string())
      .parse(JSON.parse('{"constructor":"c","toString":"t","hasOwnProperty":"h","valueOf":"v"}'));
    expect(validateTags(parsed)).toEqual({
      constructor: 'c',
      toString: 't',
      hasOwnProperty: 'h',
      valueOf: 'v',
    });
    expect(matchesTags(parsed, { constructor: 'c', valueOf: 'v' })).toBe(true);
    expect(matchesTags(parsed, { constructor: 'x' })).toBe(false);
    // Inherited members are not tags.
    expect(matchesTags({ env: 'prod' }, { constructor: String(Object) })).toBe(false);
    expect(matchesTags({}, { toString: String(Object.prototype.toString) })).toBe(false);
  });
});
