import { describe, expect, it } from 'vitest';
import { wrongSecret } from '../../support/sigv4-keys.ts';

describe('wrongSecret', () => {
  it('changes the last character of every secret, those ending in A too', () => {
    for (const secret of ['abcdefA', 'abcdefB', 'abcdefz', 'A']) {
      const wrong = wrongSecret(secret);
      expect(wrong).not.toBe(secret);
      expect(wrong).toHaveLength(secret.length);
      expect(wrong.slice(0, -1)).toBe(secret.slice(0, -1));
    }
  });
});
