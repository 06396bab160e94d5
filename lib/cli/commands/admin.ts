import { type Command, InvalidArgumentError, Option } from 'commander';
import type { IssuedKey, IssuedSigV4Key, QuotaLimits, Role, User } from '../../client/api-client.ts';
import { awsProfileText } from '../../client/aws-profile.ts';
import { option, parseDuration, positiveInteger, wholeNumber } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printAnswer, printRecord, printRows } from '../output.ts';
import { addDeleteCommand, addRecordCommand } from '../record-commands.ts';
import { formatSize, parseSize } from '../units.ts';
import { permissionsText } from './account.ts';

const ROLE_CHOICES: Role[] = ['owner', 'admin', 'member'];

/**
 * `volsnap admin user|key …` (owners and admins: the account's users and keys) and `volsnap admin
 * account|quota …` (the operator). Answers the group, for `admin run`.
 */
export function addAdminCommands(program: Command, ctx: CliContext): Command {
  const admin = program
    .command('admin')
    .description("manage your account's users and API keys; the operator manages accounts and quotas");
  addUserCommands(admin, ctx);
  addKeyCommands(admin, ctx);
  addAccountsCommands(admin, ctx);
  addQuotaCommand(admin, ctx);
  return admin;
}

function addUserCommands(admin: Command, ctx: CliContext): void {
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
      const { api, json } = ctx.client();
      const created = await api.createUser({ userName, role: options.role, permissions: options.permission });
      printAnswer(ctx.io.out, json, created, userRecord);
    });
  user
    .command('list')
    .description("your account's users")
    .action(async () => {
      const { api, json } = ctx.client();
      const { users } = await api.listUsers();
      printRows(ctx.io.out, json, users, userRecord, ['user', 'role', 'permissions', 'created']);
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
        const { api, json } = ctx.client();
        const permissions = options.permissions === false ? [] : options.permission;
        const updated = await api.updateUser(userName, { role: options.role, permissions });
        printAnswer(ctx.io.out, json, updated, userRecord);
      },
    );
  addDeleteCommand(user, ctx, {
    description: 'delete a user and revoke its keys',
    arg: '<user-name>',
    idField: 'userName',
    remove: (api, userName) => api.deleteUser(userName),
    done: (userName) => `Deleted user ${userName}; its keys are revoked.\n`,
  });
}

function addKeyCommands(admin: Command, ctx: CliContext): void {
  const key = admin
    .command('key')
    .description('API keys of your account (owners and admins; anyone may revoke their own)');
  key
    .command('create')
    .description(
      'issue a key: it is shown this once, and only its hash is kept (--sigv4: an AWS access key pair, kept sealed)',
    )
    .option('--user <user-name>', 'whose key (default: yours)')
    .option(
      '--expires-in <duration>',
      'the key stops working after this long, e.g. 30d or 12h',
      option(parseDuration),
    )
    .addOption(new Option('--expires <duration>').argParser(option(parseDuration)).hideHelp())
    .option('--description <text>', 'what the key is for')
    .option('--sigv4', 'an AWS SigV4 access key pair for the EBS direct APIs, printed also as an AWS profile')
    .option('--profile-name <name>', 'the AWS profile name printed with --sigv4', 'volsnap')
    .action(async (options: KeyCreateOptions) => {
      const { api, json, config } = ctx.client();
      const input = {
        userName: options.user,
        expiresInSeconds: options.expiresIn ?? options.expires,
        description: options.description,
      };
      if (!options.sigv4) {
        const issued = await api.createKey(input);
        printAnswer(ctx.io.out, json, issued, keyRecord);
        if (!json) ctx.io.err('Store the token now: it cannot be shown again.\n');
        return;
      }
      const issued = await api.createSigV4Key(input);
      const profile = awsProfileText({
        profile: options.profileName,
        region: config.region ?? issued.region,
        api: config.endpoint,
        accessKeyId: issued.accessKeyId,
        secretAccessKey: issued.secretAccessKey,
      });
      printSigV4Key(ctx, json, issued, profile);
    });
  key
    .command('list')
    .description("your account's keys (never their secrets)")
    .option('--user <user-name>', "only this user's keys")
    .action(async (options: { user?: string }) => {
      const { api, json } = ctx.client();
      const { keys } = await api.listKeys(options.user);
      printRows(
        ctx.io.out,
        json,
        keys,
        (k) => ({
          key: k.keyId,
          kind: k.kind === 'sigv4' ? `sigv4 ${k.accessKeyId}` : 'api',
          user: k.userName,
          created: k.createdAt,
          expires: k.expiresAt,
          revoked: k.revokedAt,
          description: k.description,
        }),
        ['key', 'kind', 'user', 'created', 'expires', 'revoked', 'description'],
      );
    });
  addRecordCommand(key, ctx, {
    name: 'revoke',
    description: 'revoke a key (a key id, or a SigV4 access key id): it stops working at once',
    args: ['<key-id>'],
    call: (api, keyId) => api.revokeKey(keyId),
    view: (revoked) => ({ key: revoked.keyId, user: revoked.userName, revoked: revoked.revokedAt }),
  });
}

