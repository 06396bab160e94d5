import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ApiClient, IssuedKey, QuotaLimits, Role, User } from '../client/api-client.ts';
import type { ResolvedConfig } from '../client/config.ts';
import { option, parseDuration, positiveInteger, wholeNumber } from './args.ts';
import { deletedRecord, printRecord, printTable } from './output.ts';
import { formatSize, parseSize } from './units.ts';

type Io = { out: (text: string) => void; err: (text: string) => void };
type Client = () => { api: ApiClient; config: ResolvedConfig; json: boolean };

const ROLE_CHOICES: Role[] = ['owner', 'admin', 'member'];

/** `volsnap account …` (any user: who am I, usage, audit, settings) and `volsnap admin …` (users, keys, accounts, quotas). */
export function addAccountCommands(program: Command, client: Client, io: Io): void {
  const account = program
    .command('account')
    .description('your account: who you are, its usage and quotas, its audit trail');
  account
    .command('show')
    .description('the account, user, role and permissions of your API key')
    .action(async () => {
      const { api, json } = client();
      const me = await api.whoami();
      printRecord(
        io.out,
        json
          ? me
          : {
              account: `${me.account.name} (${me.account.accountId})`,
              user: me.user.userName,
              role: me.user.role,
              permissions:
                me.user.role === 'member' ? me.user.permissions.join(', ') || 'none (read only)' : 'all',
              key: me.keyId,
              'public sharing': me.account.blockPublicSharing ? 'blocked' : 'allowed',
              operator: me.account.operator ? 'yes' : undefined,
            },
        json,
      );
    });
  account
    .command('usage')
    .description(
      'what your account uses in this region (snapshots, bytes, work in flight, request rate), beside its limits',
    )
    .action(async () => {
      const { api, json } = client();
      const usage = await api.usage();
      if (json) {
        printRecord(io.out, usage, true);
        return;
      }
      const bytes = (n: number) => `${formatSize(n)} (${n})`;
      printTable(
        io.out,
        [
          { quota: 'snapshots', used: usage.snapshots.used, limit: usage.snapshots.limit },
          {
            quota: 'stored bytes (snapshots and exports)',
            used: bytes(usage.storedBytes.used),
            limit: bytes(usage.storedBytes.limit),
          },
          { quota: '  of which exports', used: bytes(usage.storedBytes.exports), limit: '' },
          { quota: 'snapshots being written', ...usage.pendingSnapshots },
          { quota: '  on any one volume', used: '', limit: usage.pendingSnapshotsPerVolume.limit },
          { quota: 'copies in flight', ...usage.copiesInFlight },
          { quota: 'imports in flight', ...usage.importsInFlight },
          { quota: 'exports in flight', ...usage.exportsInFlight },
          { quota: 'open uploads', ...usage.openUploads },
          {
            quota: `requests in the last ${usage.requestRate.perSeconds} s`,
            used: usage.requestRate.used,
            limit: `${usage.requestRate.limit} (${usage.requestRate.requestsPerSecond}/s)`,
          },
        ],
        ['quota', 'used', 'limit'],
        false,
      );
      io.out(`region ${usage.region}, account ${usage.accountId}\n`);
    });
  account
    .command('audit')
    .description('who changed what, when, with which key (owners and admins), newest first')
    .option('--limit <n>', 'at most this many', option(positiveInteger), 50)
    .action(async (options: { limit: number }) => {
      const { api, json } = client();
      const page = await api.audit({ limit: options.limit });
      printTable(
        io.out,
        json
          ? page.events
          : page.events.map((e) => ({
              at: e.at,
              user: e.userName,
              key: e.keyId,
              action: e.action,
              target: Object.values(e.target).join(' ') || '-',
              status: e.status,
            })),
        ['at', 'user', 'key', 'action', 'target', 'status'],
        json,
      );
    });
  account
    .command('settings')
    .description('account-wide settings (owners and admins)')
    .addOption(
      new Option(
        '--block-public-sharing',
        'no snapshot of the account can be public (published ones stop being)',
      ).conflicts('allowPublicSharing'),
    )
    .addOption(new Option('--allow-public-sharing', 'snapshots may be published again'))
    .option(
      '--recycle-bin-days <days>',
      'how long deleted snapshots stay recoverable with `snapshot undelete` (0: deleted at once; default 7)',
      option(wholeNumber),
    )
    .action(
      async (options: {
        blockPublicSharing?: boolean;
        allowPublicSharing?: boolean;
        recycleBinDays?: number;
      }) => {
        const { api, json } = client();
        const block = options.blockPublicSharing ? true : options.allowPublicSharing ? false : undefined;
        const changes = {
          ...(block !== undefined ? { blockPublicSharing: block } : {}),
          ...(options.recycleBinDays !== undefined ? { recycleBinDays: options.recycleBinDays } : {}),
        };
        const updated =
          Object.keys(changes).length === 0 ? (await api.whoami()).account : await api.updateAccount(changes);
        printRecord(
          io.out,
          json
            ? updated
            : {
                account: updated.accountId,
                name: updated.name,
                'public sharing': updated.blockPublicSharing ? 'blocked' : 'allowed',
                'recycle bin': `${updated.recycleBinDays ?? 7} days`,
              },
          json,
        );
      },
    );

  const admin = program
    .command('admin')
    .description("manage your account's users and API keys; the operator manages accounts and quotas");
  const user = admin.command('user').description('users of your account (owners and admins)');
  user
    .command('create')
    .description('add a user; members act only with the permissions given')
    .argument('<user-name>')
    .addOption(new Option('--role <role>', 'owner, admin or member').choices(ROLE_CHOICES).default('member'))
    .option(
      '--permission <permission>',
      'a permission of a member, e.g. snapshot:create (repeat for more)',
      collect,
      [],
    )
    .action(async (userName: string, options: { role: Role; permission: string[] }) => {
      const { api, json } = client();
      const created = await api.createUser({ userName, role: options.role, permissions: options.permission });
      printRecord(io.out, json ? created : userRecord(created), json);
    });
  user
    .command('list')
    .description("your account's users")
    .action(async () => {
      const { api, json } = client();
      const { users } = await api.listUsers();
      printTable(
        io.out,
        json ? users : users.map(userRecord),
        ['user', 'role', 'permissions', 'created'],
        json,
      );
    });
  user
    .command('update')
    .description("change a user's role or permissions (permissions given replace the old ones)")
    .argument('<user-name>')
    .addOption(new Option('--role <role>', 'owner, admin or member').choices(ROLE_CHOICES))
    .option('--permission <permission>', 'a permission (repeat for more)', collect, undefined)
    .option('--no-permissions', 'take every permission away')
    .action(
      async (userName: string, options: { role?: Role; permission?: string[]; permissions: boolean }) => {
        const { api, json } = client();
        const permissions = options.permissions === false ? [] : options.permission;
        const updated = await api.updateUser(userName, { role: options.role, permissions });
        printRecord(io.out, json ? updated : userRecord(updated), json);
      },
    );
  user
    .command('delete')
    .description('delete a user and revoke its keys')
    .argument('<user-name>')
    .action(async (userName: string) => {
      const { api, json } = client();
      await api.deleteUser(userName);
      io.out(
        json
          ? `${JSON.stringify(deletedRecord('userName', userName))}\n`
          : `Deleted user ${userName}; its keys are revoked.\n`,
      );
    });

  const key = admin
    .command('key')
    .description('API keys of your account (owners and admins; anyone may revoke their own)');
  key
    .command('create')
    .description('issue a key: it is shown this once, and only its hash is kept')
    .option('--user <user-name>', 'whose key (default: yours)')
    .option(
      '--expires <duration>',
      'the key stops working after this long, e.g. 30d or 12h',
      option(parseDuration),
    )
    .option('--description <text>', 'what the key is for')
    .action(async (options: { user?: string; expires?: number; description?: string }) => {
      const { api, json } = client();
      const issued = await api.createKey({
        userName: options.user,
        expiresInSeconds: options.expires,
        description: options.description,
      });
      printRecord(io.out, json ? issued : keyRecord(issued), json);
      if (!json) io.err('Store the token now: it cannot be shown again.\n');
    });
  key
    .command('list')
    .description("your account's keys (never their secrets)")
    .option('--user <user-name>', "only this user's keys")
    .action(async (options: { user?: string }) => {
      const { api, json } = client();
      const { keys } = await api.listKeys(options.user);
      printTable(
        io.out,
        json
          ? keys
          : keys.map((k) => ({
              key: k.keyId,
              user: k.userName,
              created: k.createdAt,
              expires: k.expiresAt,
              revoked: k.revokedAt,
              description: k.description,
            })),
        ['key', 'user', 'created', 'expires', 'revoked', 'description'],
        json,
      );
    });
  key
    .command('revoke')
    .description('revoke a key: it stops working at once')
    .argument('<key-id>')
    .action(async (keyId: string) => {
      const { api, json } = client();
      const revoked = await api.revokeKey(keyId);
      printRecord(
        io.out,
        json ? revoked : { key: revoked.keyId, user: revoked.userName, revoked: revoked.revokedAt },
        json,
      );
    });

  const accounts = admin.command('account').description("the deployment's accounts (service operator only)");
  accounts
    .command('create')
    .description("create an account, its owner user and the owner's first key (shown once)")
    .argument('<name>', 'a readable name, unique in the deployment (lower-case letters, digits, -)')
    .option('--owner <user-name>', "the owner user's name", 'owner')
    .action(async (name: string, options: { owner: string }) => {
      const { api, json } = client();
      const created = await api.createAccount({ name, ownerName: options.owner });
      printRecord(
        io.out,
        json
          ? created
          : {
              account: created.account.accountId,
              name: created.account.name,
              owner: created.owner.userName,
              ...keyRecord(created.key),
            },
        json,
      );
      if (!json) io.err("Hand the token to the account's owner now: it cannot be shown again.\n");
    });
  accounts
    .command('list')
    .description('every account')
    .option('--limit <n>', 'at most this many', option(positiveInteger), 100)
    .action(async (options: { limit: number }) => {
      const { api, json } = client();
      const page = await api.listAccounts({ limit: options.limit });
      printTable(
        io.out,
        json
          ? page.accounts
          : page.accounts.map((a) => ({
              id: a.accountId,
              name: a.name,
              created: a.createdAt,
              quota: a.quota ? JSON.stringify(a.quota) : 'default',
            })),
        ['id', 'name', 'created', 'quota'],
        json,
      );
    });
  const quota = admin
    .command('quota')
    .description("accounts' per-region quotas and limits (service operator only)")
    .command('set')
    .description(
      "set an account's per-region limits (those not given keep their value), or reset them all to the defaults",
    )
    .argument('<account>', 'account id or name')
    .option(
      '--bytes <size>',
      'bytes its snapshots and exports may store in each region, e.g. 10TiB',
      option(parseSize),
    );
  for (const [flag, , what] of QUOTA_FLAGS) quota.option(`--${flag} <n>`, what, option(wholeNumber));
  quota
    .option('--reset', 'back to the defaults')
    .action(async (accountRef: string, options: Record<string, number | boolean | undefined>) => {
      const { api, json } = client();
      const given: Partial<QuotaLimits> = {};
      if (options.bytes !== undefined) given.maxStoredBytes = options.bytes as number;
      for (const [flag, limit] of QUOTA_FLAGS) {
        const value = options[camelCase(flag)];
        if (value !== undefined) given[limit] = value as number;
      }
      if (!options.reset && Object.keys(given).length === 0) {
        throw new InvalidArgumentError(
          `give one or more of --bytes, ${QUOTA_FLAGS.map(([f]) => `--${f}`).join(', ')}; or --reset`,
        );
      }
      const result = await api.setQuota(accountRef, options.reset ? {} : given);
      printRecord(
        io.out,
        json
          ? result
          : {
              account: `${result.account.name} (${result.account.accountId})`,
              'stored bytes': `${formatSize(result.limits.maxStoredBytes)} (${result.limits.maxStoredBytes})`,
              ...Object.fromEntries(QUOTA_FLAGS.map(([flag, limit]) => [flag, result.limits[limit]])),
            },
        json,
      );
    });
}

