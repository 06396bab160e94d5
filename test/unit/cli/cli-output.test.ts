import { describe, expect, it } from 'vitest';
import { deletedRecord, jsonRecord, printJson } from '../../../lib/cli/output.ts';

describe('the CLI JSON rule', () => {
  it('names every size in bytes sizeBytes: a snapshot volumeSize, an export size', () => {
    expect(jsonRecord({ snapshotId: 'snap-1', volumeSize: 1024, blockSize: 512 })).toEqual({
      snapshotId: 'snap-1',
      sizeBytes: 1024,
      blockSize: 512,
    });
    expect(jsonRecord({ exportId: 'exp-1', size: 7 })).toEqual({ exportId: 'exp-1', sizeBytes: 7 });
    expect(jsonRecord({ volumeId: 'vol-1', sizeBytes: 9 })).toEqual({ volumeId: 'vol-1', sizeBytes: 9 });
  });

  it('leaves tags and nested reports alone, and keeps the order of the fields', () => {
    const record = jsonRecord({ snapshotId: 's', volumeSize: 1, tags: { size: 'big' }, report: { size: 3 } });
    expect(Object.keys(record)).toEqual(['snapshotId', 'sizeBytes', 'tags', 'report']);
    expect(record.tags).toEqual({ size: 'big' });
    expect(record.report).toEqual({ size: 3 });
  });

  it('prints arrays record by record, and a delete as {<id field>: id, deleted: true}', () => {
    let printed = '';
    printJson((text) => (printed += text), [{ snapshotId: 'a', volumeSize: 1 }]);
    expect(JSON.parse(printed)).toEqual([{ snapshotId: 'a', sizeBytes: 1 }]);
    expect(deletedRecord('policyId', 'pol-1')).toEqual({ policyId: 'pol-1', deleted: true });
  });
});
