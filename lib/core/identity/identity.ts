import { VolsnapError } from '../shared/errors.ts';

/**
 * Roles inside an account. Owners and admins may do everything in their account (admins cannot
 * touch owners or make admins); members may read everything in their account and do what their
 * permissions allow.
 */
export const ROLES = ['owner', 'admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

/** What a member may be granted. Reading (list, show, restore, diff) needs no permission. */
export const PERMISSIONS = [
  'volume:create',
  'volume:delete',
  'snapshot:create',
  'snapshot:update',
  'snapshot:delete',
  'snapshot:share',
  'snapshot:export',
  'snapshot:copy',
  'snapshot:import',
  'policy:manage',
  /** Register, attach and detach volumes, mark running or stopped, delete instances. */
  'instance:manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Who is calling: the user an API key belongs to, in its account. */
export interface Caller {
  accountId: string;
  userName: string;
  keyId: string;
  role: Role;
  /** Explicit grants of a member (owners and admins hold every permission). */
  permissions: Permission[];
  /** A key of the service operator's account (owner or admin there): may create accounts and set quotas. */
  operator: boolean;
}

export function isAdmin(caller: { role: Role }): boolean {
  return caller.role === 'owner' || caller.role === 'admin';
}

export function hasPermission(caller: Caller, permission: Permission): boolean {
  return isAdmin(caller) || caller.permissions.includes(permission);
}

/** Throws `auth.forbidden` unless the caller holds `permission`. */
export function requirePermission(caller: Caller, permission: Permission): void {
  if (!hasPermission(caller, permission)) {
    throw new VolsnapError(
      'auth.forbidden',
      `Your user lacks the permission ${permission}. Ask an admin of your account to grant it (volsnap admin user update ${caller.userName} --permission ${permission}).`,
      { details: { permission } },
    );
  }
}

/** Throws `auth.forbidden` unless the caller is an owner or admin of its account. */
export function requireAdmin(caller: Caller): void {
  if (!isAdmin(caller)) {
    throw new VolsnapError('auth.forbidden', 'Only owners and admins of the account can do this.', {
      details: { role: caller.role },
    });
  }
}

/**
 * Throws `auth.forbidden` unless the caller acts for the service operator; `what` is what was
 * refused, for the message ("run the region's scheduled jobs").
 */
export function requireOperator(caller: Caller, what = 'manage accounts and quotas'): void {
  if (!caller.operator) {
    throw new VolsnapError('auth.forbidden', `Only the service operator's owners and admins can ${what}.`);
  }
}

/**
 * Throws `auth.forbidden` unless the caller's account owns the resource it can read: a shared or
 * public one may be read by others, changed only by its owner. `kind` and `id` name it ("Snapshot",
 * "snap-…"); `details` go with the error.
 */
export function requireOwner(
  caller: Caller,
  resource: { accountId: string },
  what: { kind: string; id: string; verb: string; details: Record<string, string> },
): void {
  if (resource.accountId !== caller.accountId) {
    throw new VolsnapError(
      'auth.forbidden',
      `${what.kind} ${what.id} belongs to another account: only its owner can ${what.verb} it.`,
      { details: what.details },
    );
  }
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}
