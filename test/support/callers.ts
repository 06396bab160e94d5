import type { Caller } from '../../lib/core/identity/identity.ts';
import { newId } from '../../lib/core/shared/ids.ts';

/** A caller for service tests: the owner of a fresh account unless told otherwise. */
export function testCaller(overrides: Partial<Caller> = {}): Caller {
  return {
    accountId: newId('account'),
    userName: 'owner',
    keyId: newId('key'),
    role: 'owner',
    permissions: [],
    operator: false,
    ...overrides,
  };
}
