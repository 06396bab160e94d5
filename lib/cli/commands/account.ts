import { type Command, Option } from 'commander';
import type { Account, AccountUsage, User } from '../../client/api-client.ts';
import { option, positiveInteger, wholeNumber } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printAnswer, printRecord, printRows, printTable } from '../output.ts';
import { formatSize } from '../units.ts';

/** `volsnap account show|usage|audit|settings`: any user's own account. */
export function addAccountCommands(program: Command, ctx: CliContext): void {
  const account = program
    .command('account')
    .description('your account: who you are, its usage and quotas, its audit trail');
  account
    .command('show')
    .description('the account, user, role and permissions of your API key')
    .action(async () => {
      const { api, json } = ctx.client();
      printAnswer(ctx.io.out, json, await api.whoami(), (me) => ({
        account: `${me.account.name} (${me.account.accountId})`,
        user: me.user.userName,
        role: me.user.role,
        permissions: permissionsText(me.user),
        key: me.keyId,
        'public sharing': me.account.blockPublicSharing ? 'blocked' : 'allowed',
        operator: me.account.operator ? 'yes' : undefined,
      }));
    });
  account
    .command('usage')
    .description(
      'what your account uses in this region (snapshots, bytes, work in flight, request rate), beside its limits',
    )
    .action(async () => {
      const { api, json } = ctx.client();
      const usage = await api.usage();
      if (json) printRecord(ctx.io.out, usage, true);
      else printUsage(ctx.io.out, usage);
    });
  addAudit(account, ctx);
  addSettings(account, ctx);
}

function printUsage(out: (text: string) => void, usage: AccountUsage): void {
  const bytes = (n: number) => `${formatSize(n)} (${n})`;
  printTable(
    out,
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
  out(`region ${usage.region}, account ${usage.accountId}\n`);
}

function addAudit(account: Command, ctx: CliContext): void {
  account
    .command('audit')
    .description('who changed what, when, with which key (owners and admins), newest first')
    .option('--limit <n>', 'at most this many', option(positiveInteger), 50)
    .action(async (options: { limit: number }) => {
      const { api, json } = ctx.client();
      const page = await api.audit({ limit: options.limit });
      printRows(
        ctx.io.out,
        json,
        page.events,
        (e) => ({
          at: e.at,
          user: e.userName,
          key: e.keyId,
          action: e.action,
          target: Object.values(e.target).join(' ') || '-',
          status: e.status,
        }),
        ['at', 'user', 'key', 'action', 'target', 'status'],
      );
    });
}

interface SettingsOptions {
  blockPublicSharing?: boolean;
  allowPublicSharing?: boolean;
  recycleBinDays?: number;
}

function addSettings(account: Command, ctx: CliContext): void {
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
    .action(async (options: SettingsOptions) => {
      const { api, json } = ctx.client();
      const block = options.blockPublicSharing ? true : options.allowPublicSharing ? false : undefined;
      const changes = {
        ...(block !== undefined ? { blockPublicSharing: block } : {}),
        ...(options.recycleBinDays !== undefined ? { recycleBinDays: options.recycleBinDays } : {}),
      };
      const updated =
        Object.keys(changes).length === 0 ? (await api.whoami()).account : await api.updateAccount(changes);
      printAnswer(ctx.io.out, json, updated, settingsRecord);
    });
}

function settingsRecord(account: Account) {
  return {
    account: account.accountId,
    name: account.name,
    'public sharing': account.blockPublicSharing ? 'blocked' : 'allowed',
    'recycle bin': `${account.recycleBinDays ?? 7} days`,
  };
}

/** What a user may do: a member's permissions, or `all` for owners and admins. */
export function permissionsText(user: User): string {
  return user.role === 'member' ? user.permissions.join(', ') || 'none (read only)' : 'all';
}