/** The operator's `admin quota set` flags: flag, the limit it sets, and what it bounds. */
const QUOTA_FLAGS: [string, keyof QuotaLimits, string][] = [
  ['snapshots', 'maxSnapshots', 'snapshots it may have in each region'],
  ['pending', 'maxPendingSnapshots', 'snapshots it may be writing at once (queued or pending)'],
  ['pending-per-volume', 'maxPendingSnapshotsPerVolume', 'of those, on one volume'],
  ['copies', 'maxCopiesInFlight', 'copies into a region in flight at once'],
  ['imports', 'maxImportsInFlight', 'imports in flight at once'],
  ['exports', 'maxExportsInFlight', 'exports in flight at once'],
  ['uploads', 'maxOpenUploads', 'uploads for import open at once'],
  ['rate', 'requestsPerSecond', 'API requests per second, sustained'],
  ['burst', 'requestBurst', 'API requests at once (in a window of burst/rate seconds)'],
];

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function userRecord(u: User) {
  return {
    user: u.userName,
    role: u.role,
    permissions: u.role === 'member' ? u.permissions.join(', ') || 'none (read only)' : 'all',
    created: u.createdAt,
  };
}

function keyRecord(k: IssuedKey) {
  return { key: k.keyId, user: k.userName, token: k.token, expires: k.expiresAt ?? 'never' };
}
