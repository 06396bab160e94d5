import { describe, expect, it } from 'vitest';
import { ebsErrorResponse } from '../../../../lib/http/ebs/protocol.ts';

describe('ebsErrorResponse of errors no adapter translated', () => {
  it('answers a backend timeout or reset 503 InternalServerException, which the SDKs retry; a bug 500', () => {
    const timedOut = Object.assign(new Error('Connection timed out'), { name: 'TimeoutError' });
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (const error of [timedOut, reset]) {
      const answer = ebsErrorResponse(error, 'req-1');
      expect(answer.statusCode).toBe(503);
      expect(answer.headers?.['x-amzn-errortype']).toBe('InternalServerException');
    }
    const bug = ebsErrorResponse(new TypeError('x is undefined'), 'req-2');
    expect(bug.statusCode).toBe(500);
    expect(JSON.parse(String(bug.body)).Message).not.toContain('undefined');
  });
});
