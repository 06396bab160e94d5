import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CallRecorder, readCallCounts } from '../../../scripts/local-cloud/aws-calls.ts';

describe('the local cloud’s call counts', () => {
  it('counts every request, not only distinct ones, summed over the recording processes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volsnap-counts-'));
    expect(readCallCounts(dir)).toEqual({});
    const s3 = new CallRecorder(dir, 's3 eu-west-1');
    const other = new CallRecorder(dir, 's3 us-east-1');
    for (let i = 0; i < 3; i++) s3.count('eu-west-1', 's3', 'GetObject');
    s3.count('eu-west-1', 's3', 'PutObject');
    other.count('eu-west-1', 's3', 'GetObject');
    expect(readCallCounts(dir)).toEqual({ 'eu-west-1 s3 GetObject': 4, 'eu-west-1 s3 PutObject': 1 });
  });
});
