import { VolsnapError } from '../shared/errors.ts';
import { isPermission, type Permission, ROLES, type Role } from './identity.ts';

/** Account names (readable, unique in the deployment) and user names (unique in their account). */
export const ACCOUNT_NAME = /^[a-z][a-z0-9-]{1,62}$/;
export const USER_NAME = /^[a-z][a-z0-9._-]{0,62}$/;

export function validUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new VolsnapError(
      'request.invalid',
      `User name '${name}' is not valid: 1–63 characters, lower-case letters, digits, '.', '_' and '-', starting with a letter.`,
    );
  }
  return name;
}

export function validRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new VolsnapError('request.invalid', `Role '${role}' is not one of ${ROLES.join(', ')}.`);
  }
  return role as Role;
}

export function validPermissions(permissions: string[]): Permission[] {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw new VolsnapError(
      'request.invalid',
      `Unknown permission(s): ${unknown.join(', ')}. Permissions are volume:create, volume:delete, snapshot:create, snapshot:update, snapshot:delete, snapshot:share, snapshot:export, snapshot:copy and snapshot:import.`,
    );
  }
  return [...new Set(permissions as Permission[])].sort();
}

export function accountNotFound(ref: string): VolsnapError {
  return new VolsnapError('account.notFound', `No account ${ref}.`, { details: { account: ref } });
}

export function userNotFound(userName: string): VolsnapError {
  return new VolsnapError('user.notFound', `No user ${userName} in this account.`, {
    details: { userName },
  });
}
