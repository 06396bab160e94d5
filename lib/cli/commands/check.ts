import type { Command } from 'commander';
import type { AccountCheck, RegionCheckPage } from '../../client/api-client.ts';
import { option, parseDuration } from '../args.ts';
import type { CliContext } from '../context.ts';
import { EXIT_CODES } from '../errors.ts';
import { printJson, printTable } from '../output.ts';
import { formatSize } from '../units.ts';

/** `volsnap admin check`: the region's stored data checked, page after page; a problem exits 6. */
export function addCheckCommand(admin: Command, ctx: CliContext): void {
  admin
    .command('check')
    .description(
      "check the region's stored data (operator): every live manifest's segments stored at their size, no orphan segment older than GC's grace period; counts and bytes per account (exit 6 on a problem)",
    )
    .option(
      '--grace <duration>',
      'count unreferenced segments older than this as orphans, e.g. 1h, or 0 (default: the deployment’s GC grace, 24h)',
      option(parseDuration),
    )
    .action(async (options: { grace?: number }) => {
      const { api, json } = ctx.client();
      const accounts: AccountCheck[] = [];
      let page: RegionCheckPage | undefined;
      let problems = 0;
      do {
        page = await api.checkRegion({
          ...(page?.nextToken ? { nextToken: page.nextToken } : {}),
          ...(options.grace !== undefined ? { graceSeconds: options.grace } : {}),
        });
        accounts.push(...page.accounts);
        problems += page.problems;
      } while (page.nextToken);
      if (json) printJson(ctx.io.out, { region: page.region, graceMs: page.graceMs, problems, accounts });
      else printCheck(ctx, accounts, problems);
      if (problems > 0) process.exitCode = EXIT_CODES.data;
    });
}

function printCheck(ctx: CliContext, accounts: AccountCheck[], problems: number): void {
  printTable(
    ctx.io.out,
    accounts.map((a) => ({
      account: a.accountId,
      name: a.name ?? '-',
      snapshots: a.snapshots,
      segments: a.segments,
      stored: formatSize(a.bytes),
      missing: a.missing.length,
      orphans: a.orphans.length,
    })),
    ['account', 'name', 'snapshots', 'segments', 'stored', 'missing', 'orphans'],
    false,
  );
  for (const a of accounts) {
    for (const id of a.manifestsMissing) ctx.io.out(`manifest missing: snapshot ${id} (${a.accountId})\n`);
    for (const m of a.missing)
      ctx.io.out(
        `segment missing: ${m.key} of snapshot ${m.snapshotId}: ${m.storedSize === undefined ? 'not stored' : `stored ${m.storedSize} bytes`}, manifest records ${m.recordedSize}\n`,
      );
    for (const o of a.orphans)
      ctx.io.out(`orphan segment: ${o.key} (${o.size} bytes, written ${o.lastModified})\n`);
  }
  ctx.io.out(problems > 0 ? `${problems} problem(s) found.\n` : 'No problems found.\n');
}
