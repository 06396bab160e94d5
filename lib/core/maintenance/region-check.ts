import { decodeManifest } from '../format/manifest.ts';
import type { IdentityRepository } from '../identity/accounts.ts';
import { type Caller, requireOperator } from '../identity/identity.ts';
import { ObjectLayout, type ObjectStore } from '../ports/objects.ts';
import { type Clock, isoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { LIVE_MANIFEST_STATES, type SnapshotRepository } from '../snapshots/snapshots.ts';
import { pages } from './work.ts';

/** What `admin check` found in one account's part of the region's bucket. */
export interface AccountCheck {
  accountId: string;
  name?: string;
  /** Live snapshots (completed, in the recycle bin) whose manifests were read. */
  snapshots: number;
  /** Segment objects stored under the account, and their bytes. */
  segments: number;
  bytes: number;
  /** Segments a live manifest names that are not stored, or not at the size it records. */
  missing: {
    snapshotId: string;
    segmentId: string;
    key: string;
    recordedSize: number;
    storedSize?: number;
  }[];
  /** Segments no snapshot references, older than the grace period (what GC would delete). */
  orphans: { key: string; size: number; lastModified: string }[];
  /** Live snapshots whose manifest is not stored. */
  manifestsMissing: string[];
}

/** One page of a region check: the accounts it covered, and where the next page starts. */
export interface RegionCheckPage {
  region: string;
  graceMs: number;
  accounts: AccountCheck[];
  /** Problems on this page (missing segments and manifests, orphans). */
  problems: number;
  nextToken?: string;
}

export interface RegionCheckOptions {
  identity: Pick<IdentityRepository, 'listAccounts'>;
  snapshots: Pick<SnapshotRepository, 'list' | 'sessionSegments'>;
  objects: ObjectStore;
  clock: Clock;
  region: string;
  /** GC's grace period: younger unreferenced segments are uploads in flight, not orphans. */
  gcGraceMs: number;
  /** A page stops after the account that took it past this much time (an API answer within 29 s). */
  budgetMs?: number;
}

/** Accounts read per listing page while checking. */
const ACCOUNTS_PER_PAGE = 25;

/**
 * The operator's check of a region's stored data (`volsnap admin check`): for each account, every
 * live manifest's segments stored at the recorded size, no unreferenced segment older than GC's
 * grace period, and the counts and bytes stored. Read-only. Paged by account: a page covers
 * accounts until about `budgetMs` has passed, so the answer stays within API Gateway's 29 s;
 * memory per page is one account's segment listing and one manifest.
 */
export class RegionCheck {
  readonly #o: Required<RegionCheckOptions>;

  constructor(options: RegionCheckOptions) {
    this.#o = { budgetMs: 10_000, ...options };
  }

  async check(
    caller: Caller,
    options: { nextToken?: string; graceMs?: number } = {},
  ): Promise<RegionCheckPage> {
    requireOperator(caller, "check the region's stored data");
    const graceMs = options.graceMs ?? this.#o.gcGraceMs;
    if (!Number.isInteger(graceMs) || graceMs < 0)
      throw new VolsnapError('request.invalid', 'A grace period is a whole number of seconds, 0 or more.');
    const started = this.#o.clock.now();
    const cursor = parseCursor(options.nextToken);
    const page: RegionCheckPage = { region: this.#o.region, graceMs, accounts: [], problems: 0 };
    let listing = cursor.listing;
    let skip = cursor.skip;
    do {
      const accounts = await this.#o.identity.listAccounts({
        limit: ACCOUNTS_PER_PAGE,
        ...(listing ? { nextToken: listing } : {}),
      });
      for (let i = skip; i < accounts.items.length; i++) {
        const account = accounts.items[i];
        if (!account) continue;
        const checked = await this.#account(account.accountId, graceMs);
        page.accounts.push({ ...checked, name: account.name });
        page.problems += checked.missing.length + checked.orphans.length + checked.manifestsMissing.length;
        const more = i + 1 < accounts.items.length || accounts.nextToken !== undefined;
        if (more && this.#o.clock.now() - started >= this.#o.budgetMs) {
          page.nextToken =
            i + 1 < accounts.items.length
              ? encodeCursor({ ...(listing ? { listing } : {}), skip: i + 1 })
              : encodeCursor({ ...(accounts.nextToken ? { listing: accounts.nextToken } : {}), skip: 0 });
          return page;
        }
      }
      listing = accounts.nextToken;
      skip = 0;
    } while (listing);
    return page;
  }

  /** One account: its segments listed first, then its snapshots read (as GC marks, so a new upload is young). */
  async #account(accountId: string, graceMs: number): Promise<Omit<AccountCheck, 'name'>> {
    const stored = new Map<string, { size: number; lastModified: number }>();
    for await (const object of this.#o.objects.list(`segments/${accountId}/`))
      stored.set(object.key, { size: object.size, lastModified: object.lastModified });
    const result: Omit<AccountCheck, 'name'> = {
      accountId,
      snapshots: 0,
      segments: stored.size,
      bytes: [...stored.values()].reduce((sum, o) => sum + o.size, 0),
      missing: [],
      orphans: [],
      manifestsMissing: [],
    };
    const referenced = new Set<string>();
    for await (const snapshot of pages((page) => this.#o.snapshots.list(accountId, {}, page))) {
      if (snapshot.state === 'queued' || snapshot.state === 'pending') {
        for (const segmentId of await this.#o.snapshots.sessionSegments(snapshot.snapshotId))
          referenced.add(ObjectLayout.segment(accountId, segmentId));
        continue;
      }
      if (!LIVE_MANIFEST_STATES.includes(snapshot.state)) continue;
      result.snapshots++;
      const bytes = await this.#o.objects.get(ObjectLayout.manifest(snapshot.snapshotId));
      if (!bytes) {
        result.manifestsMissing.push(snapshot.snapshotId);
        continue;
      }
      for (const [segmentId, recordedSize] of decodeManifest(bytes).segments) {
        const key = ObjectLayout.segment(accountId, segmentId);
        referenced.add(key);
        const object = stored.get(key);
        if (object?.size !== recordedSize) {
          result.missing.push({
            snapshotId: snapshot.snapshotId,
            segmentId,
            key,
            recordedSize,
            ...(object ? { storedSize: object.size } : {}),
          });
        }
      }
    }
    const cutoff = this.#o.clock.now() - graceMs;
    for (const [key, object] of stored) {
      if (referenced.has(key) || object.lastModified >= cutoff) continue;
      result.orphans.push({ key, size: object.size, lastModified: isoTime(object.lastModified) });
    }
    return result;
  }
}

interface Cursor {
  listing?: string;
  skip: number;
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function parseCursor(token: string | undefined): Cursor {
  if (token === undefined) return { skip: 0 };
  try {
    const cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Cursor;
    if (
      Number.isInteger(cursor.skip) &&
      cursor.skip >= 0 &&
      (cursor.listing === undefined || typeof cursor.listing === 'string')
    )
      return cursor;
  } catch {
    // not a token of ours: said below
  }
  throw new VolsnapError(
    'request.invalid',
    'The nextToken is not one a region check gave: start again without it.',
  );
}