function addAccountsCommands(admin: Command, ctx: CliContext): void {
  const accounts = admin.command('account').description("the deployment's accounts (service operator only)");
  accounts
    .command('create')
    .description("create an account, its owner user and the owner's first key (shown once)")
    .argument('<name>', 'a readable name, unique in the deployment (lower-case letters, digits, -)')
    .option('--owner <user-name>', "the owner user's name", 'owner')
    .action(async (name: string, options: { owner: string }) => {
      const { api, json } = ctx.client();
      const created = await api.createAccount({ name, ownerName: options.owner });
      printAnswer(ctx.io.out, json, created, (c) => ({
        account: c.account.accountId,
        name: c.account.name,
        owner: c.owner.userName,
        ...keyRecord(c.key),
      }));
      if (!json) ctx.io.err("Hand the token to the account's owner now: it cannot be shown again.\n");
    });
  accounts
    .command('list')
    .description('every account')
    .option('--limit <n>', 'at most this many', option(positiveInteger), 100)
    .action(async (options: { limit: number }) => {
      const { api, json } = ctx.client();
      const page = await api.listAccounts({ limit: options.limit });
      printRows(
        ctx.io.out,
        json,
        page.accounts,
        (a) => ({
          id: a.accountId,
          name: a.name,
          created: a.createdAt,
          quota: a.quota ? JSON.stringify(a.quota) : 'default',
        }),
        ['id', 'name', 'created', 'quota'],
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

type QuotaOptions = Record<string, number | boolean | undefined>;

function addQuotaCommand(admin: Command, ctx: CliContext): void {
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
    .action((accountRef: string, options: QuotaOptions) => setQuota(ctx, accountRef, options));
}

async function setQuota(ctx: CliContext, accountRef: string, options: QuotaOptions): Promise<void> {
  const { api, json } = ctx.client();
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
    ctx.io.out,
    json
      ? result
      : {
          account: `${result.account.name} (${result.account.accountId})`,
          'stored bytes': `${formatSize(result.limits.maxStoredBytes)} (${result.limits.maxStoredBytes})`,
          ...Object.fromEntries(QUOTA_FLAGS.map(([flag, limit]) => [flag, result.limits[limit]])),
        },
    json,
  );
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function userRecord(u: User) {
  return { user: u.userName, role: u.role, permissions: permissionsText(u), created: u.createdAt };
}

interface KeyCreateOptions {
  user?: string;
  expiresIn?: number;
  expires?: number;
  description?: string;
  sigv4?: boolean;
  profileName: string;
}

/** The pair (once), and the profile to paste into ~/.aws/config. */
function printSigV4Key(ctx: CliContext, json: boolean, k: IssuedSigV4Key, profile: string): void {
  if (json) {
    const { keyId, userName, accessKeyId, secretAccessKey, expiresAt } = k;
    ctx.io.out(
      `${JSON.stringify({ keyId, userName, accessKeyId, secretAccessKey, ...(expiresAt ? { expiresAt } : {}), profile }, null, 2)}\n`,
    );
    return;
  }
  printRecord(
    ctx.io.out,
    {
      key: k.keyId,
      user: k.userName,
      'access key id': k.accessKeyId,
      'secret access key': k.secretAccessKey,
      expires: k.expiresAt ?? 'never',
    },
    false,
  );
  ctx.io.out(`\nAs an AWS profile (append to ~/.aws/config):\n\n${profile}`);
  ctx.io.err('Store the secret access key now: it cannot be shown again.\n');
}

function keyRecord(k: IssuedKey) {
  return { key: k.keyId, user: k.userName, token: k.token, expires: k.expiresAt ?? 'never' };
}
